// The forward proxy a local CPI runs on its bridge's gateway address (DESIGN.md §4): VMs have
// no route out, so stagers reach a package registry through it — and only the one registry
// the host's npm is configured for. Plain-HTTP requests in absolute form and HTTPS CONNECT
// tunnels are passed on when they go to that registry's host and port; anything else is 403.

import { request as httpRequest, createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { CloudError } from '../errors.ts';

export interface RegistryTarget {
  host: string;
  port: number;
}

/** The host:port a registry URL is reached at; pure. */
export function registryTarget(registryUrl: string): RegistryTarget {
  let url: URL;
  try {
    url = new URL(registryUrl);
  } catch {
    throw new CloudError(`Reading the registry URL: "${registryUrl}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CloudError(`Reading the registry URL: ${registryUrl} is not http(s)`);
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return { host: url.hostname.toLowerCase(), port };
}

/** Whether a proxy request may pass: CONNECT's `host:port`, or an absolute http:// URL; pure. */
export function isAllowed(method: string, target: string, allowed: RegistryTarget): boolean {
  if (method === 'CONNECT') {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
    return m !== null && m[1]!.toLowerCase() === allowed.host && Number(m[2]) === allowed.port;
  }
  try {
    const url = new URL(target);
    const port = url.port ? Number(url.port) : 80;
    return url.protocol === 'http:' && url.hostname.toLowerCase() === allowed.host && port === allowed.port;
  } catch {
    return false;
  }
}

export function startRegistryProxy(options: { host: string; port: number; registry: string }): Promise<Server> {
  const allowed = registryTarget(options.registry);
  const server = createServer((req, res) => {
    if (!isAllowed(req.method ?? 'GET', req.url ?? '', allowed)) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end(`only ${options.registry} is reachable from VMs\n`);
      return;
    }
    const url = new URL(req.url!);
    const upstream = httpRequest(
      { host: url.hostname, port: url.port || 80, method: req.method, path: `${url.pathname}${url.search}`, headers: withoutHopHeaders(req) },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`registry unreachable: ${e.message}\n`);
    });
    req.pipe(upstream);
  });
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    client.on('error', () => undefined);
    if (!isAllowed('CONNECT', req.url ?? '', allowed)) {
      client.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const upstream = connect({ host: allowed.host, port: allowed.port }, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n'));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve(server));
  });
}

function withoutHopHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined && !['proxy-connection', 'proxy-authorization', 'connection', 'keep-alive'].includes(k)) out[k] = v;
  }
  return out;
}

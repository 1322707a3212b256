// HTTP for the CLI, over node:http/https rather than fetch: the local platform answers at
// `*.localhost`, which Node's resolver does not know (curl and browsers map it to loopback
// themselves), and fetch will not send a Host header of our choosing. So a `*.localhost`
// URL is sent to 127.0.0.1 with the original host in the Host header (and as the TLS name).
import { request as httpRequest, Agent as HttpAgent, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import { ClientError } from './errors.ts';

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** A stream is piped as it is read (large uploads); its sender sets content-length. */
  body?: Buffer | string | Readable;
  /** No response head within this → error. */
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

/** Where to connect for a URL: loopback for `localhost` and `*.localhost`, else its host. */
export function connectTarget(url: URL): { hostname: string; hostHeader: string; servername: string } {
  const name = url.hostname.toLowerCase();
  const loopback = name === 'localhost' || name.endsWith('.localhost');
  return { hostname: loopback ? '127.0.0.1' : url.hostname.replace(/^\[|\]$/g, ''), hostHeader: url.host, servername: url.hostname };
}

/** Sends a request and reads the whole response. */
export async function send(req: HttpRequest): Promise<HttpResponse> {
  const res = await open(req);
  const chunks: Buffer[] = [];
  try {
    for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  } catch (err) {
    throw new ClientError('unreachable', `${req.method} ${req.url}: the connection broke while reading the answer (${(err as Error).message})`);
  }
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
}

/** Sends a request and resolves with the response head; the caller reads (or destroys) the body. */
export function open(req: HttpRequest): Promise<IncomingMessage> {
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return Promise.reject(new ClientError('usage', `"${req.url}" is not a URL`));
  }
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:') return Promise.reject(new ClientError('usage', `${req.url}: only http and https URLs are supported`));
  const target = connectTarget(url);
  const body = typeof req.body === 'string' ? Buffer.from(req.body) : req.body;
  const headers: Record<string, string> = { host: target.hostHeader, 'user-agent': 'ingot-cli', ...req.headers };
  if (Buffer.isBuffer(body)) headers['content-length'] = String(body.length);
  const make = secure ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const r = make(
      {
        protocol: url.protocol,
        hostname: target.hostname,
        port: url.port || (secure ? 443 : 80),
        path: `${url.pathname}${url.search}`,
        method: req.method,
        headers,
        agent: secure ? agents.https : agents.http,
        ...(secure ? { servername: target.servername } : {}),
      },
      (res) => {
        r.setTimeout(0);
        resolve(res);
      },
    );
    const timeoutMs = req.timeoutMs ?? 60_000;
    r.setTimeout(timeoutMs, () => r.destroy(Object.assign(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`), { code: 'ETIMEDOUT' })));
    r.on('error', (err: NodeJS.ErrnoException) => reject(new ClientError('unreachable', `cannot reach ${url.origin}: ${describeNetError(err)}`, { cause: err })));
    if (body instanceof Readable) {
      body.once('error', (err) => r.destroy(err));
      body.pipe(r);
    } else r.end(body);
  });
}

function describeNetError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
      return 'unknown host';
    case 'ECONNRESET':
      return 'the connection was reset';
    case 'ETIMEDOUT':
      return err.message;
    default:
      return err.message;
  }
}

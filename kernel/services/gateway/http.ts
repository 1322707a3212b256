// The broker's HTTP door: Basic auth (401), the X-Broker-API-Version header (412), the OSB
// routes, JSON bodies in and out. Every answer is JSON; a failure is `{error, description}`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../component/mod.ts';
import { closeServer, listenOn } from '../../component/listen.ts';
import type { Broker } from './broker.ts';
import { acceptsIncomplete, bindBody, deleteQuery, osbError, parseOsb, provisionBody, refuseApiVersion, refuseId, updateBody, type OsbReply } from './osb.ts';

const MAX_BODY_BYTES = 1024 * 1024;
const INSTANCE = /^\/v2\/service_instances\/([^/]+)$/;
const LAST_OPERATION = /^\/v2\/service_instances\/([^/]+)\/last_operation$/;
const BINDING = /^\/v2\/service_instances\/([^/]+)\/service_bindings\/([^/]+)$/;

export interface BrokerServerOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  catalog: Record<string, unknown>;
  broker: Broker;
  log: Logger;
}

export class BrokerServer {
  private server: Server | undefined;
  private readonly counts = new Map<string, number>();

  constructor(private readonly opts: BrokerServerOptions) {}

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  requests(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  async listen(): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    await listenOn(server, this.opts.port, this.opts.host);
    this.server = server;
  }

  async close(): Promise<void> {
    await closeServer(this.server, 'idle');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let reply: OsbReply;
    try {
      reply = await this.route(req);
    } catch (err) {
      this.opts.log.error({ method: req.method, url: req.url, err: (err as Error).stack }, 'broker request failed');
      reply = osbError(500, 'ServiceBrokerError', `the broker failed: ${(err as Error).message}`);
    }
    const key = String(reply.status);
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    const body = JSON.stringify(reply.body);
    const headers: Record<string, string | number> = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
    if (reply.status === 401) headers['WWW-Authenticate'] = 'Basic realm="ingot service broker"';
    res.writeHead(reply.status, headers);
    res.end(body);
  }

  private async route(req: IncomingMessage): Promise<OsbReply> {
    if (!this.authorized(req)) {
      req.resume();
      return osbError(401, 'Unauthorized', 'the broker requires its Basic credentials');
    }
    const refusal = refuseApiVersion(req.headers['x-broker-api-version']);
    if (refusal) {
      req.resume();
      return osbError(412, 'PreconditionFailed', refusal);
    }
    const url = new URL(req.url ?? '/', 'http://broker');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const { broker } = this.opts;

    if (path === '/v2/catalog' && method === 'GET') return { status: 200, body: this.opts.catalog };

    let m = LAST_OPERATION.exec(path);
    if (m && method === 'GET') return this.withId(m, () => broker.lastOperation(decode(m![1]!)));

    m = INSTANCE.exec(path);
    if (m && method === 'PUT') {
      const id = decode(m[1]!);
      const body = await readJson(req);
      if ('status' in body) return body;
      const parsed = parseOsb(provisionBody, body.json, 'provision request');
      if (!parsed.ok) return parsed.reply;
      return refuseId('instance', id) ?? broker.provision(id, parsed.value, acceptsIncomplete(url));
    }
    if (m && method === 'PATCH') {
      const body = await readJson(req);
      if ('status' in body) return body;
      const parsed = parseOsb(updateBody, body.json, 'update request');
      if (!parsed.ok) return parsed.reply;
      return refuseId('instance', decode(m[1]!)) ?? broker.update(decode(m[1]!), parsed.value);
    }
    if (m && method === 'DELETE') {
      const query = parseOsb(deleteQuery, Object.fromEntries(url.searchParams), 'deprovision query');
      if (!query.ok) return query.reply;
      return this.withId(m, () => broker.deprovision(decode(m![1]!)));
    }

    m = BINDING.exec(path);
    if (m && method === 'PUT') {
      const [id, bindingId] = [decode(m[1]!), decode(m[2]!)];
      const body = await readJson(req);
      if ('status' in body) return body;
      const parsed = parseOsb(bindBody, body.json, 'bind request');
      if (!parsed.ok) return parsed.reply;
      return refuseId('instance', id) ?? refuseId('binding', bindingId) ?? broker.bind(id, bindingId, parsed.value);
    }
    if (m && method === 'DELETE') {
      const query = parseOsb(deleteQuery, Object.fromEntries(url.searchParams), 'unbind query');
      if (!query.ok) return query.reply;
      const [id, bindingId] = [decode(m[1]!), decode(m[2]!)];
      // An id no node could hold is, for a delete, simply gone.
      if (refuseId('instance', id) || refuseId('binding', bindingId)) return { status: 410, body: {} };
      return broker.unbind(id, bindingId);
    }

    req.resume();
    return osbError(404, 'NotFound', `${method} ${path} is not a route of this broker`);
  }

  private withId(m: RegExpExecArray, then: () => Promise<OsbReply>): Promise<OsbReply> | OsbReply {
    if (refuseId('instance', decode(m[1]!))) return { status: 410, body: {} };
    return then();
  }

  private authorized(req: IncomingMessage): boolean {
    const m = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const given = Buffer.from(m[1]!, 'base64');
    const expected = Buffer.from(`${this.opts.user}:${this.opts.password}`);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

async function readJson(req: IncomingMessage): Promise<{ json: unknown } | OsbReply> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return osbError(413, 'BadRequest', `the body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return { json: text.trim() === '' ? {} : JSON.parse(text) };
  } catch {
    return osbError(400, 'BadRequest', 'the body is not JSON');
  }
}

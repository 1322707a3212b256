// The status server every component runs (monitored over HTTP + JSON): /healthz without
// auth for balancers and supervisors; /varz, /metrics and any component routes behind Basic
// auth, whose credentials the component announces on the bus.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { closeServer, listenOn } from './listen.ts';
import { renderPrometheus, type Metric } from './metrics.ts';

export type StatusRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export interface StatusServerOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Prefix of Prometheus metric names, e.g. `ingot_router`. */
  metricPrefix: string;
  healthy: () => boolean;
  varz: () => Record<string, unknown>;
  metrics: () => Metric[];
}

export class StatusServer {
  private readonly routes = new Map<string, StatusRoute>();
  private server: Server | undefined;

  constructor(private readonly opts: StatusServerOptions) {}

  /** Adds an authenticated route, e.g. the router's /routes. */
  route(path: string, handler: StatusRoute): void {
    this.routes.set(path, handler);
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  get credentials(): [string, string] {
    return [this.opts.user, this.opts.password];
  }

  async listen(): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5000;
    await listenOn(server, this.opts.port, this.opts.host);
    this.server = server;
  }

  async close(): Promise<void> {
    await closeServer(this.server, 'all');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://status');
    try {
      if (url.pathname === '/healthz') {
        const ok = this.opts.healthy();
        return send(res, ok ? 200 : 503, 'text/plain', ok ? 'ok' : 'unavailable');
      }
      const handler =
        url.pathname === '/varz'
          ? () => send(res, 200, 'application/json', JSON.stringify(this.opts.varz(), null, 2))
          : url.pathname === '/metrics'
            ? () => send(res, 200, 'text/plain; version=0.0.4', renderPrometheus(this.opts.metricPrefix, this.opts.metrics()))
            : this.routes.get(url.pathname)?.bind(undefined, req, res, url);
      if (!handler) return send(res, 404, 'text/plain', 'not found');
      if (!this.authorized(req)) {
        res.setHeader('WWW-Authenticate', 'Basic realm="ingot"');
        return send(res, 401, 'text/plain', 'unauthorized');
      }
      await handler();
    } catch (err) {
      if (!res.headersSent) send(res, 500, 'text/plain', `status server error: ${(err as Error).message}`);
      else res.destroy();
    }
  }

  private authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? '';
    const m = /^Basic\s+(.+)$/i.exec(header);
    if (!m) return false;
    const given = Buffer.from(m[1]!, 'base64');
    const expected = Buffer.from(`${this.opts.user}:${this.opts.password}`);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

// The REST API's HTTP server: routes by method and path, authenticates each request the way
// its route asks (bearer token, admin, the health manager's Basic credential, a signed URL,
// or none), runs the handler and renders its reply — JSON, or the v3 error envelope. A
// handler may also take over the response (downloads, live log streams).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { DbError } from '../db/mod.ts';
import { ApiError, errors } from '../errors.ts';
import { PathRouter } from './router.ts';

/** Who may call a route. */
export type AuthMode = 'none' | 'user' | 'admin' | 'bulk' | 'signed';

export type Principal =
  | { kind: 'user'; guid: string; username: string; admin: boolean }
  | { kind: 'bulk' }
  | { kind: 'signed' }
  | { kind: 'anonymous' };

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  url: URL;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The API's own URL as the client reached it, for links. */
  baseUrl: string;
  principal: Principal;
  /** For long-lived responses (live log streams): `end` runs when the server drains or stops. */
  onShutdown(end: () => void): () => void;
}

export type Reply = { status: number; body?: unknown; headers?: Record<string, string> } | { handled: true };

export type Handler = (ctx: RequestContext) => Promise<Reply>;

export type Authenticator = (mode: AuthMode, req: IncomingMessage, url: URL) => Promise<Principal>;

interface Route {
  auth: AuthMode;
  handler: Handler;
}

export class ApiServer {
  private readonly router = new PathRouter<Route>();
  private readonly table: Array<{ method: string; pattern: string; auth: AuthMode }> = [];
  private server: Server | undefined;
  private inFlight = 0;
  private readonly streams = new Set<() => void>();
  private readonly counts = { requests: 0, errors_5xx: 0, errors_4xx: 0 };

  constructor(
    private readonly authenticate: Authenticator,
    private readonly log: Logger,
  ) {}

  route(method: string, pattern: string, auth: AuthMode, handler: Handler): void {
    this.router.add(method, pattern, { auth, handler });
    this.table.push({ method: method.toUpperCase(), pattern, auth });
  }

  /** Every route served, in the order registered: what a test enumerates to cover them all. */
  routes(): Array<{ method: string; pattern: string; auth: AuthMode }> {
    return this.table.map((r) => ({ ...r }));
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  stats(): Record<string, number> {
    return { ...this.counts, in_flight: this.inFlight };
  }

  async listen(host: string, port: number): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5000;
    // Uploads of large packages on slow links: no whole-request deadline, only idle sockets die.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  /** Stops accepting connections; waits (bounded by the caller) for requests in flight. */
  async drain(): Promise<void> {
    this.server?.close();
    this.endStreams();
    while (this.inFlight > 0) await new Promise((r) => setTimeout(r, 50));
  }

  async close(): Promise<void> {
    this.endStreams();
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private endStreams(): void {
    for (const end of [...this.streams]) end();
    this.streams.clear();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inFlight++;
    this.counts.requests++;
    const started = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://controller');
    } catch {
      url = new URL('http://controller/');
    }
    try {
      const found = this.router.match(method, url.pathname);
      if (!found) throw new ApiError(404, 10000, 'CF-NotFound', 'Unknown request');
      if ('allowed' in found) {
        throw errors.methodNotAllowed(method, url.pathname);
      }
      const { route, params } = found.match;
      const principal = await this.authenticate(route.auth, req, url);
      const onShutdown = (end: () => void): (() => void) => {
        this.streams.add(end);
        return () => this.streams.delete(end);
      };
      const reply = await route.handler({ req, res, method, url, params, query: url.searchParams, baseUrl: baseUrlOf(req), principal, onShutdown });
      if (!('handled' in reply)) send(res, reply.status, reply.body, reply.headers);
    } catch (err) {
      this.fail(req, res, err, method, url);
    } finally {
      this.inFlight--;
      if (res.statusCode >= 500) this.counts.errors_5xx++;
      else if (res.statusCode >= 400) this.counts.errors_4xx++;
      this.log.debug({ method, path: url.pathname, status: res.statusCode, ms: Date.now() - started }, 'request');
    }
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown, method: string, url: URL): void {
    let apiErr: ApiError;
    if (err instanceof ApiError) apiErr = err;
    else if (err instanceof DbError && err.code === 'unique_violation') apiErr = errors.uniqueness('A resource with these values already exists');
    else {
      this.log.error({ method, path: url.pathname, err: err instanceof Error ? err.stack : String(err) }, 'request failed');
      apiErr = new ApiError(500, 10001, 'CF-ServerError', 'An unknown error occurred.');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // A body left unread (a refused upload): answer, then close rather than read it all.
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    const unread = hasBody && !req.complete;
    send(res, apiErr.status, apiErr.toJSON(), { ...apiErr.headers, ...(unread ? { Connection: 'close' } : {}) });
    if (unread) req.resume();
  }
}

export function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  if (body === undefined || status === 204) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

function baseUrlOf(req: IncomingMessage): string {
  const proto = String(req.headers['x-forwarded-proto'] ?? 'http').split(',')[0]!.trim();
  const host = req.headers.host ?? 'localhost';
  return `${proto === 'https' ? 'https' : 'http'}://${host}`;
}

// The local IaaS's balancer (DESIGN.md §7): the stand-in for a cloud load balancer in front of
// the routers on 127.0.0.1:8080. It works on TCP connections, not HTTP, so WebSockets and
// keep-alive pass untouched; each new connection goes to the healthy backend with the fewest
// open connections (round robin among ties). Every backend's health endpoint is checked every
// interval_ms; one bad answer (a router's /healthz is 503 while it drains) takes it out of
// rotation at once — open connections through it are left to finish. With no backend up a new
// connection is reset at once rather than left hanging. The pure core is balancer-pool.ts.

import { createServer as createHttpServer, get as httpGet, type Server as HttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from '../../../kernel/component/mod.ts';
import type { BalancerConfig } from './balancer-config.ts';
import { applyCheck, pickBackend, reconcileBackends, type BackendState } from './balancer-pool.ts';

/** A backend that accepts no TCP connection within this long is treated as a failed check. */
const CONNECT_TIMEOUT_MS = 2000;

export interface BalancerStatus {
  listen: { host: string; port: number };
  backends: Array<{ host: string; port: number; health: string; active: number; total: number; last_error?: string }>;
  healthy: number;
  active: number;
  totals: { connections: number; refused: number; backend_errors: number };
}

export class Balancer {
  private backends: BackendState[] = [];
  private cursor = 0;
  private readonly checking = new Set<string>();
  private readonly clients = new Set<Socket>();
  private timer: NodeJS.Timeout | undefined;
  private server: Server | undefined;
  private statusServer: HttpServer | undefined;
  private totals = { connections: 0, refused: 0, backend_errors: 0 };

  constructor(
    private config: BalancerConfig,
    private readonly log: Logger,
  ) {
    this.backends = reconcileBackends([], config.backends);
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  get statusPort(): number {
    return (this.statusServer?.address() as AddressInfo | null)?.port ?? 0;
  }

  async start(): Promise<void> {
    this.checkAll();
    this.timer = setInterval(() => this.checkAll(), this.config.interval_ms);
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (client) => this.accept(client));
    await listen(server, this.config.listen.port, this.config.listen.host);
    this.server = server;
    if (this.config.status) {
      const status = createHttpServer((req, res) => {
        const path = new URL(req.url ?? '/', 'http://status').pathname;
        if (path === '/healthz') {
          const ok = this.backends.some((b) => b.health === 'up');
          res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok' : 'no backend up');
        } else if (path === '/varz' || path === '/') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.status(), null, 2));
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        }
      });
      await listen(status, this.config.status.port, this.config.status.host);
      this.statusServer = status;
    }
  }

  /** Applies a re-read config's backend list and check settings; open connections are kept. */
  reload(config: BalancerConfig): void {
    const moved = config.listen.host !== this.config.listen.host || config.listen.port !== this.config.listen.port;
    if (moved) this.log.warn({ listen: config.listen }, 'the listen address changes only on restart; keeping the current one');
    const before = new Set(this.backends.map((b) => b.key));
    this.backends = reconcileBackends(this.backends, config.backends);
    this.cursor = 0;
    if (config.interval_ms !== this.config.interval_ms && this.timer) {
      clearInterval(this.timer);
      this.timer = setInterval(() => this.checkAll(), config.interval_ms);
    }
    this.config = { ...config, listen: this.config.listen, status: this.config.status };
    const added = this.backends.filter((b) => !before.has(b.key)).map((b) => b.key);
    const kept = new Set(this.backends.map((b) => b.key));
    const removed = [...before].filter((k) => !kept.has(k));
    this.log.info({ added, removed, backends: this.backends.length }, 'reloaded the backend list');
    this.checkAll();
  }

  status(): BalancerStatus {
    return {
      listen: { host: this.config.listen.host, port: this.port },
      backends: this.backends.map((b) => ({
        host: b.config.host,
        port: b.config.port,
        health: b.health,
        active: b.active,
        total: b.total,
        ...(b.lastError === undefined ? {} : { last_error: b.lastError }),
      })),
      healthy: this.backends.filter((b) => b.health === 'up').length,
      active: this.clients.size,
      totals: { ...this.totals },
    };
  }

  /** Stops accepting, waits up to timeoutMs for open connections to end, then cuts the rest. */
  async close(timeoutMs: number): Promise<void> {
    clearInterval(this.timer);
    const closed = this.server ? new Promise<void>((resolve) => this.server!.close(() => resolve())) : Promise.resolve();
    this.statusServer?.closeAllConnections();
    this.statusServer?.close();
    const deadline = Date.now() + timeoutMs;
    while (this.clients.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const c of this.clients) c.destroy();
    await closed;
  }

  private accept(client: Socket, tried: Set<string> = new Set()): void {
    if (tried.size === 0) {
      this.totals.connections++;
      client.on('error', () => undefined);
    }
    const picked = pickBackend(this.backends, this.cursor, tried);
    if (!picked) {
      this.totals.refused++;
      client.resetAndDestroy();
      return;
    }
    this.cursor = picked.cursor;
    const backend = this.backends[picked.index]!;
    const key = backend.key;
    backend.active++;
    backend.total++;
    this.clients.add(client);
    const upstream = connect({ host: backend.config.host, port: backend.config.port, allowHalfOpen: true, noDelay: true });
    upstream.setTimeout(CONNECT_TIMEOUT_MS);
    let connected = false;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const b = this.find(key);
      if (b) b.active--;
      this.clients.delete(client);
    };
    upstream.once('timeout', () => upstream.destroy(new Error(`no connection within ${CONNECT_TIMEOUT_MS} ms`)));
    upstream.once('connect', () => {
      connected = true;
      upstream.setTimeout(0);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    upstream.on('error', (err) => {
      if (connected) return client.destroy();
      // Nothing was sent yet: take the backend out and give the client another one.
      this.totals.backend_errors++;
      release();
      this.markDown(key, `connecting: ${err.message}`);
      if (!client.destroyed) this.accept(client, new Set([...tried, key]));
    });
    client.on('close', () => {
      upstream.destroy();
      release();
    });
    upstream.on('close', () => {
      if (connected) {
        // Let the client read what the backend sent before it closed; end() flushes, then closes.
        if (!client.destroyed) client.end();
        release();
      }
    });
  }

  private find(key: string): BackendState | undefined {
    return this.backends.find((b) => b.key === key);
  }

  private markDown(key: string, error: string): void {
    this.update(key, (b) => applyCheck(b, false, this.config.rise, error));
  }

  private update(key: string, change: (b: BackendState) => BackendState): void {
    const i = this.backends.findIndex((b) => b.key === key);
    if (i < 0) return;
    const before = this.backends[i]!;
    const after = change(before);
    this.backends[i] = after;
    if (before.health !== after.health) {
      const fields = { backend: key, from: before.health, to: after.health, ...(after.lastError ? { error: after.lastError } : {}) };
      if (after.health === 'down') this.log.warn(fields, 'backend out of rotation');
      else this.log.info(fields, 'backend in rotation');
    }
  }

  private checkAll(): void {
    for (const b of this.backends) {
      if (this.checking.has(b.key)) continue;
      this.checking.add(b.key);
      void check(b, this.config.timeout_ms).then((error) => {
        this.checking.delete(b.key);
        this.update(b.key, (s) => applyCheck(s, error === undefined, this.config.rise, error));
      });
    }
  }
}

/** One health check: undefined when it answered 2xx within timeoutMs, else why not. */
function check(b: BackendState, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (error: string | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(error);
    };
    const { host } = b.config;
    const { port, path } = b.config.health;
    const req = httpGet({ host, port, path, agent: false, headers: { 'user-agent': 'ingot-balancer' } }, (res) => {
      const code = res.statusCode ?? 0;
      res.resume();
      finish(code >= 200 && code < 300 ? undefined : `${path} answered ${code}`);
    });
    req.on('error', (err) => finish(`${path}: ${err.message}`));
    const timer = setTimeout(() => finish(`${path}: no answer within ${timeoutMs} ms`), timeoutMs);
  });
}

function listen(server: Server | HttpServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

// A real router for an integration test: its own nats-server, the router started as
// `node bin/ingot.js component router --config FILE`, a NATS client to register routes with,
// and small real backends (in this process, or as child processes that a test can kill).
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest, createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { eventually, startComponentProcess, writeConfig, type StartedComponent } from './component-process.ts';
import { NatsServer } from './nats-server.ts';
import { freePort } from './ports.ts';
import { scratchDir } from './tmp.ts';

export { eventually };

const STATUS_PASSWORD = 'router-test-secret';

export interface RouterUnderTest {
  nats: NatsServer;
  nc: NatsConnection;
  router: StartedComponent;
  port: number;
  dir: string;
  accessLog: string;
  register(port: number, uris: string[], extra?: Record<string, unknown>): Promise<void>;
  unregister(port: number, uris: string[], extra?: Record<string, unknown>): Promise<void>;
  varz(): Promise<Record<string, any>>;
  /** /varz once every worker has reported what it counted until now (they report each second). */
  settledVarz(): Promise<Record<string, any>>;
  routes(): Promise<Record<string, Array<Record<string, any>>>>;
  get(host: string, path?: string, headers?: Record<string, string>): Promise<Reply>;
  stop(): Promise<void>;
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * Starts a router (config keys in `overrides`) and waits until it serves; with its own
 * nats-server unless one is given (then the caller stops that one).
 */
export async function startRouter(label: string, overrides: Record<string, unknown> = {}, given?: NatsServer): Promise<RouterUnderTest> {
  const nats = given ?? (await NatsServer.start());
  const dir = scratchDir(label);
  const port = await freePort();
  const accessLog = join(dir, 'access.log');
  const config = writeConfig(label, {
    nats: nats.componentConfig,
    status: { host: '127.0.0.1', port: 0, user: 'ingot', password: STATUS_PASSWORD },
    port,
    host: '127.0.0.1',
    workers: 2,
    drain_wait_s: 0,
    access_log_file: accessLog,
    ...overrides,
  });
  let router: StartedComponent;
  try {
    router = await startComponentProcess('router', config, { statusPassword: STATUS_PASSWORD, readyTimeoutMs: 60_000 });
  } catch (err) {
    if (!given) await nats.stop();
    throw err;
  }
  const nc = await connect({ servers: nats.url, user: nats.user, pass: nats.password, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const publish = async (subject: string, port: number, uris: string[], extra: Record<string, unknown>): Promise<void> => {
    nc.publish(subject, JSON.stringify({ host: '127.0.0.1', port, uris, ...extra }));
    await nc.flush();
  };
  const status = async (path: string): Promise<any> => {
    const res = await fetch(router.statusUrl(path), { headers: { authorization: router.auth } });
    if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}`);
    return res.json();
  };
  return {
    nats,
    nc,
    router,
    port,
    dir,
    accessLog,
    register: (p, uris, extra = {}) => publish('router.register', p, uris, extra),
    unregister: (p, uris, extra = {}) => publish('router.unregister', p, uris, extra),
    varz: () => status('/varz'),
    async settledVarz() {
      const since = Date.now();
      return eventually(async () => {
        const v = await status('/varz');
        return v.workers.every((w: { reported_at: number }) => w.reported_at > since) ? v : undefined;
      }, 10_000, 'every worker to report');
    },
    routes: () => status('/routes'),
    get: (host, path = '/', headers = {}) => send({ port, host, path, headers }),
    async stop() {
      await router.kill('SIGKILL');
      await nc.close().catch(() => undefined);
      if (!given) await nats.stop();
    },
  };
}

export interface SendOptions {
  port: number;
  host: string;
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  agent?: import('node:http').Agent | false;
  timeoutMs?: number;
}

/** One HTTP request with an explicit Host header (fetch does not allow one). */
export function send(opts: SendOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: opts.port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: { host: opts.host, ...opts.headers },
        agent: opts.agent ?? false,
        timeout: opts.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no response from the router within ${opts.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Raw bytes to the router and whatever comes back until it closes (or `waitMs` passes). */
export function sendRaw(port: number, bytes: string | Buffer, waitMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => socket.destroy(), waitMs);
    socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (out) resolve(out);
      else reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.write(bytes);
  });
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: number;
  remotePort: number;
}

export interface Backend {
  port: number;
  server: Server;
  seen: SeenRequest[];
  connections: number;
  close(): Promise<void>;
}

export type BackendHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** A real HTTP backend in this process; by default it answers `hello from <name>`. */
export async function startBackend(name: string, handler?: BackendHandler): Promise<Backend> {
  const seen: SeenRequest[] = [];
  const b: Backend = {
    port: 0,
    server: createServer((req, res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        if (handler) chunks.push(c);
      });
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: bytes, remotePort: req.socket.remotePort ?? 0 });
        if (handler) return handler(req, res, Buffer.concat(chunks));
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`hello from ${name}`);
      });
    }),
    seen,
    connections: 0,
    close: async () => {
      b.server.closeAllConnections();
      await new Promise<void>((r) => b.server.close(() => r()));
    },
  };
  b.server.on('connection', () => b.connections++);
  b.port = await new Promise<number>((resolve) => b.server.listen(0, '127.0.0.1', () => resolve((b.server.address() as { port: number }).port)));
  return b;
}

/** A backend in its own process (to be killed): answers `hello from <name>`. */
export async function spawnBackend(name: string): Promise<{ port: number; proc: ChildProcess; kill(): Promise<void> }> {
  const port = await freePort();
  const code = `require('node:http').createServer((q, s) => { s.writeHead(200, {'content-type': 'text/plain'}); s.end(process.argv[2]); }).listen(Number(process.argv[1]), '127.0.0.1', () => console.log('ready'));`;
  const proc = spawn(process.execPath, ['-e', code, String(port), `hello from ${name}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.once('data', () => resolve());
    proc.once('exit', (c) => reject(new Error(`backend ${name} exited with ${c}`)));
  });
  proc.stdout!.resume();
  return {
    port,
    proc,
    async kill() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** A port with nothing listening on it (connections are refused). */
export async function deadPort(): Promise<number> {
  return freePort();
}

// The router's proxy processes (node:cluster): the primary forks one per CPU; each receives
// the config and a snapshot of the table, then every change, and only then listens, so no
// worker ever serves from an empty table. They share the proxy port (the primary hands out
// connections round-robin). A worker that dies is replaced, with the table, after a short
// back-off; the others keep serving meanwhile.
import cluster, { type Worker } from 'node:cluster';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { RouterConfig } from './config.ts';
import { RouterError } from './errors.ts';
import type { FromWorker, RouteOp, ToWorker, WorkerStats } from './ipc.ts';
import { childExecArgv } from '../component/exec-argv.ts';

export interface WorkerSetOptions {
  count: number;
  config: RouterConfig;
  uuid: string;
  log: Logger;
  /** The whole table, as op batches, for a worker that starts. */
  snapshot: () => RouteOp[][];
  onStats: (stats: WorkerStats) => void;
  readyTimeoutMs?: number;
}

export interface WorkerInfo {
  id: number;
  pid: number | undefined;
  ready: boolean;
  restarts: number;
  mem_bytes: number;
  connections: number;
  backend_connections: number;
  /** When its last numbers arrived (ms since the epoch): a worker that stops reporting is wedged. */
  reported_at: number;
}

interface Slot {
  id: number;
  worker: Worker | undefined;
  /** Has the snapshot: changes may be sent to it. */
  synced: boolean;
  ready: boolean;
  restarts: number;
  last: Omit<WorkerStats, 'delta'> & { reported_at: number };
  onDrained: (() => void) | undefined;
}

const STOP_GRACE_MS = 3000;

export class WorkerSet {
  private readonly slots: Slot[];
  private stopping = false;

  constructor(private readonly opts: WorkerSetOptions) {
    this.slots = Array.from({ length: opts.count }, (_, id) => ({
      id,
      worker: undefined,
      synced: false,
      ready: false,
      restarts: 0,
      last: { mem_bytes: 0, connections: 0, backend_connections: 0, reported_at: 0 },
      onDrained: undefined,
    }));
  }

  /** Forks every worker and resolves with the proxy port once all listen. */
  async start(): Promise<number> {
    cluster.setupPrimary({ exec: workerEntry(), execArgv: workerExecArgv(), silent: false });
    try {
      const ports = await Promise.all(this.slots.map((s) => this.launch(s)));
      return ports[0]!;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  get readyCount(): number {
    return this.slots.filter((s) => s.ready).length;
  }

  /** Sends route changes to every worker that has its snapshot. */
  broadcast(ops: RouteOp[]): void {
    for (const s of this.slots) if (s.synced) this.send(s, { t: 'routes', ops });
  }

  info(): WorkerInfo[] {
    return this.slots.map((s) => ({ id: s.id, pid: s.worker?.process.pid, ready: s.ready, restarts: s.restarts, ...s.last }));
  }

  /** Each worker stops accepting and finishes its requests in flight. */
  async drain(): Promise<void> {
    await Promise.all(
      this.slots
        .filter((s) => s.worker !== undefined && s.ready)
        .map(
          (s) =>
            new Promise<void>((resolve) => {
              s.onDrained = resolve;
              this.send(s, { t: 'drain' });
            }),
        ),
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.slots.map((s) => {
        const w = s.worker;
        if (w === undefined || w.isDead()) return undefined;
        return new Promise<void>((resolve) => {
          const timer = setTimeout(() => w.process.kill('SIGKILL'), STOP_GRACE_MS);
          w.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          if (!this.send(s, { t: 'stop' })) w.process.kill('SIGKILL');
        });
      }),
    );
  }

  private launch(slot: Slot): Promise<number> {
    const { log } = this.opts;
    const readyMs = this.opts.readyTimeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | undefined, port?: number): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(port!);
      };
      const worker = cluster.fork({ INGOT_ROUTER_WORKER: String(slot.id) });
      slot.worker = worker;
      slot.synced = false;
      slot.ready = false;
      const timer = setTimeout(() => {
        settle(new RouterError('worker_failed', `Starting router worker ${slot.id}: it did not listen within ${readyMs / 1000} s.`));
        worker.process.kill('SIGKILL');
      }, readyMs);
      worker.on('message', (msg: FromWorker) => {
        switch (msg.t) {
          case 'hello':
            this.send(slot, { t: 'init', config: this.opts.config, worker: slot.id, uuid: this.opts.uuid });
            for (const ops of this.opts.snapshot()) this.send(slot, { t: 'routes', ops });
            slot.synced = true;
            this.send(slot, { t: 'listen' });
            return;
          case 'ready':
            slot.ready = true;
            log.info({ worker: slot.id, worker_pid: worker.process.pid, port: msg.port }, 'router worker listening');
            settle(undefined, msg.port);
            return;
          case 'listen_failed':
            settle(new RouterError('listen_failed', msg.message));
            return;
          case 'stats':
            slot.last = { mem_bytes: msg.mem_bytes, connections: msg.connections, backend_connections: msg.backend_connections, reported_at: Date.now() };
            this.opts.onStats(msg);
            return;
          case 'drained':
            slot.onDrained?.();
            slot.onDrained = undefined;
            return;
        }
      });
      worker.on('exit', (code, signal) => {
        slot.worker = undefined;
        slot.synced = false;
        slot.ready = false;
        slot.onDrained?.();
        slot.onDrained = undefined;
        if (!settled) {
          settle(new RouterError('worker_failed', `Starting router worker ${slot.id}: it exited (${signal ?? code}) before listening.`));
          return;
        }
        if (this.stopping) return;
        slot.restarts++;
        const backoff = Math.min(30_000, 250 * 2 ** Math.min(slot.restarts, 7));
        log.error({ worker: slot.id, code, signal, restart_in_ms: backoff }, 'router worker died; replacing it');
        setTimeout(() => {
          if (this.stopping) return;
          this.launch(slot).catch((err: Error) => log.error({ worker: slot.id, err: err.message }, 'replacing a router worker failed'));
        }, backoff).unref();
      });
    });
  }

  private send(slot: Slot, msg: ToWorker): boolean {
    const w = slot.worker;
    if (w === undefined || !w.isConnected()) return false;
    try {
      w.send(msg);
      return true;
    } catch {
      return false;
    }
  }
}

/** The worker module beside this one (worker.ts from a checkout, worker.js when compiled). */
function workerEntry(): string {
  const self = fileURLToPath(import.meta.url);
  return self.slice(0, -extname(self).length).replace(/workers$/, 'worker') + extname(self);
}

/** A checkout runs TypeScript: workers load it through tsx, as bin/ingot.js does for the primary. */
function workerExecArgv(): string[] {
  return childExecArgv(workerEntry());
}

// One supervised server (a postmaster, a mariadbd, a unit's redis-server) that a node owns, as
// its child (kernel/component/server-child.ts: unprivileged, gone with its parent — the
// restarted node starts it again). A server that dies while it should run is started again
// after a back-off; a stop the node asks for is not. Shared by the backends, which differ only
// in their command line, their stop signal and how they are probed.
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../../component/mod.ts';
import { hasExited, spawnServer, stopServer, waitServing, type ServerChild } from '../../component/server-child.ts';
import { UnitError } from '../errors.ts';

export interface SupervisedServerOptions {
  /** For logs and errors: `postgres`, `mariadbd`. */
  name: string;
  /** The server's argv; its command line must name the node's base_dir (scripts/sweep.sh finds leftovers by it). */
  command: string[];
  /** User to run as (only when the node is root). */
  runAs: string | undefined;
  /** What stops it quickly but cleanly, closing client sessions (postgres: SIGINT; mariadbd: SIGTERM). */
  stopSignal: NodeJS.Signals;
  /** A file whose first line is the running server's pid (postmaster.pid, mariadbd's pid-file). */
  pidFile: string;
  /** What a stale server's command line contains (its data directory): a live one left by an earlier node is stopped first. */
  marker: string;
  /** Its log file, for the last words of a server that would not start. */
  logFile?: string;
  startTimeoutMs: number;
  log: Logger;
  /** Before every start: renders files, waits for nothing. */
  prepare(): Promise<void>;
  /** Resolves once the server answers its admin; rejects while it does not. */
  probe(): Promise<void>;
}

/** Back-off between restarts of a server that keeps dying: 0.5 s doubling to 30 s. */
const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A server that ran this long is healthy again: its back-off starts over. */
const STABLE_AFTER_MS = 60_000;
const STOP_GRACE_MS = 15_000;
/** Output kept for the last words of a server that would not start. */
const OUTPUT_KEPT = 4000;

export class SupervisedServer {
  private child: ChildProcess | undefined;
  private server: ServerChild | undefined;
  private wanted = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  restarts = 0;

  constructor(private readonly opts: SupervisedServerOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && !hasExited(this.child);
  }

  /**
   * Starts the server and waits until it answers; throws UnitError with its last words if it
   * does not. With `keepTrying` (a server the node already holds data for) a failed start is
   * still supervised: it is tried again with the back-off, as if the server had died.
   */
  async start(opts: { keepTrying?: boolean } = {}): Promise<void> {
    this.wanted = true;
    await this.stopStale();
    await this.opts.prepare();
    const child = this.spawn();
    try {
      await this.waitReady(child);
    } catch (err) {
      if (opts.keepTrying) {
        if (this.running) child.kill('SIGKILL'); // its exit handler schedules the next try
      } else {
        this.wanted = false;
        clearTimeout(this.restartTimer);
        await this.kill(child);
      }
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.wanted = false;
    clearTimeout(this.restartTimer);
    if (this.child) await this.kill(this.child);
  }

  private spawn(): ChildProcess {
    const server = spawnServer(this.opts.command, { runAs: this.opts.runAs, stopSignal: this.opts.stopSignal, keep: OUTPUT_KEPT });
    const child = server.process;
    this.server = server;
    this.child = child;
    const startedAt = Date.now();
    child.on('error', (err) => this.opts.log.error({ server: this.opts.name, err: err.message }, `starting ${this.opts.name} failed`));
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (!this.wanted) return;
      if (Date.now() - startedAt > STABLE_AFTER_MS) this.failures = 0;
      const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** this.failures);
      this.failures++;
      this.opts.log.warn({ server: this.opts.name, code, signal, restart_in_ms: delay }, `${this.opts.name} exited; restarting it`);
      this.restartTimer = setTimeout(() => void this.restart(), delay);
    });
    return child;
  }

  private async restart(): Promise<void> {
    if (!this.wanted || this.running) return;
    try {
      await this.stopStale();
      await this.opts.prepare();
      const child = this.spawn();
      await this.waitReady(child);
      this.restarts++;
      this.opts.log.info({ server: this.opts.name, pid: child.pid }, `${this.opts.name} restarted`);
    } catch (err) {
      this.opts.log.error({ server: this.opts.name, err: (err as Error).message }, `restarting ${this.opts.name} failed`);
      // A server up but silent is killed, and its exit handler schedules the next try; with no
      // server at all, the next try is scheduled here.
      if (this.running) this.child!.kill('SIGKILL');
      else if (this.wanted) this.restartTimer = setTimeout(() => void this.restart(), Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** this.failures++));
    }
  }

  private waitReady(child: ChildProcess): Promise<void> {
    return waitServing(child, {
      name: this.opts.name,
      timeoutMs: this.opts.startTimeoutMs,
      probe: this.opts.probe,
      lastWords: () => this.lastWords(),
      fail: (message) => new UnitError(message),
    });
  }

  private kill(child: ChildProcess): Promise<void> {
    return stopServer(child, this.opts.stopSignal, STOP_GRACE_MS);
  }

  /**
   * A server left from an earlier node process (its pid file names a live process whose command
   * line is this server's): stop it and wait, so this node supervises its own and the data
   * directory's lock is free.
   */
  private async stopStale(): Promise<void> {
    let pid: number;
    try {
      pid = Number((await readFile(this.opts.pidFile, 'utf8')).split('\n')[0]!.trim());
    } catch {
      return;
    }
    if (!Number.isInteger(pid) || pid <= 1 || pid === this.child?.pid) return;
    let cmdline: string;
    try {
      cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' ');
    } catch {
      return; // not running
    }
    if (!cmdline.includes(this.opts.marker)) return;
    this.opts.log.warn({ server: this.opts.name, pid }, `stopping a ${this.opts.name} left by an earlier node process`);
    process.kill(pid, this.opts.stopSignal);
    const deadline = Date.now() + STOP_GRACE_MS;
    while (Date.now() < deadline) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    process.kill(pid, 'SIGKILL');
  }

  private async lastWords(): Promise<string> {
    let logTail = '';
    if (this.opts.logFile) {
      try {
        logTail = (await readFile(this.opts.logFile, 'utf8')).trim().split('\n').slice(-5).join(' | ');
      } catch {
        // no log yet
      }
    }
    return [(this.server?.output() ?? '').trim(), logTail].filter(Boolean).join(' | ') || 'no output';
  }
}

// One supervised redis-server: started through setpriv so it runs as an unprivileged user
// (when the node is root) and receives SIGTERM if the node dies (--pdeathsig: a killed node
// leaves no orphan holding the port; the restarted node starts it again). A server that dies
// while it should run is started again after a back-off; a stop the node asks for is not.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../../../component/mod.ts';
import { UnitError } from '../../errors.ts';
import { RespClient } from './resp.ts';

export interface RedisProcessOptions {
  instanceId: string;
  serverPath: string;
  confPath: string;
  pidPath: string;
  logPath: string;
  /** User to run as (only when the node is root). */
  runAs: string | undefined;
  host: string;
  port: number;
  adminPassword: string;
  startTimeoutMs: number;
  log: Logger;
  /** Rewrites the unit's files before every start (the ACL file follows the bindings). */
  prepare(): Promise<void>;
}

/** Back-off between restarts of a server that keeps dying: 0.5 s doubling to 30 s. */
const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A server that ran this long is healthy again: its back-off starts over. */
const STABLE_AFTER_MS = 60_000;
const STOP_GRACE_MS = 10_000;

export class RedisProcess {
  private child: ChildProcess | undefined;
  private wanted = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private stderr = '';
  restarts = 0;

  constructor(private readonly opts: RedisProcessOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Starts the server and waits until it answers; throws UnitError with its last words if it
   * does not. With `keepTrying` (a unit the node already holds) a failed start is still
   * supervised: it is tried again with the back-off, as if the server had died.
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

  /** An admin connection (the `default` user, whose password only the node knows). */
  admin(): Promise<RespClient> {
    return RespClient.connect({ host: this.opts.host, port: this.opts.port, password: this.opts.adminPassword, timeoutMs: 2000 });
  }

  private spawn(): ChildProcess {
    const { serverPath, confPath, runAs } = this.opts;
    const asUser = runAs !== undefined ? [`--reuid=${runAs}`, `--regid=${runAs}`, '--clear-groups'] : [];
    const child = spawn('setpriv', [...asUser, '--pdeathsig', 'TERM', '--', serverPath, confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    this.stderr = '';
    const startedAt = Date.now();
    child.stderr!.on('data', (c: Buffer) => (this.stderr = (this.stderr + c.toString()).slice(-2000)));
    child.on('error', (err) => this.opts.log.error({ instance_id: this.opts.instanceId, err: err.message }, 'starting redis-server failed'));
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (!this.wanted) return;
      if (Date.now() - startedAt > STABLE_AFTER_MS) this.failures = 0;
      const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** this.failures);
      this.failures++;
      this.opts.log.warn({ instance_id: this.opts.instanceId, port: this.opts.port, code, signal, restart_in_ms: delay }, 'redis-server exited; restarting it');
      this.restartTimer = setTimeout(() => void this.restart(), delay);
    });
    return child;
  }

  private async restart(): Promise<void> {
    if (!this.wanted || this.running) return;
    try {
      await this.opts.prepare();
      const child = this.spawn();
      await this.waitReady(child);
      this.restarts++;
      this.opts.log.info({ instance_id: this.opts.instanceId, port: this.opts.port, pid: child.pid }, 'redis-server restarted');
    } catch (err) {
      this.opts.log.error({ instance_id: this.opts.instanceId, err: (err as Error).message }, 'restarting redis-server failed');
      // A server up but silent is killed, and its exit handler schedules the next try; with no
      // server at all (its files could not be written), the next try is scheduled here.
      if (this.running) this.child!.kill('SIGKILL');
      else if (this.wanted) this.restartTimer = setTimeout(() => void this.restart(), Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** this.failures++));
    }
  }

  private async waitReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + this.opts.startTimeoutMs;
    let lastErr = '';
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new UnitError(`redis-server for ${this.opts.instanceId} on port ${this.opts.port} exited at start (${child.exitCode ?? child.signalCode}): ${await this.lastWords()}`);
      }
      try {
        const c = await this.admin();
        try {
          if ((await c.command('PING')) === 'PONG') return;
        } finally {
          c.close();
        }
      } catch (err) {
        lastErr = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new UnitError(`redis-server for ${this.opts.instanceId} on port ${this.opts.port} did not answer within ${this.opts.startTimeoutMs} ms (${lastErr}): ${await this.lastWords()}`);
  }

  private async kill(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM'); // redis-server saves and closes its AOF on SIGTERM
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  /**
   * A server of this unit left from an earlier node process (its pidfile names a live process
   * whose command line is this unit's config): stop it, so this node supervises its own.
   */
  private async stopStale(): Promise<void> {
    let pid: number;
    try {
      pid = Number((await readFile(this.opts.pidPath, 'utf8')).trim());
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
    if (!cmdline.includes(this.opts.confPath)) return;
    this.opts.log.warn({ instance_id: this.opts.instanceId, pid }, 'stopping a redis-server left by an earlier node process');
    process.kill(pid, 'SIGTERM');
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
    try {
      logTail = (await readFile(this.opts.logPath, 'utf8')).trim().split('\n').slice(-3).join(' | ');
    } catch {
      // no log yet
    }
    return [this.stderr.trim(), logTail].filter(Boolean).join(' | ') || 'no output';
  }
}

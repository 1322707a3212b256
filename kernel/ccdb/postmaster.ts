// The ccdb's PostgreSQL server as its child (kernel/component/server-child.ts: unprivileged,
// gone with its parent), awaited until it accepts connections, and stopped fast (SIGINT:
// sessions closed, data checkpointed). Unlike a service node's servers it is never restarted
// here: a server that dies is the component's death, and the agent restarts the whole job.
import { readdir, readFile, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../component/mod.ts';
import { hasExited, spawnServer, stopServer, waitServing, type ServerChild } from '../component/server-child.ts';
import { CcdbError } from './errors.ts';

export interface PostmasterOptions {
  /** The `postgres` binary. */
  binary: string;
  dataDir: string;
  /** Where the server's unix socket and its lock file go. */
  socketDir: string;
  host: string;
  port: number;
  settings: Record<string, string | number | boolean>;
  /** User to run as (only when the component is root). */
  runAs: string | undefined;
  startTimeoutMs: number;
  /** SIGINT's grace before SIGKILL, at a stop and for a server left by an earlier run. */
  stopTimeoutMs: number;
  log: Logger;
  /** Resolves once the server accepts a session; rejects while it does not. */
  probe(): Promise<void>;
}

export interface ServerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The server's last lines of output. */
  lastLines: string[];
}

/** Fast shutdown: sessions are closed, the data is checkpointed (SIGTERM would wait for every client). */
const STOP_SIGNAL: NodeJS.Signals = 'SIGINT';
/** Output kept for the last words of a server that dies. */
const OUTPUT_KEPT = 8000;

export class Postmaster {
  private server: ServerChild | undefined;
  private stopping = false;
  private startedAt: number | undefined;

  constructor(private readonly opts: PostmasterOptions) {}

  get pid(): number | undefined {
    return this.running ? this.server?.process.pid : undefined;
  }

  get running(): boolean {
    return this.server !== undefined && !hasExited(this.server.process);
  }

  /** When this component's server started (ms since the epoch). */
  get since(): number | undefined {
    return this.startedAt;
  }

  /** Starts the server and waits until it accepts connections; `onExit` hears of any exit not asked for. */
  async start(onExit: (exit: ServerExit) => void): Promise<void> {
    const o = this.opts;
    await clearStale(o.dataDir, o.stopTimeoutMs, o.log, [join(o.socketDir, `.s.PGSQL.${o.port}.lock`)]);
    const settings = Object.entries({ listen_addresses: o.host, ...o.settings }).flatMap(([k, v]) => ['-c', `${k}=${typeof v === 'boolean' ? (v ? 'on' : 'off') : v}`]);
    const server = spawnServer([o.binary, '-D', o.dataDir, '-p', String(o.port), '-k', o.socketDir, ...settings], { runAs: o.runAs, stopSignal: STOP_SIGNAL, keep: OUTPUT_KEPT });
    this.server = server;
    this.startedAt = Date.now();
    server.process.on('error', (err) => o.log.error({ err: err.message }, 'starting postgres failed'));
    let ready = false;
    server.process.once('exit', (code, signal) => {
      // An exit at start is waitServing's to report, with the server's last words.
      if (ready && !this.stopping) onExit({ code, signal, lastLines: this.lastLines() });
    });
    try {
      await waitServing(server.process, {
        name: 'postgres',
        timeoutMs: o.startTimeoutMs,
        probe: o.probe,
        lastWords: async () => this.lastLines(5).join(' | ') || 'no output',
        fail: (message) => new CcdbError(message),
      });
    } catch (err) {
      await this.stop();
      throw err;
    }
    ready = true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.server?.process;
    if (!child) return;
    await stopServer(child, STOP_SIGNAL, this.opts.stopTimeoutMs, () => this.opts.log.warn({ pid: child.pid, grace_ms: this.opts.stopTimeoutMs }, 'postgres did not stop in time; killing it'));
  }

  lastLines(n = 10): string[] {
    return (this.server?.output() ?? '').trim().split('\n').filter(Boolean).slice(-n);
  }
}

/**
 * What an earlier run left in the data directory: a postmaster still alive (a killed
 * component's server shutting down on its parent-death signal) is stopped and awaited;
 * backends of a killed postmaster still holding its shared memory are awaited, then killed;
 * and the lock files nobody holds (postmaster.pid, the socket's lock) go. PostgreSQL removes
 * a lock file itself only when the pid in it is dead, and a killed postmaster's pid may live
 * on a while as a zombie, or name another process by then. Every process of the cluster has
 * the data directory as its working directory (a zombie has none): that is how they are found.
 */
export async function clearStale(dataDir: string, graceMs: number, log: Logger, otherLocks: string[] = []): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  const locks = [pidFile, ...otherLocks];
  const recorded = await readPid(pidFile);
  const inDir = await pidsWorkingIn(dataDir);
  if (inDir.length === 0) {
    if (recorded !== undefined) log.info({ pid: recorded }, 'removing the lock files of a postmaster gone with an earlier run');
    for (const file of locks) await rm(file, { force: true });
    return;
  }
  const postmaster = recorded !== undefined && inDir.includes(recorded) ? recorded : undefined;
  log.warn({ pids: inDir, postmaster: postmaster ?? null }, 'postgres processes of this data directory are left from an earlier run; stopping them');
  if (postmaster !== undefined) signal(postmaster, STOP_SIGNAL);
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && (await pidsWorkingIn(dataDir)).length > 0) await sleep(50);
  const left = await pidsWorkingIn(dataDir);
  for (const pid of left) signal(pid, 'SIGKILL');
  while ((await pidsWorkingIn(dataDir)).length > 0) await sleep(50);
  for (const file of locks) await rm(file, { force: true });
}

/** The processes whose working directory is `dir` (a cluster's postmaster and backends). */
export async function pidsWorkingIn(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if ((await readlink(`/proc/${entry}/cwd`)) === dir) pids.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to see
    }
  }
  return pids;
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, 'utf8')).split('\n')[0]!.trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone meanwhile
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

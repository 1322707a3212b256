// The node's one RabbitMQ server, supervised, with its own epmd. Both start through setpriv
// as an unprivileged user (when the node is root) with a parent-death signal: when the node
// dies, epmd goes and Debian's start script (which traps TERM) stops beam.smp cleanly. A
// server that dies while wanted is started again after a back-off; before each start a
// beam.smp an earlier node process left (its pid file names a live process whose command
// line is this server's) is stopped, so the fixed node name is never claimed twice.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import type { Logger } from '../../../component/mod.ts';
import { UnitError } from '../../errors.ts';
import type { ManagementApi } from './management-api.ts';
import { serverArgs, serverEnv, type RabbitmqConfig, type ServerPaths } from './rabbitmq-conf.ts';

export interface RabbitProcessOptions {
  paths: ServerPaths;
  nodeName: string;
  rabbitmq: RabbitmqConfig;
  /** User to run as (only when the node is root). */
  runAs: string | undefined;
  api: ManagementApi;
  log: Logger;
  /** Rewrites the server's files before every start. */
  prepare(): Promise<void>;
  /** After every start, once the server answers: bring its contents in line with node.json. */
  onReady(): Promise<void>;
}

/** Back-off between restarts of a server that keeps dying: 1 s doubling to 60 s (a boot alone takes seconds). */
const RESTART_BASE_MS = 1000;
const RESTART_MAX_MS = 60_000;
/** A server that ran this long is healthy again: its back-off starts over. */
const STABLE_AFTER_MS = 120_000;
/** A clean stop flushes queues and Mnesia: about 7 s on a small server; more is a hang. */
const STOP_GRACE_MS = 30_000;
const POLL_MS = 250;

export class RabbitProcess {
  private child: ChildProcess | undefined;
  private epmd: ChildProcess | undefined;
  private wanted = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private output = '';
  restarts = 0;

  constructor(private readonly opts: RabbitProcessOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return alive(this.child);
  }

  /**
   * Starts epmd and the server and waits until the AMQP listener is up; throws UnitError with
   * the server's last words if it is not. With `keepTrying` (node start) a failed start is
   * still supervised: it is tried again with the back-off.
   */
  async start(opts: { keepTrying?: boolean } = {}): Promise<void> {
    this.wanted = true;
    try {
      await this.stopStale();
      await this.launch();
    } catch (err) {
      if (opts.keepTrying) {
        if (this.running) this.child!.kill('SIGKILL'); // its exit handler schedules the next try
        else this.scheduleRestart();
      } else {
        await this.stop();
      }
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.wanted = false;
    clearTimeout(this.restartTimer);
    if (this.child) await this.stopServer(this.child);
    if (alive(this.epmd)) {
      const exited = new Promise((r) => this.epmd!.once('exit', r));
      this.epmd!.kill('SIGTERM');
      await exited;
    }
  }

  private async launch(): Promise<void> {
    await this.opts.prepare();
    await this.ensureEpmd();
    const child = this.spawnServer();
    await this.waitReady(child);
    await this.opts.onReady();
  }

  private asUser(): string[] {
    const u = this.opts.runAs;
    return u !== undefined ? [`--reuid=${u}`, `--regid=${u}`, '--clear-groups'] : [];
  }

  /**
   * epmd on its own port and loopback. `exec -a` makes its argv[0] a path under base_dir, so
   * a leftover is recognisable (scripts/sweep.sh) even though epmd takes no such argument.
   */
  private async ensureEpmd(): Promise<void> {
    if (alive(this.epmd)) return;
    const { epmd_path, epmd_port } = this.opts.rabbitmq;
    const argv0 = `${this.opts.paths.dir}/epmd`;
    const child = spawn('setpriv', [...this.asUser(), '--pdeathsig', 'TERM', '--', 'bash', '-c', 'exec -a "$0" "$1" -port "$2" -address 127.0.0.1', argv0, epmd_path, String(epmd_port)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-1000)));
    child.on('error', (err) => this.opts.log.error({ err: err.message }, 'starting epmd failed'));
    this.epmd = child;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (await portAnswers('127.0.0.1', epmd_port)) {
        // Ours, or one already on the port (an earlier node's still going away): either serves.
        if (!alive(child)) this.opts.log.warn({ epmd_port, stderr: stderr.trim() }, 'epmd: another one already listens on the port; using it');
        return;
      }
      if (!alive(child) && child.exitCode !== null) throw new UnitError(`epmd on port ${epmd_port} exited at start (${child.exitCode}): ${stderr.trim() || 'no output'}`);
      await sleep(50);
    }
    throw new UnitError(`epmd on port ${epmd_port} did not listen within 10 s`);
  }

  private spawnServer(): ChildProcess {
    const { paths, nodeName, rabbitmq } = this.opts;
    const child = spawn('setpriv', [...this.asUser(), '--pdeathsig', 'TERM', '--', rabbitmq.server_path, ...serverArgs(paths)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: serverEnv(paths, nodeName, rabbitmq),
      cwd: paths.dir,
    });
    this.child = child;
    this.output = '';
    const startedAt = Date.now();
    const keep = (c: Buffer) => (this.output = (this.output + c.toString()).slice(-2000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.on('error', (err) => this.opts.log.error({ err: err.message }, 'starting rabbitmq-server failed'));
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (!this.wanted) return;
      if (Date.now() - startedAt > STABLE_AFTER_MS) this.failures = 0;
      this.opts.log.warn({ node: nodeName, code, signal }, 'rabbitmq-server exited; restarting it');
      this.scheduleRestart();
    });
    return child;
  }

  private scheduleRestart(): void {
    if (!this.wanted) return;
    clearTimeout(this.restartTimer);
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** this.failures++);
    this.restartTimer = setTimeout(() => void this.restart(), delay);
  }

  private async restart(): Promise<void> {
    if (!this.wanted || this.running) return;
    try {
      await this.launch();
      this.restarts++;
      this.opts.log.info({ node: this.opts.nodeName, pid: this.child?.pid }, 'rabbitmq-server restarted');
    } catch (err) {
      this.opts.log.error({ node: this.opts.nodeName, err: (err as Error).message }, 'restarting rabbitmq-server failed');
      // A server up but not answering is killed, and its exit handler schedules the next try.
      if (this.running) this.child!.kill('SIGKILL');
      else this.scheduleRestart();
    }
  }

  /** Ready when the management API says the AMQP listener is up (the last step of a boot that matters to apps). */
  private async waitReady(child: ChildProcess): Promise<void> {
    const { rabbitmq, api, nodeName } = this.opts;
    const deadline = Date.now() + rabbitmq.start_timeout_s * 1000;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (!alive(child)) throw new UnitError(`rabbitmq-server ${nodeName} exited at start (${child.exitCode ?? child.signalCode}): ${await this.lastWords()}`);
      try {
        const a = await api.request('GET', `/health/checks/port-listener/${rabbitmq.amqp_port}`);
        if (a.status === 200) return;
        last = `management API answered ${a.status}`;
        if (a.status === 401) last += ' (the admin in rabbitmq-admin.json is not the one this server was first started with)';
      } catch (err) {
        last = (err as Error).message;
      }
      await sleep(POLL_MS);
    }
    throw new UnitError(`rabbitmq-server ${nodeName} did not come up within ${rabbitmq.start_timeout_s} s (${last}): ${await this.lastWords()}`);
  }

  /** TERM to the start script, which stops beam.smp and waits for it; past the grace, KILL both. */
  private async stopServer(child: ChildProcess): Promise<void> {
    if (!alive(child)) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const beam = await this.beamPid();
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.opts.log.warn({ node: this.opts.nodeName }, 'rabbitmq-server did not stop in time; killing it');
      if (beam) killQuietly(beam, 'SIGKILL');
      child.kill('SIGKILL');
    }, STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
    if (beam) await waitGone(beam, STOP_GRACE_MS);
  }

  /** The beam.smp of this server (by its pid file and its command line), if one runs. */
  private async beamPid(): Promise<number | undefined> {
    let pid: number;
    try {
      pid = Number((await readFile(this.opts.paths.pid, 'utf8')).trim());
    } catch {
      return undefined;
    }
    if (!Number.isInteger(pid) || pid <= 1) return undefined;
    try {
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' ');
      return cmdline.includes(this.opts.paths.dir) ? pid : undefined;
    } catch {
      return undefined; // not running
    }
  }

  /**
   * Every beam.smp of this server still alive: the pid file's, and any other whose command line
   * names this server's directory — a server stopping with its killed node may already have
   * removed its pid file while it still holds the node name and the distribution port.
   */
  private async staleBeams(): Promise<number[]> {
    const found = new Set<number>();
    const fromFile = await this.beamPid();
    if (fromFile !== undefined) found.add(fromFile);
    for (const entry of await readdir('/proc').catch(() => [] as string[])) {
      if (!/^\d+$/.test(entry)) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes('beam') && cmdline.replace(/\0/g, ' ').includes(this.opts.paths.dir)) found.add(Number(entry));
    }
    return [...found].filter((pid) => pid !== this.child?.pid && isAlive(pid));
  }

  private async stopStale(): Promise<void> {
    for (const pid of await this.staleBeams()) {
      // An earlier node's server: its start script got TERM with that node's death and may be
      // stopping it already; either way it must be gone before this node name starts again.
      this.opts.log.warn({ node: this.opts.nodeName, pid }, 'stopping a rabbitmq-server left by an earlier node process');
      killQuietly(pid, 'SIGTERM');
      if (!(await waitGone(pid, STOP_GRACE_MS))) {
        killQuietly(pid, 'SIGKILL');
        await waitGone(pid, 5000);
      }
    }
  }

  private async lastWords(): Promise<string> {
    let logTail = '';
    try {
      logTail = (await readFile(`${this.opts.paths.log}/${this.opts.nodeName}.log`, 'utf8')).trim().split('\n').slice(-5).join(' | ');
    } catch {
      // no log yet
    }
    return [this.output.trim().split('\n').slice(-5).join(' | '), logTail].filter(Boolean).join(' | ') || 'no output';
  }
}

function alive(child: ChildProcess | undefined): boolean {
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Running, not a zombie (a zombie holds no port; where pid 1 reaps nothing, one may linger). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return false;
}

function portAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

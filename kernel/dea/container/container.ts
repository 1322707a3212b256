// One container: an app instance's isolated process tree with its limits, address and files.
// Spawns the app through the launcher (launcher.ts), stops it (SIGTERM to the container's
// init, SIGKILL to everything after the grace period), measures it, and tears every part of
// it down again. Created and recovered by ContainerHost (host.ts), which owns the pools.

import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { lchown, lstat, open, readFile, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CgroupDriver } from './cgroups.ts';
import { diskUsage, assessDisk } from './disk-usage.ts';
import { ContainerError, ContainerStateError, wrapError } from './errors.ts';
import { describeExit } from './exit-status.ts';
import { EXIT_STATUS_FILE, namespacedArgv, unisolatedArgv, type Tools } from './launcher.ts';
import { prlimitArgs, type ContainerLimits } from './limits.ts';
import { LogRateLimiter, pipeLines } from './log-limiter.ts';
import { logPaths, openForChild, tailFile } from './log-files.ts';
import { removeContainerNet, type ContainerNet } from './network.ts';
import { allProcesses, isSameProcess, PAGE_SIZE, readProcStat, USER_HZ } from './procfs.ts';
import { STATE_FILE, writeState, type ContainerState } from './state.ts';
import type { ContainerProcess, ContainerStats, DiskCheck, ExitInfo, IsolationMode, SpawnOptions } from './types.ts';

export const DEFAULT_GRACE_MS = 10_000;
export const DEFAULT_LOG_LINES_PER_SECOND = 100;
/** How often a recovered container's launcher (not our child) is checked for life. */
const RECOVERED_POLL_MS = 250;

export interface ContainerPaths {
  /** <dataDir>/containers/<id>: everything of the container on the host. */
  dir: string;
  /** Bound at /home/vcap. */
  home: string;
  /** Bound at /home/vcap/app. */
  app: string;
  /** Bound at /tmp. */
  tmp: string;
  /** Mount point of the container's root (inside its own mount namespace only). */
  rootfs: string;
  hostsFile: string;
}

/** What a container needs from its host. */
export interface ContainerHostContext {
  readonly prefix: string;
  readonly isolation: IsolationMode;
  readonly tools: Tools;
  readonly cgroups: CgroupDriver | null;
  /** Releases the container's uid, port and slot and drops its port mapping. */
  release(container: Container): Promise<void>;
}

interface Running {
  pid: number;
  startTime: number;
  child: ChildProcess | null;
  process: ContainerProcess;
  oomBaseline: number;
  stopReason: string | null;
  done: boolean;
}

export class Container {
  readonly id: string;
  readonly uid: number;
  readonly hostPort: number;
  /** The port the app listens on (PORT); equals hostPort with isolation none. */
  readonly containerPort: number;
  /** The container's own address (null with isolation none). */
  readonly address: string | null;
  readonly hostname: string;
  readonly limits: ContainerLimits;
  readonly paths: ContainerPaths;
  readonly cgroupPath: string;

  readonly #host: ContainerHostContext;
  readonly #net: ContainerNet | null;
  readonly #env: Record<string, string>;
  #state: ContainerState;
  #running: Running | null = null;
  #lastExit: ExitInfo | null = null;
  #destroyed = false;
  #destroying: Promise<void> | null = null;
  #stateWrites: Promise<void> = Promise.resolve();
  #spawning = false;

  /** @internal Built by ContainerHost. */
  constructor(init: {
    host: ContainerHostContext;
    state: ContainerState;
    paths: ContainerPaths;
    cgroupPath: string;
    net: ContainerNet | null;
    env: Record<string, string>;
  }) {
    this.#host = init.host;
    this.#state = init.state;
    this.#net = init.net;
    this.#env = init.env;
    this.id = init.state.id;
    this.uid = init.state.uid;
    this.hostPort = init.state.hostPort;
    this.containerPort = init.state.containerPort;
    this.address = init.state.containerAddress;
    this.hostname = init.state.hostname;
    this.limits = init.state.limits;
    this.paths = init.paths;
    this.cgroupPath = init.cgroupPath;
  }

  /** @internal The indices the host claimed for this container. */
  get state(): Readonly<ContainerState> {
    return this.#state;
  }

  get netns(): string | null {
    return this.#net?.netns ?? null;
  }

  get veth(): string | null {
    return this.#net?.veth ?? null;
  }

  /** The running process, if any. */
  get process(): ContainerProcess | null {
    return this.#running && !this.#running.done ? this.#running.process : null;
  }

  get lastExit(): ExitInfo | null {
    return this.#lastExit;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Starts `command` as the container's process. One at a time; again after it has exited. */
  async spawn(options: SpawnOptions): Promise<ContainerProcess> {
    if (this.#destroyed || this.#destroying) throw new ContainerStateError(`Container ${this.id} is destroyed; it cannot spawn`);
    if (this.process || this.#spawning) throw new ContainerStateError(`Container ${this.id} already runs a process`);
    this.#spawning = true;
    try {
      return await this.#spawn(options);
    } catch (err) {
      throw wrapError(`Spawning "${options.command.slice(0, 60)}" in container ${this.id}`, err);
    } finally {
      this.#spawning = false;
    }
  }

  async #spawn(options: SpawnOptions): Promise<ContainerProcess> {
    await this.#ownAppDir();
    const namespaced = this.#host.isolation === 'namespaces';
    const env = this.#processEnv(options.env ?? {});
    let argv: string[];
    let cwd: string | undefined;
    if (namespaced) {
      argv = namespacedArgv(
        {
          procsFiles: this.#cgroups().procsFiles(this.cgroupPath),
          netnsPath: this.#net!.netnsPath,
          rootfs: this.paths.rootfs,
          home: this.paths.home,
          app: this.paths.app,
          tmp: this.paths.tmp,
          hostsFile: this.paths.hostsFile,
          hostname: this.hostname,
          binds: this.#state.binds,
          uid: this.uid,
          gid: this.uid,
          cwd: options.cwd ?? '/home/vcap/app',
          command: options.command,
        },
        this.#host.tools,
      );
    } else {
      const root = process.geteuid?.() === 0;
      argv = unisolatedArgv(
        { uid: root ? this.uid : null, gid: root ? this.uid : null, prlimitArgs: prlimitArgs(this.limits), command: options.command },
        this.#host.tools,
      );
      cwd = this.#hostPathOf(options.cwd ?? '/home/vcap/app');
    }
    const oomBaseline = namespaced ? (await this.#cgroups().stats(this.cgroupPath)).oomKills : 0;
    // A status left by an earlier process must not be taken for this one's.
    await rm(join(this.paths.home, EXIT_STATUS_FILE), { force: true });

    // detached: its own process group and session, so the DEA's terminal signals pass it by
    // and isolation `none` can signal the whole group.
    // Output goes to files, not pipes: the app must outlive its DEA (log-files.ts).
    // The files accumulate across spawns: follow them from their end as of now.
    const fds = openForChild(logPaths(this.paths.dir));
    const logs = await this.#followLogs(options, 'end');
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), { env, cwd, detached: true, stdio: ['ignore', fds.stdout, fds.stderr] });
    } catch (err) {
      await logs.finish();
      throw err;
    } finally {
      fds.close();
    }
    const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      child.once('exit', (code, signal) => resolve([code, signal]));
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    const pid = child.pid!;
    const startTime = (await readProcStat(pid))?.startTime ?? 0;
    const running: Running = {
      pid,
      startTime,
      child,
      oomBaseline,
      stopReason: null,
      done: false,
      process: {
        pid,
        stdout: logs.stdout,
        stderr: logs.stderr,
        exited: ended.then(async ([code, signal]) => {
          await logs.finish();
          return this.#finish(running, code, signal);
        }),
        droppedLogLines: () => logs.limiter.dropped,
      },
    };
    this.#running = running;
    // A quick command may have finished (and recorded so) already.
    await this.#saveState({ ...this.#state, process: running.done ? null : { pid, startTime } });
    return running.process;
  }

  /** Follows a recovered instance's output again, from where its files end now. */
  async attachLogs(options: Pick<SpawnOptions, 'onLine' | 'logLinesPerSecond'>): Promise<void> {
    const running = this.#running;
    if (!running || running.done || running.child) return;
    const logs = await this.#followLogs(options, 'end');
    running.process.stdout = logs.stdout;
    running.process.stderr = logs.stderr;
    running.process.droppedLogLines = () => logs.limiter.dropped;
    void running.process.exited.then(() => logs.finish());
  }

  async #followLogs(options: Pick<SpawnOptions, 'onLine' | 'logLinesPerSecond'>, from: 'start' | 'end') {
    const paths = logPaths(this.paths.dir);
    const [out, err] = await Promise.all([tailFile(paths.stdout, from), tailFile(paths.stderr, from)]);
    const limiter = new LogRateLimiter({ linesPerSecond: options.logLinesPerSecond ?? DEFAULT_LOG_LINES_PER_SECOND });
    let stdout: Readable | null = null;
    let stderr: Readable | null = null;
    if (options.onLine) {
      const onLine = options.onLine;
      pipeLines(out.stream, limiter, (line) => onLine('stdout', line));
      pipeLines(err.stream, limiter, (line) => onLine('stderr', line));
    } else {
      stdout = out.stream;
      stderr = err.stream;
    }
    return { stdout, stderr, limiter, finish: () => Promise.all([out.finish(), err.finish()]).then(() => undefined) };
  }

  /** Re-attaches to a launcher that survived a DEA restart (its output is in files). */
  async recover(): Promise<void> {
    const p = this.#state.process;
    if (!p || !(await isSameProcess(p.pid, p.startTime))) {
      if (p) await this.#saveState({ ...this.#state, process: null });
      return;
    }
    const cgroups = this.#cgroupsOrNull();
    const oomBaseline = cgroups ? await cgroups.stats(this.cgroupPath).then((s) => s.oomKills, () => 0) : 0;
    const running: Running = {
      pid: p.pid,
      startTime: p.startTime,
      child: null,
      oomBaseline,
      stopReason: null,
      done: false,
      process: {
        pid: p.pid,
        stdout: null,
        stderr: null,
        exited: Promise.resolve(null as unknown as ExitInfo),
        droppedLogLines: () => 0,
      },
    };
    // Not our child: only the pid to watch, and the status the runner leaves behind.
    running.process.exited = (async () => {
      while (await isSameProcess(p.pid, p.startTime)) await sleep(RECOVERED_POLL_MS);
      return this.#finish(running, await this.#readExitStatus(), null);
    })();
    this.#running = running;
  }

  /** The status the container's runner wrote as it ended; null when it wrote none (killed too). */
  async #readExitStatus(): Promise<number | null> {
    // The app's uid can write there: never follow a link it may have planted, read a few bytes only.
    let file: FileHandle | undefined;
    try {
      file = await open(join(this.paths.home, EXIT_STATUS_FILE), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
      const { buffer, bytesRead } = await file.read({ buffer: Buffer.alloc(8), position: 0 });
      const text = buffer.subarray(0, bytesRead).toString('utf8').trim();
      return /^\d{1,3}$/.test(text) ? Number(text) : null;
    } catch {
      return null;
    } finally {
      await file?.close();
    }
  }

  async #finish(running: Running, code: number | null, signal: NodeJS.Signals | null): Promise<ExitInfo> {
    let oomKilled = false;
    const cgroups = this.#cgroupsOrNull();
    if (cgroups) {
      try {
        oomKilled = (await cgroups.stats(this.cgroupPath)).oomKills > running.oomBaseline;
      } catch {
        // the cgroup is being destroyed; no OOM can be told
      }
    }
    const info = describeExit({ code, signal, oomKilled, stopReason: running.stopReason });
    running.done = true;
    this.#lastExit = info;
    if (!this.#destroyed && !this.#destroying) await this.#saveState({ ...this.#state, process: null }).catch(() => undefined);
    return info;
  }

  /** SIGTERM to the app (via the container's init), SIGKILL to all after `graceMs`. Resolves
   *  with how it ended, or null when nothing was running. `reason` becomes the exit description. */
  async stop(options: { graceMs?: number; reason?: string } = {}): Promise<ExitInfo | null> {
    const running = this.#running;
    if (!running || running.done) return null;
    running.stopReason ??= options.reason ?? 'stopped by the DEA';
    const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    try {
      await this.#signalInit(running, 'SIGTERM');
      const timer = sleep(graceMs, 'timeout' as const);
      const outcome = await Promise.race([running.process.exited.then(() => 'exited' as const), timer]);
      if (outcome === 'timeout') await this.#killAll(running);
      return await running.process.exited;
    } catch (err) {
      throw wrapError(`Stopping container ${this.id}`, err);
    }
  }

  async #signalInit(running: Running, signal: NodeJS.Signals): Promise<void> {
    if (this.#host.isolation === 'none') {
      killQuietly(-running.pid, signal);
      return;
    }
    // The launcher (unshare) sits in the host's pid namespace; its child is the container's
    // pid 1, whose handler passes the signal on to the app.
    const init = await this.#initPid(running.pid);
    if (init !== null) killQuietly(init, signal);
  }

  async #initPid(launcher: number): Promise<number | null> {
    try {
      const text = await readFile(`/proc/${launcher}/task/${launcher}/children`, 'utf8');
      const first = text.trim().split(/\s+/)[0];
      if (first) return Number(first);
    } catch {
      // fall through to a scan
    }
    const child = (await allProcesses()).find((p) => p.ppid === launcher);
    return child?.pid ?? null;
  }

  async #killAll(running: Running): Promise<void> {
    if (this.#host.isolation === 'none') {
      killQuietly(-running.pid, 'SIGKILL');
      return;
    }
    for (const pid of await this.#cgroups().pids(this.cgroupPath)) killQuietly(pid, 'SIGKILL');
  }

  async stats(): Promise<ContainerStats> {
    try {
      const disk = await diskUsage(this.#diskRoots());
      if (this.#host.isolation === 'namespaces') {
        const s = await this.#cgroups().stats(this.cgroupPath);
        return { memoryBytes: s.memoryWorkingSetBytes, cpuNanos: s.cpuNanos, diskBytes: disk.bytes };
      }
      const group = this.#running && !this.#running.done ? this.#running.pid : null;
      const procs = group === null ? [] : (await allProcesses()).filter((p) => p.pgid === group);
      return {
        memoryBytes: procs.reduce((n, p) => n + p.rssPages * PAGE_SIZE, 0),
        cpuNanos: procs.reduce((n, p) => n + (p.cpuTicks * 1e9) / USER_HZ, 0),
        diskBytes: disk.bytes,
      };
    } catch (err) {
      throw wrapError(`Reading stats of container ${this.id}`, err);
    }
  }

  /** Disk used by the container's writable directories against its quota. The DEA stops an
   *  instance that is over quota, with a reason. */
  async checkDisk(options: { maxEntries?: number } = {}): Promise<DiskCheck> {
    return assessDisk(await diskUsage(this.#diskRoots(), options), this.limits.diskBytes);
  }

  /** Kills everything and removes every part of the container; safe to call again. */
  destroy(): Promise<void> {
    if (this.#destroyed) return Promise.resolve();
    this.#destroying ??= this.#destroy().finally(() => {
      this.#destroying = null;
    });
    return this.#destroying;
  }

  async #destroy(): Promise<void> {
    const failures: unknown[] = [];
    const step = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        failures.push(err);
      }
    };
    const running = this.#running && !this.#running.done ? this.#running : null;
    if (running) running.stopReason ??= 'destroyed by the DEA';
    const cgroups = this.#cgroupsOrNull();
    if (this.#host.isolation === 'none' && running) killQuietly(-running.pid, 'SIGKILL');
    if (cgroups) await step(() => cgroups.destroy(this.cgroupPath));
    if (running) await step(() => withTimeout(running.process.exited, 10_000, `pid ${running.pid} did not exit`));
    if (this.#host.isolation === 'namespaces') await step(() => removeContainerNet(this.#host.prefix, this.id));
    await step(() => this.#host.release(this));
    await this.#stateWrites.catch(() => undefined);
    await step(() => rm(this.paths.dir, { recursive: true, force: true }));
    this.#destroyed = true;
    if (failures.length > 0) {
      const msg = failures.map((e) => (e instanceof Error ? e.message : String(e))).join('; ');
      throw new ContainerError('SETUP_FAILED', `Destroying container ${this.id}: ${msg}`, { cause: failures[0] });
    }
  }

  #processEnv(extra: Record<string, string>): Record<string, string> {
    const namespaced = this.#host.isolation === 'namespaces';
    return {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      HOME: namespaced ? '/home/vcap' : this.paths.home,
      TMPDIR: namespaced ? '/tmp' : this.paths.tmp,
      USER: 'vcap',
      LANG: 'C.UTF-8',
      PORT: String(this.containerPort),
      ...this.#env,
      ...extra,
    };
  }

  /** Isolation none has no mount namespace: container paths name host directories. */
  #hostPathOf(containerPath: string): string {
    // Binds first: their targets lie within /tmp or /home/vcap.
    const map: Array<[string, string]> = [
      ...this.#state.binds.map((b): [string, string] => [b.target, b.source]),
      ['/home/vcap/app', this.paths.app],
      ['/home/vcap', this.paths.home],
      ['/tmp', this.paths.tmp],
    ];
    for (const [inside, outside] of map) {
      if (containerPath === inside || containerPath.startsWith(`${inside}/`)) return outside + containerPath.slice(inside.length);
    }
    return containerPath;
  }

  async #ownAppDir(): Promise<void> {
    if (this.#state.appDirOwned) return;
    const uid = process.geteuid?.() === 0 ? this.uid : null;
    if (uid !== null) await chownTree(this.paths.app, uid, uid);
    await this.#saveState({ ...this.#state, appDirOwned: true });
  }

  #diskRoots(): string[] {
    return [this.paths.home, this.paths.tmp, this.paths.app];
  }

  /** Writes are queued: a process exiting while spawn records it must not race its write. */
  #saveState(next: ContainerState): Promise<void> {
    this.#state = next;
    const write = this.#stateWrites.catch(() => undefined).then(() => writeState(join(this.paths.dir, STATE_FILE), this.#state));
    this.#stateWrites = write;
    return write;
  }

  #cgroups(): CgroupDriver {
    const c = this.#host.cgroups;
    if (!c) throw new ContainerStateError('This container host has no cgroups (isolation none)');
    return c;
  }

  #cgroupsOrNull(): CgroupDriver | null {
    return this.#host.isolation === 'namespaces' ? this.#host.cgroups : null;
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  const ac = new AbortController();
  try {
    return await Promise.race([
      p,
      sleep(ms, undefined, { signal: ac.signal }).then(() => {
        throw new Error(message);
      }),
    ]);
  } finally {
    ac.abort();
  }
}

/** chown -R that never follows symlinks (the app could plant one pointing anywhere). */
async function chownTree(root: string, uid: number, gid: number): Promise<void> {
  const stack = [root];
  while (stack.length > 0) {
    const path = stack.pop()!;
    await lchown(path, uid, gid);
    if ((await lstat(path)).isDirectory()) {
      for (const name of await readdir(path)) stack.push(join(path, name));
    }
  }
}

// Where buildpack commands run. The stager never spawns a buildpack itself: it asks a
// sandbox, which the DEA supplies, so the same staging code runs buildpacks as plain child
// processes (tests, `isolation: none`) or inside the DEA's Linux containers.
//
// The stager knows host paths only. A sandbox is created for one staging from a spec that
// names the host directories the commands need (writable, by role: build, deps, cache, home,
// tmp; read-only: the buildpacks); it may show them at other paths inside, so every path the
// stager hands to a command (argv, cwd, env values) goes through `pathInside` first.
import { spawn } from 'node:child_process';
import { chown, lstat, readdir } from 'node:fs/promises';
import { join, relative, isAbsolute, sep } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { LogStream } from './types.ts';

/** The writable host directories of one staging, by role. */
export interface StagingDirs {
  /** The build directory: the app as the droplet will hold it. */
  app: string;
  /** What bin/supply installs (deps/<index>). */
  deps: string;
  /** The app's staging cache, kept between stagings. */
  cache: string;
  home: string;
  tmp: string;
}

export interface SandboxSpec {
  /** Host directories commands may write. */
  dirs: StagingDirs;
  /** Host directories commands may read but not write (the candidate buildpacks). */
  buildpacks: string[];
  /** Memory for all of staging's processes together. */
  memoryMb: number;
  /** Disk that staging may fill. */
  diskMb: number;
}

export interface SandboxRunOptions {
  /** Working directory, as seen inside (a `pathInside` result). */
  cwd: string;
  /** The whole environment of the command: nothing is inherited. */
  env: Record<string, string>;
  /** The command (and whatever it started) is killed after this. */
  timeoutMs: number;
  /** Each line of stdout ('out') and stderr ('err'), as it is produced, without its newline. */
  onLine(line: string, stream: LogStream): void;
  /** Aborting kills the command at once. */
  signal?: AbortSignal;
}

export interface SandboxExit {
  exitCode: number | null;
  signal: string | null;
  /** Why the sandbox ended the command, when it did: 'timeout', 'aborted', 'out of memory'. */
  reason?: string;
}

export interface StagingSandbox {
  /** The path under which a host path of the spec's directories appears to commands. */
  pathInside(hostPath: string): string;
  /** Runs argv (argv[0] a path inside, or a name found on env.PATH). */
  run(argv: string[], opts: SandboxRunOptions): Promise<SandboxExit>;
  /** Releases whatever the sandbox holds (a container); safe to call twice. */
  close(): Promise<void>;
}

export type SandboxFactory = (spec: SandboxSpec) => Promise<StagingSandbox>;

/** Log lines longer than this are cut into pieces: a `logs.<app_id>` line holds at most 64 KiB. */
export const MAX_LOG_LINE_CHARS = 16 * 1024;

export interface ProcessSandboxOptions {
  /** Run commands as this uid/gid (only when the stager runs as root). Writable dirs are chowned to it. */
  uid?: number;
  gid?: number;
  /** Apply the spec's memory as RLIMIT_DATA through prlimit(1) (default true when prlimit exists). */
  memoryLimit?: boolean;
  /** prlimit's path; default found on PATH. */
  prlimitPath?: string;
}

/**
 * Buildpack commands as plain child processes on this host: paths are the host's own. Memory is
 * capped per process with RLIMIT_DATA (not the address space: V8 and the JVM reserve far more
 * address space than they use, so RLIMIT_AS would kill them at start), and files with
 * RLIMIT_FSIZE at the disk limit. It isolates nothing else; the DEA's container sandbox does.
 */
export class ProcessSandbox implements StagingSandbox {
  private readonly children = new Set<number>();
  private closed = false;

  constructor(
    private readonly spec: SandboxSpec,
    private readonly opts: ProcessSandboxOptions = {},
  ) {}

  /** A factory for the stager's `sandbox` option; chowns the writable dirs when a uid is given. */
  static factory(opts: ProcessSandboxOptions = {}): SandboxFactory {
    return async (spec) => {
      if (opts.uid !== undefined) {
        for (const dir of Object.values(spec.dirs)) await chownTree(dir, opts.uid, opts.gid ?? opts.uid);
      }
      return new ProcessSandbox(spec, opts);
    };
  }

  pathInside(hostPath: string): string {
    const known = [...Object.values(this.spec.dirs), ...this.spec.buildpacks].some((d) => isWithin(d, hostPath));
    if (!known) throw new Error(`${hostPath} is not among the sandbox's directories`);
    return hostPath;
  }

  run(argv: string[], opts: SandboxRunOptions): Promise<SandboxExit> {
    if (this.closed) return Promise.reject(new Error('the sandbox is closed'));
    if (argv.length === 0) return Promise.reject(new Error('no command given'));
    const limits: string[] = [];
    if (this.opts.memoryLimit ?? true) {
      limits.push(`--data=${this.spec.memoryMb * 1024 * 1024}`, `--fsize=${this.spec.diskMb * 1024 * 1024}`);
    }
    const full = limits.length > 0 ? [this.opts.prlimitPath ?? 'prlimit', ...limits, '--', ...argv] : argv;
    return runChild(full, opts, this.opts, this.children);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const pid of this.children) killGroup(pid);
    this.children.clear();
  }
}

function runChild(argv: string[], opts: SandboxRunOptions, ids: ProcessSandboxOptions, children: Set<number>): Promise<SandboxExit> {
  return new Promise((resolve) => {
    let reason: string | undefined;
    // Its own process group, so a timeout also ends whatever the command started.
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      ...(ids.uid !== undefined ? { uid: ids.uid, gid: ids.gid ?? ids.uid } : {}),
    });
    const out = new LineSplitter((l) => opts.onLine(l, 'out'));
    const err = new LineSplitter((l) => opts.onLine(l, 'err'));
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));

    const stop = (why: string): void => {
      reason ??= why;
      if (child.pid !== undefined) killGroup(child.pid);
    };
    const timer = setTimeout(() => stop('timeout'), Math.max(1, opts.timeoutMs));
    const onAbort = (): void => stop('aborted');
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (child.pid !== undefined) children.add(child.pid);

    let settled = false;
    const finish = (exit: SandboxExit): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (child.pid !== undefined) children.delete(child.pid);
      out.end();
      err.end();
      resolve(exit);
    };
    child.once('error', (e) => finish({ exitCode: null, signal: null, reason: `could not start ${argv[0]}: ${e.message}` }));
    child.once('exit', (code, signal) => {
      // Whatever the command left running in its group must not outlive it (nor hold its pipes open).
      if (child.pid !== undefined) killGroup(child.pid);
      const exit: SandboxExit = { exitCode: code, signal, ...(reason ? { reason } : {}) };
      // 'close' follows once the pipes drain; a grandchild that escaped the group could hold them
      // open forever, so the streams are cut after a short grace.
      const grace = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish(exit);
      }, 2000);
      child.once('close', () => {
        clearTimeout(grace);
        finish(exit);
      });
    });
  });
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Splits a byte stream into UTF-8 lines; `\r\n` and lone `\r` (progress bars) end a line too. */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private buffered = '';

  constructor(
    private readonly emit: (line: string) => void,
    private readonly maxChars = MAX_LOG_LINE_CHARS,
  ) {}

  push(chunk: Buffer): void {
    this.buffered += this.decoder.write(chunk);
    let at: number;
    while ((at = this.buffered.search(/\r\n|\n|\r/)) >= 0) {
      const sepLen = this.buffered.startsWith('\r\n', at) ? 2 : 1;
      // A lone \r at the end of a chunk may be the first half of \r\n: wait for more.
      if (this.buffered[at] === '\r' && sepLen === 1 && at === this.buffered.length - 1) break;
      this.emitLine(this.buffered.slice(0, at));
      this.buffered = this.buffered.slice(at + sepLen);
    }
    while (this.buffered.length > this.maxChars) {
      this.emit(this.buffered.slice(0, this.maxChars));
      this.buffered = this.buffered.slice(this.maxChars);
    }
  }

  end(): void {
    this.buffered += this.decoder.end();
    const rest = this.buffered.replace(/\r$/, '');
    this.buffered = '';
    if (rest.length > 0) this.emitLine(rest);
  }

  private emitLine(line: string): void {
    if (line.length === 0) return this.emit('');
    for (let i = 0; i < line.length; i += this.maxChars) this.emit(line.slice(i, i + this.maxChars));
  }
}

export function isWithin(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** chown -R without following symlinks. */
export async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  const st = await lstat(path);
  if (st.isSymbolicLink()) return;
  await chown(path, uid, gid);
  if (st.isDirectory()) {
    for (const name of await readdir(path)) await chownTree(join(path, name), uid, gid);
  }
}

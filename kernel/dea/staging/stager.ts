// Staging one app: download its package, unpack it safely, run the buildpack v2 contract
// (detect → supply/finalize or compile → release) in the caller's sandbox, choose the start
// command, pack the droplet and upload it. Each step logs a `----->` line; buildpack output
// streams through as it is produced. Any failure is a StagingError naming its step.
//
// Each staging has a private workspace under workDir, removed when it ends:
//   app/ (the build dir)  cache/  deps/  home/  tmp/  buildpack/ (a git clone)  package.zip  droplet.tgz
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describeZod } from '../../bus/mod.ts';
import { formatBytes, unpackZip } from './archive.ts';
import { buildpackScripts, detectBuildpack, parseBuildpackRequest, redactUrl, resolveBuildpacks } from './buildpacks.ts';
import { packDroplet } from './droplet.ts';
import { StagingError, errorMessage, type StagingStep } from './errors.ts';
import { compileStagerOptions } from './options.ts';
import { parseProcfile, parseRelease, selectStartCommand } from './release.ts';
import type { SandboxExit, StagingSandbox } from './sandbox.ts';
import { download, upload } from './transfer.ts';
import { stagingJob, type Buildpack, type CompiledStagerOptions, type OnLog, type StageOptions, type StagerOptions, type StagingJob, type StagingResult } from './types.ts';

const MiB = 1024 * 1024;
/** A Procfile larger than this is not a Procfile. */
const MAX_PROCFILE_BYTES = 64 * 1024;
/** The index of the (only) buildpack in the supply/finalize contract's deps dir. */
const DEPS_INDEX = '0';

const DOING: Record<StagingStep, string> = {
  request: 'reading the staging request',
  download: 'downloading the app package',
  unpack: 'unpacking the app package',
  buildpack: 'fetching the buildpack',
  detect: 'detecting the buildpack',
  supply: 'running bin/supply',
  finalize: 'running bin/finalize',
  compile: 'running bin/compile',
  release: 'running bin/release',
  package: 'packing the droplet',
  upload: 'uploading the droplet',
};

export class Stager {
  readonly options: CompiledStagerOptions;

  constructor(options: StagerOptions) {
    this.options = compileStagerOptions(options);
  }

  /** Stages one app. Resolves with the droplet's sha256 and start command; rejects with a StagingError. */
  async stage(request: unknown, opts: StageOptions = {}): Promise<StagingResult> {
    const onLog: OnLog = opts.onLog ?? (() => {});
    const parsed = stagingJob.safeParse(request);
    if (!parsed.success) {
      throw new StagingError('invalid_request', 'request', `Reading the staging request: ${describeZod(parsed.error)}`);
    }
    const run = new StagingRun(this.options, parsed.data, onLog, opts.signal);
    return run.execute();
  }
}

export function createStager(options: StagerOptions): Stager {
  return new Stager(options);
}

/** One staging's state: its workspace, deadline, current step and sandbox. */
class StagingRun {
  private step: StagingStep = 'download';
  private readonly timeout = new AbortController();
  private readonly signal: AbortSignal;
  private readonly deadline: number;
  private sandbox: StagingSandbox | undefined;
  private ws = '';

  constructor(
    private readonly options: CompiledStagerOptions,
    private readonly job: StagingJob,
    private readonly onLog: OnLog,
    private readonly cancel: AbortSignal | undefined,
  ) {
    this.deadline = Date.now() + options.timeoutMs;
    this.signal = cancel ? AbortSignal.any([cancel, this.timeout.signal]) : this.timeout.signal;
  }

  async execute(): Promise<StagingResult> {
    const timer = setTimeout(() => this.timeout.abort(), this.options.timeoutMs);
    try {
      await mkdir(this.options.workDir, { recursive: true });
      this.ws = await mkdtemp(join(this.options.workDir, `${slug(this.job.build_id)}-`));
      // Searchable, not listable: a sandbox running as another uid must reach app/, cache/, ….
      await chmod(this.ws, 0o711);
      return await this.steps();
    } catch (err) {
      const failure = this.failure(err);
      this.onLog(`Staging failed: ${failure.message}`, 'err');
      throw failure;
    } finally {
      clearTimeout(timer);
      await this.sandbox?.close().catch(() => {});
      if (this.ws && !this.options.keepWorkspace) await removeTree(this.ws);
    }
  }

  private async steps(): Promise<StagingResult> {
    const { job, options, ws } = this;
    const dirs = {
      app: join(ws, 'app'),
      cache: options.appCacheDir ? join(options.appCacheDir, slug(job.app_id)) : join(ws, 'cache'),
      deps: join(ws, 'deps'),
      home: join(ws, 'home'),
      tmp: join(ws, 'tmp'),
      clone: join(ws, 'buildpack'),
    };
    for (const d of [dirs.app, dirs.cache, dirs.deps, dirs.home, dirs.tmp]) await mkdir(d, { recursive: true, mode: 0o755 });

    // ---- download
    this.step = 'download';
    this.log('-----> Downloading app package');
    const pkg = join(ws, 'package.zip');
    const diskBytes = job.limits.disk_mb * MiB;
    let got: { bytes: number; sha256: string };
    try {
      got = await download(job.package_uri, pkg, {
        maxBytes: Math.min(options.archive.maxPackageBytes, diskBytes),
        attempts: options.transferAttempts,
        signal: this.signal,
      });
    } catch (err) {
      if (this.signal.aborted) throw err;
      throw new StagingError('download_failed', 'download', `Downloading the app package from ${redactUrl(job.package_uri)}: ${errorMessage(err)}`, { cause: err });
    }
    if (job.package_sha256 && got.sha256 !== job.package_sha256.toLowerCase()) {
      throw new StagingError('checksum_mismatch', 'download', `Downloading the app package: its sha256 is ${got.sha256}, but the request expected ${job.package_sha256.toLowerCase()}`);
    }
    this.log(`       Downloaded ${formatBytes(got.bytes)}`);

    // ---- unpack
    this.step = 'unpack';
    this.log('-----> Unpacking app package');
    const summary = await unpackZip(pkg, dirs.app, { ...options.archive, maxUnpackedBytes: Math.min(options.archive.maxUnpackedBytes, diskBytes) }, this.signal);
    await rm(pkg, { force: true });
    this.log(`       ${summary.files} files, ${formatBytes(summary.bytes)}`);

    // ---- buildpack
    this.step = 'buildpack';
    const resolved = await resolveBuildpacks(parseBuildpackRequest(job.buildpack), options, dirs.clone, this.onLog, this.signal);

    this.sandbox = await options.sandbox({
      dirs: { app: dirs.app, deps: dirs.deps, cache: dirs.cache, home: dirs.home, tmp: dirs.tmp },
      buildpacks: resolved.candidates.map((b) => b.dir),
      memoryMb: Math.max(options.memoryMb, job.limits.memory_mb),
      diskMb: options.diskMb,
    });
    const inside = (p: string): string => this.sandbox!.pathInside(p);
    const env = this.buildpackEnv({ home: inside(dirs.home), tmp: inside(dirs.tmp), cache: inside(dirs.cache) });
    const appIn = inside(dirs.app);

    // ---- detect
    this.step = 'detect';
    let chosen: Buildpack | undefined;
    let detected = '';
    if (resolved.explicit) {
      chosen = resolved.candidates[0]!;
      detected = chosen.name;
      this.log(`-----> Using buildpack ${chosen.name}`);
    } else {
      const found = await detectBuildpack(resolved.candidates, async (bp) => {
        const out: string[] = [];
        const exit = await this.runScript(bp, 'detect', [appIn], env, appIn, (line, stream) => (stream === 'out' ? out.push(line) : undefined));
        if (this.signal.aborted) throw new Error('aborted');
        return { accepted: exit.exitCode === 0, output: out.join('\n') };
      });
      chosen = found?.buildpack;
      detected = found?.detected ?? '';
      if (!chosen) {
        throw new StagingError(
          'no_buildpack_detected',
          'detect',
          `Detecting the buildpack: none of ${resolved.candidates.map((b) => b.name).join(', ')} recognized this app`,
        );
      }
      this.log(`-----> Detected buildpack ${detected}`);
    }

    // ---- supply + finalize, or compile
    const scripts = await buildpackScripts(chosen.dir);
    const cacheIn = inside(dirs.cache);
    if (scripts.finalize) {
      const depsIn = inside(dirs.deps);
      await mkdir(join(dirs.deps, DEPS_INDEX), { recursive: true, mode: 0o755 });
      await mkdir(join(dirs.app, '.profile.d'), { recursive: true, mode: 0o755 });
      if (scripts.supply) {
        this.step = 'supply';
        await this.runContract(chosen, 'supply', [appIn, cacheIn, depsIn, DEPS_INDEX], env, appIn, 'compile_failed');
      }
      this.step = 'finalize';
      // The profile dir is the app's own .profile.d, so what finalize writes travels in app/.
      await this.runContract(chosen, 'finalize', [appIn, cacheIn, depsIn, DEPS_INDEX, inside(join(dirs.app, '.profile.d'))], env, appIn, 'compile_failed');
    } else if (scripts.compile) {
      this.step = 'compile';
      await this.runContract(chosen, 'compile', [appIn, cacheIn], env, appIn, 'compile_failed');
    } else {
      this.step = 'compile';
      throw new StagingError('compile_failed', 'compile', `Compiling the app with buildpack ${chosen.name}: it has neither bin/compile nor bin/finalize`, {
        buildpack: chosen.name,
      });
    }

    // ---- release
    this.step = 'release';
    const releaseOut: string[] = [];
    await this.runContract(chosen, 'release', [appIn], env, appIn, 'release_failed', (line, stream) => (stream === 'out' ? releaseOut.push(line) : this.onLog(line, stream)));
    let release;
    try {
      release = parseRelease(releaseOut.join('\n'));
    } catch (err) {
      throw new StagingError('release_failed', 'release', `Releasing with buildpack ${chosen.name}: bin/release ${errorMessage(err)}`, { buildpack: chosen.name, cause: err });
    }
    const procfile = await readProcfile(dirs.app);
    const start = selectStartCommand({ user: job.command, procfile, release });
    if (!start) {
      throw new StagingError(
        'no_start_command',
        'release',
        `Choosing the start command: the app names no command, has no Procfile with a web process, and buildpack ${chosen.name} offers no default`,
        { buildpack: chosen.name },
      );
    }
    this.log(`       Start command (${start.source === 'user' ? 'the app\'s own' : start.source === 'procfile' ? 'Procfile' : 'buildpack default'}): ${start.command}`);
    await this.sandbox.close();
    this.sandbox = undefined;

    // ---- package
    this.step = 'package';
    this.log('-----> Packing droplet');
    if (await hasSupplied(dirs.deps)) await writeDepsProfile(dirs.app);
    const dropletPath = join(ws, 'droplet.tgz');
    let droplet: { sha256: string; bytes: number };
    try {
      droplet = await packDroplet(ws, { detected_buildpack: detected, start_command: start.command, buildpack: chosen.name }, dropletPath);
    } catch (err) {
      throw new StagingError('packaging_failed', 'package', `Packing the droplet: ${errorMessage(err)}`, { cause: err });
    }

    // ---- upload
    this.step = 'upload';
    this.log(`-----> Uploading droplet (${formatBytes(droplet.bytes)})`);
    try {
      await upload(job.droplet_upload_uri, dropletPath, { method: options.uploadMethod, sha256: droplet.sha256, attempts: options.transferAttempts, signal: this.signal });
    } catch (err) {
      if (this.signal.aborted) throw err;
      throw new StagingError('upload_failed', 'upload', `Uploading the droplet to ${redactUrl(job.droplet_upload_uri)}: ${errorMessage(err)}`, { cause: err });
    }
    this.log('-----> Uploaded droplet');
    return { droplet_sha256: droplet.sha256, detected_buildpack: detected, start_command: start.command, buildpack: chosen.name, droplet_size: droplet.bytes };
  }

  /** The environment every buildpack command gets: the app's variables, then the platform's, which win. */
  private buildpackEnv(at: { home: string; tmp: string; cache: string }): Record<string, string> {
    const { job, options } = this;
    const env: Record<string, string> = {
      ...job.env,
      PATH: options.path,
      HOME: at.home,
      TMPDIR: at.tmp,
      LANG: job.env.LANG ?? 'C.UTF-8',
      CF_STACK: job.stack ?? options.stack,
      MEMORY_LIMIT: `${job.limits.memory_mb}m`,
      npm_config_cache: `${at.cache}/npm`,
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
    };
    if (options.npmRegistry) env.npm_config_registry = options.npmRegistry;
    if (options.proxy) {
      for (const k of ['npm_config_proxy', 'npm_config_https_proxy', 'http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY']) env[k] = options.proxy;
    }
    return env;
  }

  /** Runs one contract script; a non-zero exit fails the step with `code`. */
  private async runContract(
    bp: Buildpack,
    script: 'supply' | 'finalize' | 'compile' | 'release',
    args: string[],
    env: Record<string, string>,
    cwd: string,
    code: 'compile_failed' | 'release_failed',
    onLine: OnLog = this.onLog,
  ): Promise<void> {
    const exit = await this.runScript(bp, script, args, env, cwd, onLine);
    if (exit.exitCode === 0) return;
    if (this.signal.aborted) throw new Error('aborted');
    const doing = code === 'release_failed' ? `Releasing with buildpack ${bp.name}` : `Compiling the app with buildpack ${bp.name}`;
    throw new StagingError(code, this.step, `${doing}: bin/${script} ${describeExit(exit)}`, { buildpack: bp.name, exitCode: exit.exitCode });
  }

  private runScript(bp: Buildpack, script: string, args: string[], env: Record<string, string>, cwd: string, onLine: OnLog): Promise<SandboxExit> {
    const path = this.sandbox!.pathInside(join(bp.dir, 'bin', script));
    return this.sandbox!.run([path, ...args], {
      cwd,
      env,
      timeoutMs: Math.max(1, this.deadline - Date.now()),
      onLine,
      signal: this.signal,
    });
  }

  private log(line: string): void {
    this.onLog(line, 'out');
  }

  /** Any error to the StagingError the caller sees: the deadline and cancellation win over what they caused. */
  private failure(err: unknown): StagingError {
    if (this.cancel?.aborted) {
      return new StagingError('cancelled', this.step, `Staging was cancelled while ${DOING[this.step]}`, { cause: err });
    }
    if (this.timeout.signal.aborted) {
      return new StagingError('timeout', this.step, `Staging timed out after ${Math.round(this.options.timeoutMs / 1000)} s while ${DOING[this.step]}`, { cause: err });
    }
    if (err instanceof StagingError) return err;
    const doing = DOING[this.step];
    return new StagingError('internal_error', this.step, `${doing[0]!.toUpperCase()}${doing.slice(1)}: ${errorMessage(err)}`, { cause: err });
  }
}

function describeExit(exit: SandboxExit): string {
  if (exit.reason && exit.exitCode === null && exit.signal === null) return `could not run: ${exit.reason}`;
  if (exit.reason) return `was stopped (${exit.reason})`;
  if (exit.signal) return `was killed by ${exit.signal}${exit.signal === 'SIGKILL' ? ' (out of memory?)' : ''}`;
  return `exited with status ${exit.exitCode}`;
}

/**
 * The app's Procfile, if any. Read without following a link: the build dir is the buildpack's
 * and the app's to shape, and a Procfile linked to a host file must not leak it into the droplet.
 */
async function readProcfile(appDir: string): Promise<Record<string, string> | undefined> {
  let text: string;
  try {
    const fh = await open(join(appDir, 'Procfile'), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new Error('it is not a regular file');
      if (st.size > MAX_PROCFILE_BYTES) throw new Error(`it is larger than ${formatBytes(MAX_PROCFILE_BYTES)}`);
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    const why = code === 'ELOOP' ? 'it is a symbolic link' : errorMessage(err);
    throw new StagingError('release_failed', 'release', `Reading the Procfile: ${why}`, { cause: err });
  }
  try {
    return parseProcfile(text);
  } catch (err) {
    throw new StagingError('release_failed', 'release', `Reading the Procfile: ${errorMessage(err)}`, { cause: err });
  }
}

async function hasSupplied(depsDir: string): Promise<boolean> {
  try {
    return (await readdir(join(depsDir, DEPS_INDEX))).length > 0;
  } catch {
    return false;
  }
}

/**
 * Supplied dependencies unpack next to app/ (as /home/vcap/deps beside /home/vcap/app); scripts
 * written by finalize find them through DEPS_DIR, as on Cloud Foundry. Written without
 * following links: .profile.d is the buildpack's to create.
 */
async function writeDepsProfile(appDir: string): Promise<void> {
  const dir = join(appDir, '.profile.d');
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const st = await lstat(dir);
  if (!st.isDirectory()) throw new StagingError('packaging_failed', 'package', 'Packing the droplet: app/.profile.d is not a directory');
  const fh = await open(join(dir, '000_deps_dir.sh'), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
  try {
    await fh.writeFile('export DEPS_DIR="${DEPS_DIR:-$HOME/../deps}"\n');
  } finally {
    await fh.close();
  }
}

/** A workspace may hold directories a buildpack made read-only; make them writable and retry once. */
async function removeTree(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch {
    await makeWritable(dir);
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

async function makeWritable(path: string): Promise<void> {
  try {
    const st = await lstat(path);
    if (!st.isDirectory()) return;
    await chmod(path, 0o700);
    for (const name of await readdir(path)) await makeWritable(join(path, name));
  } catch {
    // Best effort.
  }
}

/** A name safe as one directory name: never empty, never `.` or `..`. */
function slug(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^\./, '_').slice(0, 64) || 'staging';
}

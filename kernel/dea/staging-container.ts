// Buildpacks run in a container of the DEA's own host: the same namespaces, unprivileged
// uid, cgroup limits (staging's memory and pids) and filtered network as an instance, so an
// app's build scripts see no more of the DEA than the app itself will.
//
// One container per staging, one command at a time in it (detect, supply, finalize or
// compile, release). The build directory is the container's app directory, so the app is
// built at /home/vcap/app — where it will run — and deps land at /home/vcap/deps, where the
// droplet puts them; absolute paths a buildpack writes stay true at run time. The cache,
// HOME, TMPDIR and the (read-only) buildpacks are bound under /tmp.
import { randomBytes } from 'node:crypto';
import { join, relative } from 'node:path';
import type { Bind, Container, ContainerHost, ExitInfo } from './container/mod.ts';
import { chownTree, isWithin, type SandboxExit, type SandboxFactory, type SandboxRunOptions, type SandboxSpec, type StagingSandbox } from './staging/mod.ts';

const MiB = 1024 * 1024;

export interface ContainerSandboxOptions {
  /** Processes staging may run at once (npm and its children, a JVM's threads count too). */
  pids: number;
  /** Log lines per second passed on (staging output is bursty: npm, compilers). */
  logLinesPerSecond?: number;
}

/** Where each staging directory appears inside the container. */
export const STAGING_PLACES = {
  app: '/home/vcap/app',
  deps: '/home/vcap/deps',
  cache: '/tmp/cache',
  home: '/tmp/home',
  tmp: '/tmp/staging',
  buildpacks: '/tmp/buildpacks',
} as const;

export function containerSandboxFactory(host: ContainerHost, opts: ContainerSandboxOptions): SandboxFactory {
  return async (spec) => {
    const places = placesFor(spec);
    const container = await host.createContainer({
      id: `staging-${randomBytes(6).toString('hex')}`,
      memoryBytes: spec.memoryMb * MiB,
      diskBytes: spec.diskMb * MiB,
      pids: opts.pids,
      appDir: spec.dirs.app,
      hostname: 'staging',
      binds: places.filter((p) => p.target !== STAGING_PLACES.app),
    });
    try {
      if (process.geteuid?.() === 0) {
        for (const dir of [spec.dirs.deps, spec.dirs.cache, spec.dirs.home, spec.dirs.tmp]) await chownTree(dir, container.uid, container.uid);
      }
    } catch (err) {
      await container.destroy().catch(() => undefined);
      throw err;
    }
    return new ContainerSandbox(container, places, opts);
  };
}

/** The spec's directories with their places inside; the app first. */
function placesFor(spec: SandboxSpec): Bind[] {
  const { dirs } = spec;
  return [
    { source: dirs.app, target: STAGING_PLACES.app, readOnly: false },
    { source: dirs.deps, target: STAGING_PLACES.deps, readOnly: false },
    { source: dirs.cache, target: STAGING_PLACES.cache, readOnly: false },
    { source: dirs.home, target: STAGING_PLACES.home, readOnly: false },
    { source: dirs.tmp, target: STAGING_PLACES.tmp, readOnly: false },
    ...spec.buildpacks.map((dir, i) => ({ source: dir, target: `${STAGING_PLACES.buildpacks}/${i}`, readOnly: true })),
  ];
}

class ContainerSandbox implements StagingSandbox {
  constructor(
    private readonly container: Container,
    private readonly places: Bind[],
    private readonly opts: ContainerSandboxOptions,
  ) {}

  pathInside(hostPath: string): string {
    // The innermost directory wins (the cache may lie inside the workspace, for one).
    const place = this.places
      .filter((p) => isWithin(p.source, hostPath))
      .sort((a, b) => b.source.length - a.source.length)[0];
    if (!place) throw new Error(`${hostPath} is not among the sandbox's directories`);
    const rest = relative(place.source, hostPath);
    return rest === '' ? place.target : join(place.target, rest);
  }

  async run(argv: string[], opts: SandboxRunOptions): Promise<SandboxExit> {
    if (argv.length === 0) throw new Error('no command given');
    let reason: string | undefined;
    const proc = await this.container.spawn({
      command: `exec ${argv.map(shellQuote).join(' ')}`,
      env: opts.env,
      cwd: opts.cwd,
      onLine: (stream, line) => opts.onLine(line, stream === 'stdout' ? 'out' : 'err'),
      logLinesPerSecond: this.opts.logLinesPerSecond ?? 1000,
    });
    const end = (why: string): void => {
      reason ??= why;
      void this.container.stop({ graceMs: 0, reason: `staging ${why}` }).catch(() => undefined);
    };
    const timer = setTimeout(() => end('timeout'), Math.max(1, opts.timeoutMs));
    const onAbort = (): void => end('aborted');
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return sandboxExit(await proc.exited, reason);
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    await this.container.destroy();
  }
}

function sandboxExit(info: ExitInfo, reason: string | undefined): SandboxExit {
  const why = reason ?? (info.reason === 'out of memory' ? 'out of memory' : undefined);
  // The container's runner turns death by signal N into status 128+N, as a shell does.
  return { exitCode: info.exitStatus, signal: info.signal, ...(why ? { reason: why } : {}) };
}

export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./=:@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

// Cgroups for containers, v1 and v2 behind one interface. v1 (this machine's kind) has a
// hierarchy per controller under <root>/<controller>; v2 has one unified tree where parents
// must delegate controllers through cgroup.subtree_control. The version is detected by
// <root>/cgroup.controllers, which only a unified mount has. File contents are parsed by pure
// functions so both drivers are tested against fixture trees.

import { access, mkdir, readFile, readdir, realpath, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { wrapError } from './errors.ts';
import { cgroupWrites, type CgroupController, type ContainerLimits } from './limits.ts';

export interface CgroupStats {
  memoryUsageBytes: number;
  /** Usage minus inactive file cache: what the kernel would not reclaim easily. */
  memoryWorkingSetBytes: number;
  cpuNanos: number;
  /** Processes the kernel's OOM killer has killed in this cgroup. */
  oomKills: number;
}

export interface CgroupDriver {
  readonly version: 1 | 2;
  readonly root: string;
  /** Directories that make up one cgroup path (one per hierarchy in v1). */
  dirs(path: string): string[];
  /** The cgroup.procs files a launcher writes its pid to before it runs anything else. */
  procsFiles(path: string): string[];
  /** Creates the cgroup (and parents) and writes its limits. */
  create(path: string, limits: ContainerLimits): Promise<void>;
  stats(path: string): Promise<CgroupStats>;
  pids(path: string): Promise<number[]>;
  /** SIGKILLs every process in the cgroup and removes it; idempotent. */
  destroy(path: string, timeoutMs?: number): Promise<void>;
  /** Names of the child cgroups of `path` (union over hierarchies). */
  children(path: string): Promise<string[]>;
  /** Removes `path` if nothing lives in it any more; never fails. */
  removeIfEmpty(path: string): Promise<void>;
}

/** Parses the "key value" lines of memory.stat, cpu.stat, memory.events, memory.oom_control. */
export function parseFlatKeyed(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [key, value, extra] = line.trim().split(/\s+/);
    if (key && value !== undefined && extra === undefined && /^-?\d+$/.test(value)) out[key] = Number(value);
  }
  return out;
}

export function parseNumber(text: string): number {
  const t = text.trim();
  if (t === 'max') return Number.POSITIVE_INFINITY;
  const n = Number(t);
  if (!Number.isFinite(n)) throw new Error(`expected a number, found "${t.slice(0, 40)}"`);
  return n;
}

export function parsePids(text: string): number[] {
  return text.split('\n').filter((l) => /^\d+$/.test(l.trim())).map((l) => Number(l.trim()));
}

/** v1 stats from the raw files: memory.usage_in_bytes, memory.stat, cpuacct.usage, memory.oom_control. */
export function statsV1(files: { usage: string; memoryStat: string; cpuacctUsage: string; oomControl: string }): CgroupStats {
  const usage = parseNumber(files.usage);
  const stat = parseFlatKeyed(files.memoryStat);
  const inactive = stat.total_inactive_file ?? stat.inactive_file ?? 0;
  return {
    memoryUsageBytes: usage,
    memoryWorkingSetBytes: Math.max(0, usage - inactive),
    cpuNanos: parseNumber(files.cpuacctUsage),
    oomKills: parseFlatKeyed(files.oomControl).oom_kill ?? 0,
  };
}

/** v2 stats from the raw files: memory.current, memory.stat, cpu.stat, memory.events. */
export function statsV2(files: { current: string; memoryStat: string; cpuStat: string; events: string }): CgroupStats {
  const usage = parseNumber(files.current);
  const inactive = parseFlatKeyed(files.memoryStat).inactive_file ?? 0;
  return {
    memoryUsageBytes: usage,
    memoryWorkingSetBytes: Math.max(0, usage - inactive),
    cpuNanos: (parseFlatKeyed(files.cpuStat).usage_usec ?? 0) * 1000,
    oomKills: parseFlatKeyed(files.events).oom_kill ?? 0,
  };
}

export async function detectCgroupVersion(root: string): Promise<1 | 2 | null> {
  if (await exists(join(root, 'cgroup.controllers'))) return 2;
  if (await exists(join(root, 'memory'))) return 1;
  return null;
}

export async function openCgroups(root: string): Promise<CgroupDriver> {
  const version = await detectCgroupVersion(root);
  if (version === 2) return new CgroupV2(root);
  if (version === 1) return CgroupV1.open(root);
  throw new Error(`no cgroup filesystem found at ${root} (neither ${root}/cgroup.controllers nor ${root}/memory)`);
}

const V1_HIERARCHIES = ['memory', 'pids', 'cpu', 'cpuacct'] as const;
type V1Hierarchy = (typeof V1_HIERARCHIES)[number];

abstract class CgroupBase {
  abstract dirs(path: string): string[];
  abstract procsFiles(path: string): string[];
  protected abstract killAll(path: string): Promise<number>;

  async pids(path: string): Promise<number[]> {
    const all = new Set<number>();
    for (const file of this.procsFiles(path)) {
      for (const pid of parsePids(await readOr(file, ''))) all.add(pid);
    }
    return [...all];
  }

  async destroy(path: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const killed = await this.killAll(path);
      let remaining = 0;
      let lastError: unknown = null;
      if (killed === 0) {
        for (const dir of this.dirs(path)) {
          try {
            await rmdir(dir);
          } catch (err) {
            if (code(err) === 'ENOENT') continue;
            remaining++;
            lastError = err;
          }
        }
        if (remaining === 0) return;
      }
      if (Date.now() > deadline) {
        throw wrapError(`Removing cgroup ${path}`, lastError ?? new Error(`processes still alive: ${(await this.pids(path)).join(' ')}`));
      }
      // Killed processes leave the cgroup asynchronously; poll until they have.
      await sleep(20);
    }
  }

  async children(path: string): Promise<string[]> {
    const names = new Set<string>();
    for (const dir of this.dirs(path)) {
      try {
        for (const e of await readdir(dir, { withFileTypes: true })) if (e.isDirectory()) names.add(e.name);
      } catch (err) {
        if (code(err) !== 'ENOENT') throw err;
      }
    }
    return [...names];
  }

  async removeIfEmpty(path: string): Promise<void> {
    for (const dir of this.dirs(path)) {
      await rmdir(dir).catch(() => undefined);
    }
  }

  protected async sigkill(pids: number[]): Promise<number> {
    let n = 0;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        n++;
      } catch (err) {
        if (code(err) !== 'ESRCH') throw err;
      }
    }
    return n;
  }
}

class CgroupV1 extends CgroupBase implements CgroupDriver {
  readonly version = 1 as const;

  private constructor(
    readonly root: string,
    private readonly hierarchies: Map<V1Hierarchy, string>,
  ) {
    super();
  }

  /** Maps each controller to its mount; co-mounted ones (cpu,cpuacct) share a directory. */
  static async open(root: string): Promise<CgroupV1> {
    const map = new Map<V1Hierarchy, string>();
    for (const h of V1_HIERARCHIES) {
      const dir = join(root, h);
      map.set(h, (await exists(dir)) ? await realpath(dir) : dir);
    }
    return new CgroupV1(root, map);
  }

  private dir(h: V1Hierarchy, path: string): string {
    return join(this.hierarchies.get(h)!, path);
  }

  dirs(path: string): string[] {
    return [...new Set(V1_HIERARCHIES.map((h) => this.dir(h, path)))];
  }

  procsFiles(path: string): string[] {
    return this.dirs(path).map((d) => join(d, 'cgroup.procs'));
  }

  async create(path: string, limits: ContainerLimits): Promise<void> {
    try {
      for (const dir of this.dirs(path)) await mkdir(dir, { recursive: true });
      for (const w of cgroupWrites(1, limits)) {
        await writeLimit(join(this.dir(w.controller as V1Hierarchy, path), w.file), w.value, w.optional);
      }
    } catch (err) {
      throw wrapError(`Creating cgroup ${path}`, err);
    }
  }

  async stats(path: string): Promise<CgroupStats> {
    const mem = this.dir('memory', path);
    return statsV1({
      usage: await readFile(join(mem, 'memory.usage_in_bytes'), 'utf8'),
      memoryStat: await readOr(join(mem, 'memory.stat'), ''),
      cpuacctUsage: await readOr(join(this.dir('cpuacct', path), 'cpuacct.usage'), '0'),
      oomControl: await readOr(join(mem, 'memory.oom_control'), ''),
    });
  }

  protected async killAll(path: string): Promise<number> {
    return this.sigkill(await this.pids(path));
  }
}

const V2_CONTROLLERS: CgroupController[] = ['memory', 'pids', 'cpu'];

class CgroupV2 extends CgroupBase implements CgroupDriver {
  readonly version = 2 as const;

  constructor(readonly root: string) {
    super();
  }

  dirs(path: string): string[] {
    return [join(this.root, path)];
  }

  procsFiles(path: string): string[] {
    return [join(this.root, path, 'cgroup.procs')];
  }

  async create(path: string, limits: ContainerLimits): Promise<void> {
    try {
      // Every ancestor, the root included, must hand the controllers down to its children.
      const parts = path.split('/');
      const delegate = V2_CONTROLLERS.map((c) => `+${c}`).join(' ');
      for (let i = 0; i < parts.length; i++) {
        const dir = join(this.root, ...parts.slice(0, i));
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'cgroup.subtree_control'), delegate);
      }
      await mkdir(join(this.root, path), { recursive: true });
      for (const w of cgroupWrites(2, limits)) {
        await writeLimit(join(this.root, path, w.file), w.value, w.optional);
      }
    } catch (err) {
      throw wrapError(`Creating cgroup ${path}`, err);
    }
  }

  async stats(path: string): Promise<CgroupStats> {
    const dir = join(this.root, path);
    return statsV2({
      current: await readFile(join(dir, 'memory.current'), 'utf8'),
      memoryStat: await readOr(join(dir, 'memory.stat'), ''),
      cpuStat: await readOr(join(dir, 'cpu.stat'), ''),
      events: await readOr(join(dir, 'memory.events'), ''),
    });
  }

  protected async killAll(path: string): Promise<number> {
    const pids = await this.pids(path);
    if (pids.length === 0) return 0;
    // cgroup.kill (Linux 5.14+) kills atomically, even a forking tree; fall back to signals.
    const killFile = join(this.root, path, 'cgroup.kill');
    if (await exists(killFile)) await writeFile(killFile, '1').catch(() => undefined);
    return (await this.sigkill(pids)) || pids.length;
  }
}

async function writeLimit(file: string, value: string, optional: boolean): Promise<void> {
  if (optional && !(await exists(file))) return;
  try {
    await writeFile(file, value);
  } catch (err) {
    throw wrapError(`Writing ${value} to ${file}`, err);
  }
}

async function readOr(file: string, fallback: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (code(err) === 'ENOENT') return fallback;
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

// A VM's cgroup (v1, this machine's kind: one hierarchy per controller) sized from its vm_type's
// cloud_properties: memory_mb → memory.limit_in_bytes, cpu_shares → cpu.shares.

import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CloudError } from '../errors.ts';
import { exists } from './host-network.ts';

export const CONTROLLERS = ['memory', 'cpu', 'pids'] as const;

export interface VmLimits {
  memoryMb: number | null;
  cpuShares: number | null;
}

/** Reads the limits from a vm_type's cloud_properties; pure. */
export function readLimits(cloudProperties: Record<string, unknown>): VmLimits {
  const problems: string[] = [];
  const num = (key: string, min: number): number | null => {
    const v = cloudProperties[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      problems.push(`${key}: expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
      return null;
    }
    return v;
  };
  const limits = { memoryMb: num('memory_mb', 16), cpuShares: num('cpu_shares', 2) };
  if (problems.length) throw new CloudError(`Reading cloud_properties: ${problems.join('; ')}`);
  return limits;
}

/** The files and values to write for `limits`; pure. */
export function limitWrites(limits: VmLimits): Array<{ controller: (typeof CONTROLLERS)[number]; file: string; value: string }> {
  const out: Array<{ controller: (typeof CONTROLLERS)[number]; file: string; value: string }> = [];
  if (limits.memoryMb !== null) out.push({ controller: 'memory', file: 'memory.limit_in_bytes', value: String(limits.memoryMb * 1024 * 1024) });
  if (limits.cpuShares !== null) out.push({ controller: 'cpu', file: 'cpu.shares', value: String(limits.cpuShares) });
  return out;
}

export function cgroupDirs(root: string, path: string): string[] {
  return CONTROLLERS.map((c) => join(root, c, path));
}

export function procsFiles(root: string, path: string): string[] {
  return cgroupDirs(root, path).map((d) => join(d, 'cgroup.procs'));
}

export async function createCgroup(root: string, path: string, limits: VmLimits): Promise<void> {
  if (!(await exists(join(root, 'memory')))) {
    throw new CloudError(`no cgroup v1 memory hierarchy under ${root}`);
  }
  for (const dir of cgroupDirs(root, path)) await mkdir(dir, { recursive: true });
  for (const w of limitWrites(limits)) await writeFile(join(root, w.controller, path, w.file), w.value);
}

export async function cgroupPids(root: string, path: string): Promise<number[]> {
  const pids = new Set<number>();
  for (const file of procsFiles(root, path)) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (/^\d+$/.test(line.trim())) pids.add(Number(line));
  }
  return [...pids];
}

/** SIGKILLs everything in the cgroup (and `extraPids`), waits for them to leave, removes it. */
export async function destroyCgroup(root: string, path: string, extraPids: number[] = [], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const pid of extraPids) kill(pid);
  for (;;) {
    const pids = await cgroupPids(root, path);
    pids.forEach(kill);
    if (pids.length === 0) {
      let left = 0;
      for (const dir of cgroupDirs(root, path)) {
        try {
          await rmdir(dir);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') left++;
        }
      }
      if (left === 0) return;
    }
    if (Date.now() > deadline) throw new CloudError(`Removing cgroup ${path}: processes still alive: ${pids.join(' ')}`);
    // Killed processes leave the cgroup asynchronously; poll until they have.
    await sleep(20);
  }
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

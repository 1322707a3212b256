// A container's resource limits and how each cgroup version spells them. Pure: the cgroup
// driver performs the writes this module lists, in this order.

export interface ContainerLimits {
  memoryBytes: number;
  /** Processes the app may run at once. */
  pids: number;
  cpuShares: number;
  diskBytes: number;
}

/** The launcher (unshare, in the host's pid namespace) and the container's init (pid 1) share
 *  the container's cgroup; the pids limit makes room for them so `pids` is the app's own. */
export const CONTAINER_OVERHEAD_PROCESSES = 2;

export type CgroupController = 'memory' | 'pids' | 'cpu';

export interface CgroupWrite {
  controller: CgroupController;
  file: string;
  value: string;
  /** Skipped when the kernel lacks the file (swap accounting off, older kernels). */
  optional: boolean;
}

/** cgroup v1 cpu.shares (2…262144, default 1024) → v2 cpu.weight (1…10000, default 100),
 *  the conversion runc and systemd use. */
export function sharesToWeight(shares: number): number {
  const clamped = Math.min(262144, Math.max(2, Math.round(shares)));
  return 1 + Math.floor(((clamped - 2) * 9999) / 262142);
}

export function cgroupWrites(version: 1 | 2, limits: ContainerLimits): CgroupWrite[] {
  const pidsMax = String(limits.pids + CONTAINER_OVERHEAD_PROCESSES);
  const memory = String(limits.memoryBytes);
  if (version === 1) {
    return [
      { controller: 'memory', file: 'memory.limit_in_bytes', value: memory, optional: false },
      // Equal to the memory limit: the container gets no swap on top of it.
      { controller: 'memory', file: 'memory.memsw.limit_in_bytes', value: memory, optional: true },
      { controller: 'pids', file: 'pids.max', value: pidsMax, optional: false },
      { controller: 'cpu', file: 'cpu.shares', value: String(limits.cpuShares), optional: false },
    ];
  }
  return [
    { controller: 'memory', file: 'memory.max', value: memory, optional: false },
    { controller: 'memory', file: 'memory.swap.max', value: '0', optional: true },
    // Kill the whole container on OOM rather than leaving it half alive.
    { controller: 'memory', file: 'memory.oom.group', value: '1', optional: true },
    { controller: 'pids', file: 'pids.max', value: pidsMax, optional: false },
    { controller: 'cpu', file: 'cpu.weight', value: String(sharesToWeight(limits.cpuShares)), optional: false },
  ];
}

/** prlimit(1) options for isolation `none`, where no cgroup holds the instance: processes
 *  are capped per uid (one uid per instance), open files bounded, no core dumps. Memory is
 *  measured but not enforced in that mode. */
export function prlimitArgs(limits: ContainerLimits): string[] {
  return [`--nproc=${limits.pids + 1}`, '--nofile=16384', '--core=0'];
}

// Which persistent disks are mounted, read from the kernel's mount table as BOSH's agent does
// for list_disk: a disk counts only while its path is a mount point in the agent's own mount
// namespace (a VM's), whatever the agent was told earlier. Parsing is pure.
import { readFileSync } from 'node:fs';

/** The mount points of a /proc/<pid>/mountinfo text (field 5, octal escapes such as \040 undone). */
export function mountPointsOf(mountinfo: string): Set<string> {
  const points = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    const field = line.split(' ')[4];
    if (field) points.add(field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return points;
}

/** The cids of `disks` (cid → path) whose path is one of `points`, in the disks' order. */
export function mountedDisks(disks: Record<string, string>, points: ReadonlySet<string>): string[] {
  return Object.entries(disks)
    .filter(([, path]) => points.has(path.replace(/\/+$/, '') || '/'))
    .map(([cid]) => cid);
}

/** This process's mount points now. */
export function currentMountPoints(): Set<string> {
  return mountPointsOf(readFileSync('/proc/self/mountinfo', 'utf8'));
}

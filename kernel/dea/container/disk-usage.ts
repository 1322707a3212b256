// Disk used by a container's writable directories, measured like du: allocated blocks,
// hard links counted once, symlinks not followed. The walk is bounded (an app can create
// millions of files) and then reports a lower bound, which is enough to tell over-quota.

import { lstat, opendir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DiskCheck } from './types.ts';

export interface DiskUsage {
  bytes: number;
  entries: number;
  /** False when maxEntries stopped the walk. */
  complete: boolean;
}

export const DEFAULT_MAX_ENTRIES = 200_000;

export async function diskUsage(roots: string[], options: { maxEntries?: number } = {}): Promise<DiskUsage> {
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const seen = new Set<string>();
  let bytes = 0;
  let entries = 0;
  const stack = [...new Set(roots)];
  while (stack.length > 0) {
    const path = stack.pop()!;
    if (entries >= maxEntries) return { bytes, entries, complete: false };
    let st;
    try {
      st = await lstat(path);
    } catch {
      continue; // removed while we walked
    }
    entries++;
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) continue;
    if (st.nlink > 1 || st.isDirectory()) seen.add(key);
    bytes += allocated(st.blocks, st.size);
    if (!st.isDirectory()) continue;
    try {
      const dir = await opendir(path);
      for await (const entry of dir) stack.push(join(path, entry.name));
    } catch {
      // unreadable or vanished directory: count what we could
    }
  }
  return { bytes, entries, complete: true };
}

function allocated(blocks: number, size: number): number {
  // st_blocks is in 512-byte units whatever the filesystem's block size.
  return Number.isFinite(blocks) ? blocks * 512 : size;
}

export function assessDisk(usage: DiskUsage, quotaBytes: number): DiskCheck {
  return { usedBytes: usage.bytes, quotaBytes, overQuota: usage.bytes > quotaBytes, complete: usage.complete };
}

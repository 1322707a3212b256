// Which files of the controller's resource cache (HTTP blobstore mode) to remove: the least
// recently used first, until the cache fits its bound — never one used lately, since a package
// being built reads the files it fetched a moment ago. A pure function of the listing.

export interface CachedFile {
  path: string;
  size: number;
  /** Last use: the package builder touches a file each time it takes it from the cache. */
  usedAtMs: number;
}

/** The files to remove so that the rest fit in `maxBytes`, oldest use first, sparing those used within `keepRecentMs`. */
export function cacheEviction(files: readonly CachedFile[], maxBytes: number, nowMs: number, keepRecentMs: number): CachedFile[] {
  let total = files.reduce((n, f) => n + f.size, 0);
  const out: CachedFile[] = [];
  for (const f of [...files].sort((a, b) => a.usedAtMs - b.usedAtMs)) {
    if (total <= maxBytes) break;
    if (nowMs - f.usedAtMs < keepRecentMs) break; // sorted: every later one is more recent still
    out.push(f);
    total -= f.size;
  }
  return out;
}

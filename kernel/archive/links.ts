// Where symbolic links in app bits lead. Shared by every unpacker of app bits (the
// controller's package check and the DEA's stager), so the two can never disagree about
// what leaves the app directory.

/** Links followed in one path before it counts as a loop (the kernel's own limit is 40). */
export const MAX_LINK_HOPS = 40;

/**
 * Does `path` lead outside the app directory once every link on the way is followed, as the
 * kernel would after extraction? `links` maps each link's path (relative, normalised) to its
 * target. A link may point through other links (`a` → `.`, then `b` → `a/../x`), so a look at
 * each target alone is not enough. Absolute targets and loops count as outside.
 */
export function leadsOutside(links: ReadonlyMap<string, string>, path: string): boolean {
  const queue = path.split('/');
  const at: string[] = [];
  let hops = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (at.length === 0) return true;
      at.pop();
      continue;
    }
    at.push(part);
    const target = links.get(at.join('/'));
    if (target === undefined) continue;
    if (++hops > MAX_LINK_HOPS || target.startsWith('/')) return true;
    at.pop();
    queue.unshift(...target.split('/'));
  }
  return false;
}

// An app's bits: the uploaded zip is checked entry by entry (no absolute paths, no `..`, no
// symlink pointing out of the app), every file lands in the resource cache under its sha1,
// and the package is rebuilt from the cache — the uploaded files plus those the client left
// out because resource_match said the controller already had them. Pure checks first, the
// zip I/O below them.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import yazl from 'yazl';
import type { Blobstore } from './blobstore.ts';
import { mapLimit } from './map-limit.ts';
import { leadsOutside } from '../archive/links.ts';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const MAX_ENTRIES = 200_000;

export class PackageError extends Error {
  override name = 'PackageError';
}

/** One entry of a package: what rebuilding it needs. */
export type PackageEntry =
  | { kind: 'file'; path: string; mode: number; sha1: string; size: number }
  | { kind: 'dir'; path: string; mode: number }
  | { kind: 'symlink'; path: string; mode: number; target: string };

/** A resource the client says the controller holds (resource_match), to merge into the package. */
export interface MatchedResource {
  path: string;
  sha1: string;
  size: number;
  mode: number;
}

// ---- pure checks ------------------------------------------------------------------------

/** Why an entry name is unsafe to extract, or null when it is fine. */
export function unsafePath(name: string): string | null {
  if (name.length === 0) return 'an empty file name';
  if (name.includes('\0')) return `a NUL byte in ${JSON.stringify(name)}`;
  if (name.includes('\\')) return `a backslash in ${JSON.stringify(name)}`;
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return `an absolute path: ${name}`;
  if (name.split('/').some((s) => s === '..')) return `a path leaving the app directory: ${name}`;
  return null;
}

/** Does a symlink at `path` pointing at `target` resolve outside the app directory? */
export function symlinkEscapes(path: string, target: string): boolean {
  if (target.startsWith('/') || target.includes('\0')) return true;
  const resolved = posix.normalize(posix.join(posix.dirname(path), target));
  return resolved === '..' || resolved.startsWith('../');
}


/** `"0644"`, `"644"` or 420 → 0o644; file type bits are dropped. */
export function parseMode(mode: string | number | undefined, fallback = 0o644): number {
  if (mode === undefined || mode === '') return fallback;
  const n = typeof mode === 'number' ? mode : /^[0-7]{1,6}$/.test(mode) ? parseInt(mode, 8) : NaN;
  if (!Number.isFinite(n)) throw new PackageError(`invalid file mode ${JSON.stringify(mode)}`);
  return n & 0o7777;
}

/** The entry's path without a trailing slash, normalised (`./a//b` → `a/b`). */
export function cleanPath(name: string): string {
  const p = posix.normalize(name).replace(/\/+$/, '');
  return p === '.' ? '' : p.replace(/^\.\//, '');
}

// ---- zip I/O ----------------------------------------------------------------------------

/**
 * Reads an uploaded zip, refusing unsafe entries, and stores each file in the resource
 * cache. Returns the entries in zip order.
 */
export async function ingestZip(zipPath: string, blobs: Blobstore, limits: { maxUnzippedBytes: number }): Promise<PackageEntry[]> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(zipPath, { lazyEntries: true, decodeStrings: true, validateEntrySizes: true, strictFileNames: true, autoClose: false });
  } catch (err) {
    throw new PackageError(`not a valid zip file (${(err as Error).message})`);
  }
  const entries: PackageEntry[] = [];
  let total = 0;
  try {
    if (zip.entryCount > MAX_ENTRIES) throw new PackageError(`more than ${MAX_ENTRIES} entries`);
    for await (const entry of iterate(zip)) {
      const name = entry.fileName;
      const problem = unsafePath(name);
      if (problem) throw new PackageError(`the zip holds ${problem}`);
      const path = cleanPath(name);
      if (path === '') continue;
      const attrMode = (entry.externalFileAttributes >>> 16) & 0xffff;
      const isDir = name.endsWith('/') || (attrMode & S_IFMT) === S_IFDIR;
      if (isDir) {
        entries.push({ kind: 'dir', path, mode: attrMode & 0o7777 || 0o755 });
        continue;
      }
      total += entry.uncompressedSize;
      if (total > limits.maxUnzippedBytes) throw new PackageError(`its files add up to more than ${limits.maxUnzippedBytes} bytes unpacked`);
      if (entry.isEncrypted()) throw new PackageError(`${path} is encrypted`);
      if ((attrMode & S_IFMT) === S_IFLNK) {
        if (entry.uncompressedSize > 4096) throw new PackageError(`the symlink ${path} has a target longer than 4096 bytes`);
        const target = (await readEntry(zip, entry)).toString('utf8');
        if (symlinkEscapes(path, target)) throw new PackageError(`the symlink ${path} points outside the app directory (${target})`);
        entries.push({ kind: 'symlink', path, mode: 0o777, target });
        continue;
      }
      const { sha1, size } = await cacheEntry(zip, entry, blobs);
      entries.push({ kind: 'file', path, mode: attrMode & 0o7777 || 0o644, sha1, size });
    }
  } catch (err) {
    if (err instanceof PackageError) throw err;
    throw new PackageError(`the zip cannot be read (${(err as Error).message})`);
  } finally {
    zip.close();
  }
  checkEntries(entries);
  return entries;
}

/** No path twice, and no symlink leading out through other links. */
export function checkEntries(entries: readonly PackageEntry[]): void {
  const seen = new Set<string>();
  const links = new Map<string, string>();
  for (const e of entries) {
    if (seen.has(e.path) && e.kind !== 'dir') throw new PackageError(`the zip holds ${e.path} more than once`);
    seen.add(e.path);
    if (e.kind === 'symlink') links.set(e.path, e.target);
  }
  for (const path of links.keys()) {
    if (leadsOutside(links, path)) throw new PackageError(`the symlink ${path} points outside the app directory through other links`);
  }
}

/** Blob lookups (sizes, cache fetches) a push makes at once: a remote blobstore answers each in a round trip. */
export const BLOB_LOOKUPS_IN_FLIGHT = 16;

/** Adds the matched resources (refusing unsafe paths and resources not held) to the entries; uploaded files win. */
export async function mergeResources(entries: PackageEntry[], resources: MatchedResource[], blobs: Blobstore): Promise<PackageEntry[]> {
  const out = [...entries];
  const seen = new Set(entries.map((e) => e.path));
  for (const r of resources) {
    const problem = unsafePath(r.path);
    if (problem) throw new PackageError(`resources hold ${problem}`);
  }
  const sizes = await mapLimit(resources, BLOB_LOOKUPS_IN_FLIGHT, (r) => blobs.size('resources', r.sha1));
  for (const [i, r] of resources.entries()) {
    const path = cleanPath(r.path);
    if (path === '' || seen.has(path)) continue;
    const size = sizes[i];
    if (size === undefined || size !== r.size) {
      throw new PackageError(`the resource ${path} (sha1 ${r.sha1}, ${r.size} bytes) is not in the resource cache; upload it`);
    }
    seen.add(path);
    out.push({ kind: 'file', path, mode: r.mode, sha1: r.sha1, size: r.size });
  }
  return out;
}

/** Writes a package zip from the entries (files read from the resource cache, fetched to local disk first when remote). */
export async function buildZip(entries: PackageEntry[], blobs: Blobstore, outPath: string): Promise<void> {
  const keys = [...new Set(entries.flatMap((e) => (e.kind === 'file' ? [e.sha1] : [])))];
  const local = new Map(await mapLimit(keys, BLOB_LOOKUPS_IN_FLIGHT, async (sha1) => [sha1, await blobs.localPath('resources', sha1)] as const));
  const zip = new yazl.ZipFile();
  const mtime = new Date(Date.UTC(2000, 0, 1));
  const dirs = new Set<string>();
  for (const e of entries) {
    if (e.kind === 'dir') {
      if (dirs.has(e.path)) continue;
      dirs.add(e.path);
      zip.addEmptyDirectory(e.path, { mode: S_IFDIR | e.mode, mtime });
    } else if (e.kind === 'symlink') {
      zip.addBuffer(Buffer.from(e.target), e.path, { mode: S_IFLNK | 0o777, mtime, compress: false });
    } else {
      zip.addFile(local.get(e.sha1)!, e.path, { mode: S_IFREG | e.mode, mtime });
    }
  }
  zip.end();
  try {
    await pipeline(zip.outputStream, createWriteStream(outPath));
  } catch (err) {
    await rm(outPath, { force: true });
    throw err;
  }
}

async function* iterate(zip: yauzl.ZipFile): AsyncGenerator<yauzl.Entry> {
  for (;;) {
    const entry = await new Promise<yauzl.Entry | null>((resolve, reject) => {
      const onEntry = (e: yauzl.Entry): void => {
        cleanup();
        resolve(e);
      };
      const onEnd = (): void => {
        cleanup();
        resolve(null);
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(/invalid relative path|absolute path|invalid characters/i.test(err.message) ? new PackageError(`the zip holds an unsafe path (${err.message})`) : err);
      };
      const cleanup = (): void => {
        zip.off('entry', onEntry);
        zip.off('end', onEnd);
        zip.off('error', onError);
      };
      zip.on('entry', onEntry);
      zip.on('end', onEnd);
      zip.on('error', onError);
      zip.readEntry();
    });
    if (!entry) return;
    yield entry;
  }
}

async function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Buffer> {
  const stream = await zip.openReadStreamPromise(entry);
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

async function cacheEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, blobs: Blobstore): Promise<{ sha1: string; size: number }> {
  const temp = blobs.tempPath('resource');
  const hash = createHash('sha1');
  let size = 0;
  try {
    const stream = await zip.openReadStreamPromise(entry);
    await pipeline(
      stream,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const c of chunks) {
          size += c.length;
          hash.update(c);
          yield c;
        }
      },
      createWriteStream(temp),
    );
    const sha1 = hash.digest('hex');
    await blobs.put('resources', sha1, temp);
    return { sha1, size };
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

// Tarballs and content hashes. A tarball built here is reproducible: files in sorted order,
// no owners, one fixed mtime, and gzip without a timestamp, so the same tree gives the same
// bytes (and the same sha1). Reading checks every entry: regular files and directories only,
// relative paths without `..`.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';

export function sha1(data: Uint8Array): string {
  return createHash('sha1').update(data).digest('hex');
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface FileEntry {
  /** Relative, with "/" separators. */
  path: string;
  executable: boolean;
}

/** Every regular file under dir, sorted; directories named in `skip` (relative paths) are left out. Symlinks are refused. */
export function listFiles(dir: string, skip: ReadonlySet<string> = new Set()): FileEntry[] {
  const out: FileEntry[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      if (skip.has(path)) continue;
      const st = lstatSync(join(dir, path));
      if (st.isDirectory()) walk(path);
      else if (st.isFile()) out.push({ path, executable: (st.mode & 0o111) !== 0 });
      else throw new Error(`${join(dir, path)} is neither a file nor a directory`);
    }
  };
  walk('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A content hash of a tree: each file's path, executable bit and content; `extra` lines go first. */
export function treeFingerprint(dir: string, files: readonly FileEntry[], extra: readonly string[] = []): string {
  const h = createHash('sha256');
  for (const line of extra) h.update(`${line}\n`);
  for (const f of files) h.update(`${f.path}\0${f.executable ? 'x' : '-'}\0${sha256(readFileSync(join(dir, f.path)))}\n`);
  return h.digest('hex');
}

/** A reproducible .tgz of the given files of dir. */
export async function tarFiles(dir: string, files: readonly string[]): Promise<Buffer> {
  const sorted = [...files].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const chunks: Buffer[] = [];
  const stream = tar.c({ gzip: true, cwd: dir, portable: true, mtime: new Date(0), noDirRecurse: true }, sorted);
  for await (const chunk of stream as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

export interface TarEntry {
  path: string;
  mode: number;
  data: Buffer;
}

/** Bound on what one tarball may unpack to in memory (a guard against gzip bombs). */
export const MAX_UNPACKED_BYTES = 1024 * 1024 * 1024;

/**
 * The files of a .tgz in memory. Refuses links, devices, a path given twice and any path
 * that is absolute or climbs out (`..`), naming the entry; `label` says which tarball it is.
 */
export async function readTgz(data: Uint8Array, label: string, problems: string[], maxBytes = MAX_UNPACKED_BYTES): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const seen = new Set<string>();
  let total = 0;
  let tooBig = false;
  const parser = new tar.Parser({ strict: true });
  parser.on('entry', (entry: tar.ReadEntry) => {
    const path = entry.path.replace(/^\.\//, '').replace(/\/$/, '');
    const segments = path.split('/');
    if (entry.path.startsWith('/') || segments.includes('..') || /^[A-Za-z]:/.test(entry.path) || entry.path.includes('\\')) {
      problems.push(`${label}: entry ${JSON.stringify(entry.path)} is outside the archive (absolute or with "..")`);
      entry.resume();
      return;
    }
    if (entry.type === 'Directory') {
      entry.resume();
      return;
    }
    if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile') {
      problems.push(`${label}: entry ${JSON.stringify(entry.path)} is a ${entry.type}; only files and directories are allowed`);
      entry.resume();
      return;
    }
    if (seen.has(path)) {
      problems.push(`${label}: entry ${JSON.stringify(entry.path)} appears twice`);
      entry.resume();
      return;
    }
    seen.add(path);
    const chunks: Buffer[] = [];
    entry.on('data', (c: Buffer) => {
      total += c.length;
      if (total > maxBytes) {
        if (!tooBig) problems.push(`${label}: unpacks to more than ${maxBytes >= 1024 * 1024 ? `${Math.round(maxBytes / 1024 / 1024)} MB` : `${maxBytes} bytes`}`);
        tooBig = true;
        return;
      }
      chunks.push(c);
    });
    entry.on('end', () => {
      if (!tooBig) entries.push({ path, mode: entry.mode ?? 0o644, data: Buffer.concat(chunks) });
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      parser.on('end', () => resolve());
      parser.on('error', reject);
      parser.on('warn', (_code: string, message: string | Error) => reject(message instanceof Error ? message : new Error(message)));
      parser.end(Buffer.from(data));
    });
  } catch (err) {
    problems.push(`${label}: not a readable .tgz (${(err as Error).message})`);
  }
  return entries;
}

/** A reproducible .tgz of in-memory files (a job's members; a rendered job for the blobstore). */
export function tarMemory(files: ReadonlyArray<{ path: string; data: Uint8Array | string; mode?: number }>): Buffer {
  const blocks: Buffer[] = [];
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const data = Buffer.from(f.data);
    const header = new tar.Header({ path: f.path, mode: f.mode ?? 0o644, size: data.length, type: 'File', mtime: new Date(0), uid: 0, gid: 0 });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

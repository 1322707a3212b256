// Unpacking an app package (a zip) into the app directory without trusting it. The package is
// the developer's upload, so every entry is checked before anything is written: no absolute
// paths, no `..` leading out, no special files, and limits against zip bombs (entry count,
// total uncompressed bytes, compression ratio). Symbolic links are created last, after every
// file and directory, so no write ever passes through a link the archive made; then each link
// is resolved on disk, through any chain of links, and must land inside the app directory.
// Unix modes (from the entry's external attributes) are kept, minus setuid/setgid/sticky.
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, symlink } from 'node:fs/promises';
import { posix, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { StagingError, UnsafeEntryError, errorMessage } from './errors.ts';
import type { ArchiveLimits } from './types.ts';
import { leadsOutside } from '../../archive/links.ts';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
/** The "version made by" host byte of a zip written on a Unix system: its external attributes hold st_mode. */
const MADE_BY_UNIX = 3;
/** Longest symlink target accepted (PATH_MAX). */
const MAX_LINK_TARGET = 4096;
/** Links followed while resolving one path, as the kernel's ELOOP limit. */

export type EntryKind = 'file' | 'directory' | 'symlink';

export interface EntryPlan {
  /** Position of the entry in the zip's directory. */
  index: number;
  /** The name as it appears in the zip (for messages). */
  name: string;
  /** Normalized path relative to the app directory, without a trailing slash. */
  path: string;
  kind: EntryKind;
  /** Permission bits to apply (files and directories). */
  mode: number;
  compressedSize: number;
  uncompressedSize: number;
}

export interface UnpackSummary {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
}

/**
 * Checks an entry's name; returns its normalized relative path, or '' for the archive root
 * (a `./` entry). Throws UnsafeEntryError naming the entry.
 */
export function safeEntryPath(name: string): string {
  if (name.length === 0) throw new UnsafeEntryError('""', 'has an empty name');
  if (name.includes('\0')) throw new UnsafeEntryError(JSON.stringify(name), 'has a NUL character in its name');
  // Zips written on Windows may use backslashes; reading them as separators keeps `..\x` from
  // slipping past as a single odd file name.
  const slashed = name.replace(/\\/g, '/');
  if (slashed.startsWith('/') || /^[A-Za-z]:/.test(slashed)) throw new UnsafeEntryError(name, 'is an absolute path');
  const normalized = posix.normalize(slashed).replace(/\/+$/, '');
  if (normalized === '..' || normalized.startsWith('../')) throw new UnsafeEntryError(name, 'leads outside the app directory');
  return normalized === '.' ? '' : normalized;
}

/** Decides an entry's kind and mode from its name and external attributes. */
export function entryKind(name: string, versionMadeBy: number, externalAttributes: number): { kind: EntryKind; mode: number } {
  const unixMode = versionMadeBy >>> 8 === MADE_BY_UNIX ? externalAttributes >>> 16 : 0;
  const type = unixMode & S_IFMT;
  const perm = unixMode & 0o777;
  const isDir = name.endsWith('/') || name.endsWith('\\') || type === S_IFDIR;
  if (type === S_IFLNK) return { kind: 'symlink', mode: 0o777 };
  if (isDir) return { kind: 'directory', mode: (perm || 0o755) | 0o700 };
  if (type !== 0 && type !== S_IFREG) throw new UnsafeEntryError(name, 'is a special file (a device, fifo or socket)');
  // The owner keeps read and write: buildpacks must be able to work on the app's files.
  return { kind: 'file', mode: (perm || 0o644) | 0o600 };
}

/** Checks a symlink's target as written, before it exists on disk. */
export function checkLinkTarget(name: string, path: string, target: string): void {
  if (target.length === 0 || target.includes('\0')) throw new UnsafeEntryError(name, 'is a symbolic link with an empty or invalid target');
  if (target.length > MAX_LINK_TARGET) throw new UnsafeEntryError(name, 'is a symbolic link with an overlong target');
  if (target.startsWith('/')) throw new UnsafeEntryError(name, `is a symbolic link to the absolute path ${target}`);
  const resolved = posix.normalize(posix.join(posix.dirname(path), target));
  if (resolved === '..' || resolved.startsWith('../')) throw new UnsafeEntryError(name, `is a symbolic link leading outside the app directory (to ${target})`);
}

/**
 * Plans every entry from the central directory alone and applies the count, size and ratio
 * limits, so a bad package is refused before a byte is written.
 */
export function planEntries(
  entries: Array<{ name: string; versionMadeBy: number; externalFileAttributes: number; compressedSize: number; uncompressedSize: number; encrypted: boolean }>,
  limits: ArchiveLimits,
): EntryPlan[] {
  const plans: EntryPlan[] = [];
  let total = 0;
  for (const [index, e] of entries.entries()) {
    if (index >= limits.maxEntries) throw new UnsafeEntryError(e.name, `is beyond the limit of ${limits.maxEntries} entries`);
    const path = safeEntryPath(e.name);
    const { kind, mode } = entryKind(e.name, e.versionMadeBy, e.externalFileAttributes);
    if (e.encrypted) throw new UnsafeEntryError(e.name, 'is encrypted');
    if (path === '') {
      if (kind !== 'directory') throw new UnsafeEntryError(e.name, 'names the app directory itself');
      continue;
    }
    if (kind === 'symlink' && e.uncompressedSize > MAX_LINK_TARGET) throw new UnsafeEntryError(e.name, 'is a symbolic link with an overlong target');
    total += e.uncompressedSize;
    if (total > limits.maxUnpackedBytes) {
      throw new UnsafeEntryError(e.name, `makes the package unpack to more than ${formatBytes(limits.maxUnpackedBytes)}`);
    }
    if (e.uncompressedSize >= limits.ratioFloorBytes) {
      const ratio = e.uncompressedSize / Math.max(1, e.compressedSize);
      if (ratio > limits.maxRatio) {
        throw new UnsafeEntryError(e.name, `expands ${Math.round(ratio)}-fold, beyond the limit of ${limits.maxRatio}-fold (a zip bomb?)`);
      }
    }
    plans.push({ index, name: e.name, path, kind, mode, compressedSize: e.compressedSize, uncompressedSize: e.uncompressedSize });
  }
  // Nothing may be placed under a link: written there it would land wherever the link points,
  // and a link's own target would be read from a directory other than the one it names.
  const linkPaths = new Set(plans.filter((p) => p.kind === 'symlink').map((p) => p.path));
  if (linkPaths.size > 0) {
    for (const p of plans) {
      const parts = p.path.split('/');
      for (let i = 1; i < parts.length; i++) {
        const prefix = parts.slice(0, i).join('/');
        if (linkPaths.has(prefix)) throw new UnsafeEntryError(p.name, `lies under the symbolic link ${prefix}`);
      }
    }
  }
  return plans;
}

/**
 * Unpacks `zipPath` into `dest` (an existing, empty directory). Throws StagingError:
 * `unsafe_archive` (with `entry`) or `invalid_archive`. On failure `dest` may hold a partial
 * tree, but nothing outside it: the caller removes it.
 */
export async function unpackZip(zipPath: string, dest: string, limits: ArchiveLimits, signal?: AbortSignal): Promise<UnpackSummary> {
  let zip: yauzl.ZipFile;
  try {
    // decodeStrings off: yauzl would refuse `../x` with a message that does not name our rule;
    // names are decoded here and checked by safeEntryPath.
    zip = await yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true });
  } catch (err) {
    throw new StagingError('invalid_archive', 'unpack', `Unpacking the app package: it is not a readable zip file (${errorMessage(err)})`, { cause: err });
  }
  try {
    const raw: Array<{ entry: yauzl.Entry; name: string }> = [];
    try {
      for await (const entry of zip.eachEntry()) {
        signal?.throwIfAborted();
        // strict: backslashes stay as written, so a message names the entry as the zip holds it.
        const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
        raw.push({ entry, name });
        // Refuse an archive with far too many entries without reading its whole directory.
        if (raw.length > limits.maxEntries) break;
      }
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new StagingError('invalid_archive', 'unpack', `Unpacking the app package: its zip directory is damaged (${errorMessage(err)})`, { cause: err });
    }
    const plans = planOrRefuse(
      raw.map(({ entry, name }) => ({
        name,
        versionMadeBy: entry.versionMadeBy,
        externalFileAttributes: entry.externalFileAttributes,
        compressedSize: entry.compressedSize,
        uncompressedSize: entry.uncompressedSize,
        encrypted: entry.isEncrypted(),
      })),
      limits,
    );
    return await writeEntries(zip, plans, raw.map((r) => r.entry), dest, limits, signal);
  } finally {
    zip.close();
  }
}

function planOrRefuse(entries: Parameters<typeof planEntries>[0], limits: ArchiveLimits): EntryPlan[] {
  try {
    return planEntries(entries, limits);
  } catch (err) {
    throw toStagingError(err);
  }
}

async function writeEntries(
  zip: yauzl.ZipFile,
  plans: EntryPlan[],
  entries: yauzl.Entry[],
  dest: string,
  limits: ArchiveLimits,
  signal: AbortSignal | undefined,
): Promise<UnpackSummary> {
  const summary: UnpackSummary = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  const links: Array<{ plan: EntryPlan; target: string }> = [];
  const dirModes: Array<{ path: string; mode: number }> = [];
  const budget = { left: limits.maxUnpackedBytes };

  for (const plan of plans) {
    signal?.throwIfAborted();
    const entry = entries[plan.index]!;
    const target = join(dest, plan.path);
    try {
      if (plan.kind === 'directory') {
        await mkdir(target, { recursive: true, mode: 0o755 });
        dirModes.push({ path: target, mode: plan.mode });
        summary.directories++;
      } else if (plan.kind === 'file') {
        await mkdir(join(target, '..'), { recursive: true, mode: 0o755 });
        const stream = await zip.openReadStreamPromise(entry);
        // 'wx': an entry that appears twice is refused rather than silently overwritten.
        await pipeline(stream, byteBudget(plan.name, budget, limits.maxUnpackedBytes), createWriteStream(target, { flags: 'wx', mode: 0o600 }), { signal });
        await chmod(target, plan.mode);
        summary.files++;
        summary.bytes += plan.uncompressedSize;
      } else {
        const linkTarget = (await readSmall(await zip.openReadStreamPromise(entry), MAX_LINK_TARGET)).toString('utf8');
        checkLinkTarget(plan.name, plan.path, linkTarget);
        links.push({ plan, target: linkTarget });
      }
    } catch (err) {
      if (signal?.aborted) throw err;
      throw toStagingError(err, plan.name);
    }
  }

  // Links may point through other links; only the whole chain followed tells where one lands.
  // Checked before any link exists, so none that leads out is ever on disk.
  const linkMap = new Map(links.map(({ plan, target }) => [plan.path, target]));
  for (const { plan } of links) {
    if (leadsOutside(linkMap, plan.path)) {
      throw toStagingError(new UnsafeEntryError(plan.name, 'is a symbolic link leading outside the app directory through other links'));
    }
  }
  for (const { plan, target } of links) {
    const at = join(dest, plan.path);
    try {
      await mkdir(join(at, '..'), { recursive: true, mode: 0o755 });
      await symlink(target, at);
      summary.symlinks++;
    } catch (err) {
      throw toStagingError(err, plan.name);
    }
  }
  // Deepest first, and last: a directory without write permission must not block its own files.
  for (const { path, mode } of dirModes.reverse()) await chmod(path, mode);
  return summary;
}


function byteBudget(name: string, budget: { left: number }, max: number): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      budget.left -= chunk.length;
      if (budget.left < 0) return cb(new UnsafeEntryError(name, `makes the package unpack to more than ${formatBytes(max)}`));
      cb(null, chunk);
    },
  });
}

async function readSmall(stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      stream.destroy();
      throw new Error('content larger than expected');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function toStagingError(err: unknown, entryName?: string): StagingError {
  if (err instanceof StagingError) return err;
  if (err instanceof UnsafeEntryError) {
    return new StagingError('unsafe_archive', 'unpack', `Unpacking the app package: ${err.message}`, { entry: err.entry, cause: err });
  }
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'EEXIST' ? 'it appears twice, or clashes with another entry' : code === 'ENOTDIR' ? 'a file of the package stands where its directory should be' : errorMessage(err);
  return new StagingError('invalid_archive', 'unpack', `Unpacking the app package: entry ${entryName ?? '?'}: ${why}`, {
    ...(entryName !== undefined ? { entry: entryName } : {}),
    cause: err,
  });
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 * 1024) return `${+(n / (1024 * 1024 * 1024)).toFixed(1)} GiB`;
  if (n >= 1024 * 1024) return `${+(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

// An app's bits as a push sees them: every file of the app directory (or of a .zip/.jar/.war
// archive) with its sha1, size and mode — what `resource_match` asks the controller about —
// then a zip of only what the controller lacks. `.cfignore` and the cf CLI's default ignores
// apply to directories; archives are taken as they are.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile, readdir, readlink, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { IgnoreRules } from './cfignore.ts';
import { ClientError } from './errors.ts';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
/** Zip entries get a fixed time: the same files always make the same zip. */
const ZIP_MTIME = new Date(Date.UTC(1980, 0, 2));
const ARCHIVES = new Set(['.zip', '.jar', '.war']);

export type AppEntry =
  | { kind: 'file'; path: string; size: number; mode: number; sha1: string; source: { file: string } | { bytes: Buffer } }
  | { kind: 'dir'; path: string; mode: number }
  | { kind: 'symlink'; path: string; target: string };

export interface AppBits {
  entries: AppEntry[];
  files: number;
  bytes: number;
  /** Paths left out by .cfignore and the default ignores (the top of each ignored tree). */
  ignored: string[];
}

/** The resource description resource_match and the upload's `resources` part take. */
export interface ResourceDescription {
  checksum: { value: string };
  size_in_bytes: number;
  path: string;
  mode: string;
}

/** Every file under `path` (a directory, an archive, or a single file) with its fingerprint. */
export async function fingerprint(path: string): Promise<AppBits> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw new ClientError('bad_path', `cannot read the app at ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (st.isDirectory()) return fingerprintDirectory(path);
  if (st.isFile() && ARCHIVES.has(extname(path).toLowerCase())) return fingerprintArchive(path);
  if (st.isFile()) {
    const bytes = await readFile(path);
    const name = path.split('/').pop()!;
    const entry: AppEntry = { kind: 'file', path: name, size: bytes.length, mode: st.mode & 0o777, sha1: sha1Of(bytes), source: { bytes } };
    return { entries: [entry], files: 1, bytes: bytes.length, ignored: [] };
  }
  throw new ClientError('bad_path', `${path} is neither a directory nor a file`);
}

async function fingerprintDirectory(root: string): Promise<AppBits> {
  let cfignore: string | undefined;
  try {
    cfignore = await readFile(join(root, '.cfignore'), 'utf8');
  } catch {
    cfignore = undefined;
  }
  const rules = IgnoreRules.fromCfignore(cfignore);
  const entries: AppEntry[] = [];
  const ignored: string[] = [];
  let bytes = 0;
  let files = 0;
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(root, rel))).sort();
    for (const name of names) {
      const relPath = rel ? `${rel}/${name}` : name;
      const full = join(root, relPath);
      const st = await lstat(full);
      if (rules.ignores(relPath, st.isDirectory())) {
        ignored.push(relPath);
        continue;
      }
      if (st.isSymbolicLink()) {
        entries.push({ kind: 'symlink', path: relPath, target: await readlink(full) });
      } else if (st.isDirectory()) {
        entries.push({ kind: 'dir', path: relPath, mode: st.mode & 0o777 });
        await walk(relPath);
      } else if (st.isFile()) {
        const sha1 = await sha1OfFile(full);
        entries.push({ kind: 'file', path: relPath, size: st.size, mode: st.mode & 0o777, sha1, source: { file: full } });
        bytes += st.size;
        files++;
      }
      // Sockets, fifos and devices are not part of an app.
    }
  };
  await walk('');
  return { entries, files, bytes, ignored };
}

async function fingerprintArchive(file: string): Promise<AppBits> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(file, { lazyEntries: true, decodeStrings: true, autoClose: false });
  } catch (err) {
    throw new ClientError('bad_path', `${file} is not a readable zip archive (${(err as Error).message})`);
  }
  const entries: AppEntry[] = [];
  let bytes = 0;
  let files = 0;
  try {
    for await (const entry of zipEntries(zip)) {
      const path = entry.fileName.replace(/\/+$/, '');
      if (path === '') continue;
      const attr = (entry.externalFileAttributes >>> 16) & 0xffff;
      if (entry.fileName.endsWith('/') || (attr & S_IFMT) === S_IFDIR) {
        entries.push({ kind: 'dir', path, mode: attr & 0o777 || 0o755 });
        continue;
      }
      const content = await readZipEntry(zip, entry);
      if ((attr & S_IFMT) === S_IFLNK) {
        entries.push({ kind: 'symlink', path, target: content.toString('utf8') });
        continue;
      }
      entries.push({ kind: 'file', path, size: content.length, mode: attr & 0o777 || 0o644, sha1: sha1Of(content), source: { bytes: content } });
      bytes += content.length;
      files++;
    }
  } catch (err) {
    throw new ClientError('bad_path', `reading the archive ${file}: ${(err as Error).message}`);
  } finally {
    zip.close();
  }
  return { entries, files, bytes, ignored: [] };
}

/** The files as resource_match wants them described. */
export function describeResources(bits: AppBits): ResourceDescription[] {
  return bits.entries.flatMap((e) => (e.kind === 'file' ? [{ checksum: { value: e.sha1 }, size_in_bytes: e.size, path: e.path, mode: octal(e.mode) }] : []));
}

/**
 * What goes into the zip once the controller said which files it holds: the files it lacks,
 * every symlink, and directories that would otherwise not exist (empty ones).
 */
export function missingEntries(bits: AppBits, matched: ReadonlyArray<{ checksum: { value: string }; path?: string | undefined }>): AppEntry[] {
  const held = new Set(matched.map((m) => `${m.path ?? ''}\0${m.checksum.value}`));
  const files = bits.entries.filter((e) => e.kind !== 'dir' && !(e.kind === 'file' && held.has(`${e.path}\0${e.sha1}`)));
  const hasChild = new Set<string>();
  for (const e of bits.entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) hasChild.add(parts.slice(0, i).join('/'));
  }
  const emptyDirs = bits.entries.filter((e) => e.kind === 'dir' && !hasChild.has(e.path));
  return [...emptyDirs, ...files];
}

/** The matched resources, as the upload's `resources` part. */
export function matchedResources(bits: AppBits, matched: ReadonlyArray<{ checksum: { value: string }; path?: string | undefined }>): ResourceDescription[] {
  const held = new Set(matched.map((m) => `${m.path ?? ''}\0${m.checksum.value}`));
  return describeResources(bits).filter((r) => held.has(`${r.path}\0${r.checksum.value}`));
}

/** A zip of the entries, with their modes, in a fixed order with fixed times. */
export async function zipEntriesToBuffer(entries: AppEntry[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const e of entries) {
    if (e.kind === 'dir') zip.addEmptyDirectory(e.path, { mode: S_IFDIR | e.mode, mtime: ZIP_MTIME });
    else if (e.kind === 'symlink') zip.addBuffer(Buffer.from(e.target), e.path, { mode: S_IFLNK | 0o777, mtime: ZIP_MTIME, compress: false });
    else if ('file' in e.source) zip.addFile(e.source.file, e.path, { mode: S_IFREG | e.mode, mtime: ZIP_MTIME });
    else zip.addBuffer(e.source.bytes, e.path, { mode: S_IFREG | e.mode, mtime: ZIP_MTIME });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

export function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

function sha1Of(bytes: Buffer): string {
  return createHash('sha1').update(bytes).digest('hex');
}

async function sha1OfFile(file: string): Promise<string> {
  const hash = createHash('sha1');
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('hex');
}

async function* zipEntries(zip: yauzl.ZipFile): AsyncGenerator<yauzl.Entry> {
  for (;;) {
    const entry = await new Promise<yauzl.Entry | null>((resolve, reject) => {
      const cleanup = (): void => {
        zip.off('entry', onEntry);
        zip.off('end', onEnd);
        zip.off('error', onError);
      };
      const onEntry = (e: yauzl.Entry): void => (cleanup(), resolve(e));
      const onEnd = (): void => (cleanup(), resolve(null));
      const onError = (err: Error): void => (cleanup(), reject(err));
      zip.on('entry', onEntry);
      zip.on('end', onEnd);
      zip.on('error', onError);
      zip.readEntry();
    });
    if (!entry) return;
    yield entry;
  }
}

async function readZipEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Buffer> {
  const stream = await zip.openReadStreamPromise(entry);
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

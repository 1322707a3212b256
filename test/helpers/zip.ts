// Zips for tests, written with yazl: app packages from a directory or a list of entries
// (files with modes, directories, symlinks as S_IFLNK entries), and the malicious ones a
// stager must refuse — `../` and absolute names, links out of the app, zip bombs.
import { readdir, lstat, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import yazl from 'yazl';

export type ZipEntrySpec =
  | { type?: 'file'; name: string; content: string | Buffer; mode?: number; compress?: boolean }
  | { type: 'dir'; name: string; mode?: number }
  | { type: 'symlink'; name: string; target: string }
  /** `bytes` zero bytes, streamed (never held in memory), deflated: a ratio near 1000:1. */
  | { type: 'zeros'; name: string; bytes: number };

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** Builds a zip in memory. Entry names are written as given, even `../x` or `/x`, which yazl itself refuses. */
export async function zipBuffer(entries: ZipEntrySpec[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const internal = zip as unknown as { entries: Array<{ utf8FileName: Buffer }> };
  const mtime = new Date('2024-01-01T00:00:00Z');
  for (const [i, e] of entries.entries()) {
    // yazl validates names; add under a harmless one and put the real bytes in afterwards.
    const placeholder = `entry-${i}`;
    switch (e.type) {
      case 'dir':
        zip.addEmptyDirectory(placeholder, { mode: S_IFDIR | (e.mode ?? 0o755), mtime });
        break;
      case 'symlink':
        zip.addBuffer(Buffer.from(e.target), placeholder, { mode: S_IFLNK | 0o777, compress: false, mtime });
        break;
      case 'zeros':
        zip.addReadStream(zeros(e.bytes), placeholder, { mode: S_IFREG | 0o644, compress: true, mtime });
        break;
      default:
        zip.addBuffer(Buffer.from(e.content), placeholder, { mode: S_IFREG | (e.mode ?? 0o644), compress: e.compress ?? true, mtime });
    }
    const name = e.type === 'dir' && !e.name.endsWith('/') ? `${e.name}/` : e.name;
    internal.entries[internal.entries.length - 1]!.utf8FileName = Buffer.from(name);
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Zips a directory's contents (names relative to it), keeping modes and symlinks; skips `exclude`d names at any depth. */
export async function zipDirectory(dir: string, opts: { exclude?: string[]; extra?: ZipEntrySpec[] } = {}): Promise<Buffer> {
  const entries: ZipEntrySpec[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      if (opts.exclude?.includes(name)) continue;
      const relPath = rel ? `${rel}/${name}` : name;
      const full = join(dir, relPath);
      const st = await lstat(full);
      if (st.isSymbolicLink()) entries.push({ type: 'symlink', name: relPath, target: await readlink(full) });
      else if (st.isDirectory()) {
        entries.push({ type: 'dir', name: relPath, mode: st.mode & 0o777 });
        await walk(relPath);
      } else if (st.isFile()) entries.push({ name: relPath, content: await readFile(full), mode: st.mode & 0o777 });
    }
  };
  await walk('');
  return zipBuffer([...entries, ...(opts.extra ?? [])]);
}

export async function writeZip(path: string, entries: ZipEntrySpec[]): Promise<string> {
  await writeFile(path, await zipBuffer(entries));
  return path;
}

/** Malicious packages, each with the entry name a stager must report. */
export const maliciousZips: Record<string, { entry: string; entries: ZipEntrySpec[] }> = {
  traversal: { entry: '../evil', entries: [{ name: 'index.html', content: 'ok' }, { name: '../evil', content: 'escaped' }] },
  deepTraversal: { entry: 'a/../../evil', entries: [{ name: 'a/../../evil', content: 'escaped' }] },
  absolute: { entry: '/tmp/ingot-evil-absolute', entries: [{ name: '/tmp/ingot-evil-absolute', content: 'escaped' }] },
  backslashTraversal: { entry: '..\\evil', entries: [{ name: '..\\evil', content: 'escaped' }] },
  symlinkAbsolute: { entry: 'etc', entries: [{ type: 'symlink', name: 'etc', target: '/etc' }] },
  symlinkUp: { entry: 'x', entries: [{ type: 'symlink', name: 'x', target: '../../x' }] },
  /** Each link stays inside on its own; followed together they lead out: `a/up` → `..`, then `esc` → `a/up/..`. */
  symlinkChain: {
    entry: 'esc',
    entries: [
      { type: 'dir', name: 'a' },
      { type: 'symlink', name: 'a/up', target: '..' },
      { type: 'symlink', name: 's', target: 'a/up' },
      { type: 'symlink', name: 'esc', target: 's/..' },
    ],
  },
  /** A link, then a file written "through" it: must never land where the link points. */
  writeThroughLink: {
    entry: 'dir/ingot-evil-through-link',
    entries: [
      { type: 'symlink', name: 'dir', target: '/tmp' },
      { name: 'dir/ingot-evil-through-link', content: 'escaped' },
    ],
  },
  /** A link under a link: `a` → `.` makes `a/c` → `../x` resolve from the root, one level out. */
  linkUnderLink: {
    entry: 'a/c',
    entries: [
      { type: 'symlink', name: 'a', target: '.' },
      { type: 'symlink', name: 'a/c', target: '../x' },
    ],
  },
  zipBomb: { entry: 'bomb.bin', entries: [{ name: 'index.html', content: 'ok' }, { type: 'zeros', name: 'bomb.bin', bytes: 16 * 1024 * 1024 }] },
};

function zeros(total: number): Readable {
  const chunk = Buffer.alloc(64 * 1024);
  let left = total;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const n = Math.min(left, chunk.length);
      left -= n;
      this.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    },
  });
}

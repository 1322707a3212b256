// The blobstore: a local directory, content-addressed. Packages and droplets live under
// their sha256, app files of the resource cache under their sha1 (the digest clients send
// in resource_match). A blob is written to tmp/ first and renamed into place, so a reader
// never sees half a file and two uploads of the same bits share one blob. Controllers sharing
// the directory each write to their own tmp/cc-<index>/, and clear only that one at start:
// what is in another's may be an upload it is receiving right now.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

export type BlobKind = 'packages' | 'droplets' | 'resources';

const KEY = { packages: /^[0-9a-f]{64}$/, droplets: /^[0-9a-f]{64}$/, resources: /^[0-9a-f]{40}$/ } as const;

export class Blobstore {
  private constructor(
    readonly dir: string,
    readonly tmpDir: string,
  ) {}

  /** The blobstore in `dir`, as the controller of config `index` uses it. */
  static async open(dir: string, index = 0): Promise<Blobstore> {
    const store = new Blobstore(dir, join(dir, 'tmp', `cc-${index}`));
    for (const sub of ['packages', 'droplets', 'resources']) await mkdir(join(dir, sub), { recursive: true });
    await mkdir(store.tmpDir, { recursive: true });
    await store.sweepTmp();
    return store;
  }

  tempPath(label = 'blob'): string {
    return join(this.tmpDir, `${label}-${randomUUID()}`);
  }

  path(kind: BlobKind, key: string): string {
    if (!KEY[kind].test(key)) throw new Error(`Not a ${kind} blob key: ${key}`);
    return join(this.dir, kind, key.slice(0, 2), key);
  }

  async size(kind: BlobKind, key: string): Promise<number | undefined> {
    try {
      return (await stat(this.path(kind, key))).size;
    } catch {
      return undefined;
    }
  }

  async has(kind: BlobKind, key: string): Promise<boolean> {
    return (await this.size(kind, key)) !== undefined;
  }

  read(kind: BlobKind, key: string): ReadStream {
    return createReadStream(this.path(kind, key));
  }

  /** Moves a temporary file into place under `key`; an existing blob of that key is kept. */
  async put(kind: BlobKind, key: string, tempFile: string): Promise<void> {
    const dest = this.path(kind, key);
    if (await this.has(kind, key)) {
      await rm(tempFile, { force: true });
      return;
    }
    await mkdir(join(this.dir, kind, key.slice(0, 2)), { recursive: true });
    await rename(tempFile, dest);
  }

  /** Hashes a temporary file with sha256 and stores it under that digest. */
  async ingest(kind: 'packages' | 'droplets', tempFile: string): Promise<{ sha256: string; size: number }> {
    const { digest, size } = await hashFile(tempFile, 'sha256');
    await this.put(kind, digest, tempFile);
    return { sha256: digest, size };
  }

  /** Removes what a crash of this controller left in its tmp/. */
  async sweepTmp(): Promise<void> {
    for (const name of await readdir(this.tmpDir)) await rm(join(this.tmpDir, name), { force: true, recursive: true });
  }
}

export async function hashFile(path: string, algorithm: 'sha1' | 'sha256'): Promise<{ digest: string; size: number }> {
  const hash = createHash(algorithm);
  let size = 0;
  await pipeline(createReadStream(path), async function (chunks: AsyncIterable<Buffer>) {
    for await (const c of chunks) {
      size += c.length;
      hash.update(c);
    }
  });
  return { digest: hash.digest('hex'), size };
}

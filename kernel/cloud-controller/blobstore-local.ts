// The blobstore as a local directory, content-addressed. A blob is written to tmp/ first and
// renamed into place, so a reader never sees half a file and two uploads of the same bits
// share one blob. Controllers sharing the directory each write to their own tmp/cc-<index>/,
// and clear only that one at start: what is in another's may be an upload it is receiving
// right now.
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { blobRelativePath, keyProblem, type BlobKind } from '../blobstore/keys.ts';
import type { Blobstore } from './blobstore.ts';
import { ContentAddressedStore } from './blobstore-base.ts';

export class LocalBlobstore extends ContentAddressedStore implements Blobstore {
  private constructor(
    readonly dir: string,
    readonly tmpDir: string,
  ) {
    super();
  }

  /** The blobstore in `dir`, as the controller of config `index` uses it. */
  static async open(dir: string, index = 0): Promise<LocalBlobstore> {
    const store = new LocalBlobstore(dir, join(dir, 'tmp', `cc-${index}`));
    for (const sub of ['packages', 'droplets', 'resources']) await mkdir(join(dir, sub), { recursive: true });
    await mkdir(store.tmpDir, { recursive: true });
    await sweepDir(store.tmpDir);
    return store;
  }

  tempPath(label = 'blob'): string {
    return join(this.tmpDir, `${label}-${randomUUID()}`);
  }

  path(kind: BlobKind, key: string): string {
    const problem = keyProblem(kind, key);
    if (problem) throw new Error(problem);
    return join(this.dir, blobRelativePath(kind, key));
  }

  async size(kind: BlobKind, key: string): Promise<number | undefined> {
    try {
      return (await stat(this.path(kind, key))).size;
    } catch {
      return undefined;
    }
  }

  async open(kind: BlobKind, key: string): Promise<{ size: number; stream: Readable } | undefined> {
    const size = await this.size(kind, key);
    return size === undefined ? undefined : { size, stream: createReadStream(this.path(kind, key)) };
  }

  async put(kind: BlobKind, key: string, tempFile: string): Promise<void> {
    const dest = this.path(kind, key);
    if ((await this.size(kind, key)) !== undefined) {
      await rm(tempFile, { force: true });
      return;
    }
    await mkdir(join(this.dir, kind, key.slice(0, 2)), { recursive: true });
    await rename(tempFile, dest);
  }

  async localPath(kind: 'resources', key: string): Promise<string> {
    return this.path(kind, key);
  }
}

/** Removes everything in a directory (what a crash left in a controller's tmp/). */
export async function sweepDir(dir: string): Promise<void> {
  for (const name of await readdir(dir)) await rm(join(dir, name), { force: true, recursive: true });
}

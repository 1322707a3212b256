// The blobstore's disk: blobs under `<dir>/<kind>/<first two chars>/<key>`, the controller's
// local layout. An upload is streamed to `<dir>/tmp/` while its digest is computed, and
// linked into place only when the digest is its key: a reader never sees half a blob, a
// blob is never anything but the bits its key names, and of two uploads of one key the
// first wins (link(2) refuses to replace, so both may race). What a crash left in tmp/ is
// removed at open. Counts per kind are taken at open and kept up to date.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { link, mkdir, readdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobError } from './errors.ts';
import { BLOB_KINDS, blobRelativePath, KEY_DIGEST, type BlobKind } from './keys.ts';

export type KindTally = { blobs: number; bytes: number };

export class BlobDisk {
  readonly tally: Record<BlobKind, KindTally>;

  private constructor(
    readonly dir: string,
    tally: Record<BlobKind, KindTally>,
  ) {
    this.tally = tally;
  }

  /** Opens (creating) the store in `dir`, clears its tmp/ and counts what it holds. */
  static async open(dir: string): Promise<BlobDisk> {
    const tmp = join(dir, 'tmp');
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    const tally = {} as Record<BlobKind, KindTally>;
    for (const kind of BLOB_KINDS) {
      await mkdir(join(dir, kind), { recursive: true });
      tally[kind] = await count(join(dir, kind));
    }
    return new BlobDisk(dir, tally);
  }

  path(kind: BlobKind, key: string): string {
    return join(this.dir, blobRelativePath(kind, key));
  }

  async size(kind: BlobKind, key: string): Promise<number | undefined> {
    try {
      return (await stat(this.path(kind, key))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  read(kind: BlobKind, key: string): ReadStream {
    return createReadStream(this.path(kind, key));
  }

  /**
   * Streams `body` into the blob `key`: 'created', or 'exists' when that blob was already
   * held (the one held is kept). Throws BlobError when the body is over `maxBytes` (reading
   * stops there), ends short of `expectedBytes`, or its digest is not `key`; nothing is kept.
   */
  async receive(kind: BlobKind, key: string, body: Readable, limits: { maxBytes: number; expectedBytes?: number }): Promise<'created' | 'exists'> {
    const temp = join(this.dir, 'tmp', `${kind}-${randomUUID()}`);
    const hash = createHash(KEY_DIGEST[kind]);
    let size = 0;
    try {
      await pipeline(
        body,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const c of chunks) {
            size += c.length;
            if (size > limits.maxBytes) throw new BlobError('too_large', 413, `The blob is larger than the ${limits.maxBytes} bytes this blobstore accepts.`);
            hash.update(c);
            yield c;
          }
        },
        createWriteStream(temp),
      );
      if (limits.expectedBytes !== undefined && size !== limits.expectedBytes) {
        throw new BlobError('incomplete', 400, `The body ended after ${size} of the ${limits.expectedBytes} bytes its Content-Length announced.`);
      }
      const digest = hash.digest('hex');
      if (digest !== key) throw new BlobError('digest_mismatch', 422, `The body's ${KEY_DIGEST[kind]} is ${digest}, not the key ${key}: nothing was stored.`);
      await mkdir(join(this.dir, kind, key.slice(0, 2)), { recursive: true });
      try {
        await link(temp, this.path(kind, key));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
        throw err;
      }
      this.tally[kind].blobs++;
      this.tally[kind].bytes += size;
      return 'created';
    } finally {
      await rm(temp, { force: true });
    }
  }

  /** Removes a blob: false when there was none. */
  async delete(kind: BlobKind, key: string): Promise<boolean> {
    const size = await this.size(kind, key);
    if (size === undefined) return false;
    try {
      await unlink(this.path(kind, key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false; // a concurrent DELETE won
      throw err;
    }
    this.tally[kind].blobs--;
    this.tally[kind].bytes -= size;
    return true;
  }
}

/** Blobs and bytes below one kind's directory (`<xx>/<key>`). */
async function count(kindDir: string): Promise<KindTally> {
  const tally = { blobs: 0, bytes: 0 };
  for (const prefix of await readdir(kindDir, { withFileTypes: true })) {
    if (!prefix.isDirectory()) continue;
    for (const blob of await readdir(join(kindDir, prefix.name), { withFileTypes: true })) {
      if (!blob.isFile()) continue;
      tally.blobs++;
      tally.bytes += (await stat(join(kindDir, prefix.name, blob.name))).size;
    }
  }
  return tally;
}

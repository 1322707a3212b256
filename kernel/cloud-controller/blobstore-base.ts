// What both blobstores of the controller (blobstore-local.ts, blobstore-http.ts) do the same
// way on top of size and put: hashing a file into its key.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { BlobKind } from '../blobstore/keys.ts';

export abstract class ContentAddressedStore {
  abstract size(kind: BlobKind, key: string): Promise<number | undefined>;
  abstract put(kind: BlobKind, key: string, tempFile: string): Promise<void>;

  async has(kind: BlobKind, key: string): Promise<boolean> {
    return (await this.size(kind, key)) !== undefined;
  }

  /** Hashes a temporary file with sha256 and stores it under that digest. */
  async ingest(kind: 'packages' | 'droplets', tempFile: string): Promise<{ sha256: string; size: number }> {
    const { digest, size } = await hashFile(tempFile, 'sha256');
    await this.put(kind, digest, tempFile);
    return { sha256: digest, size };
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

// The controller's blobstore: packages and droplets under their sha256, app files of the
// resource cache under their sha1 (the digest clients send in resource_match). One interface,
// two places the blobs live, chosen by the `blobstore` config:
// - `{dir}`: a local directory (blobstore-local.ts), for a single controller or controllers
//   sharing one filesystem;
// - `{dir, url, user, password}`: the blobstore component (kernel/blobstore/) over HTTP
//   (blobstore-http.ts), so controllers on several VMs share blobs; `dir` is then only this
//   controller's scratch: temporary files, and a cache of resource files on local disk.
// Either way a blob appears whole or not at all, and two uploads of the same bits share one.
import type { Readable } from 'node:stream';
import type { BlobKind } from '../blobstore/keys.ts';
import { HttpBlobstore } from './blobstore-http.ts';
import { LocalBlobstore } from './blobstore-local.ts';
import type { CcConfig } from './config.ts';

export type { BlobKind } from '../blobstore/keys.ts';
export { hashFile } from './blobstore-base.ts';

export interface Blobstore {
  /** This controller's own directory for files in the making (uploads received, zips built). */
  readonly tmpDir: string;
  /** A fresh path in tmpDir. */
  tempPath(label?: string): string;
  /** The blob's size, or undefined when it is not held. */
  size(kind: BlobKind, key: string): Promise<number | undefined>;
  has(kind: BlobKind, key: string): Promise<boolean>;
  /** The blob's bits as a stream, with its size; undefined when it is not held. */
  open(kind: BlobKind, key: string): Promise<{ size: number; stream: Readable } | undefined>;
  /** Stores a temporary file under `key` and removes the file; an existing blob of that key is kept. */
  put(kind: BlobKind, key: string, tempFile: string): Promise<void>;
  /** Hashes a temporary file with sha256 and stores it under that digest. */
  ingest(kind: 'packages' | 'droplets', tempFile: string): Promise<{ sha256: string; size: number }>;
  /** A path on this machine holding the resource: its place in the local directory, or its copy in the local cache (fetched first; throws when the blobstore holds none). */
  localPath(kind: 'resources', key: string): Promise<string>;
}

/** The local-directory blobstore in `dir` (what a test or a tool opens directly). */
export const Blobstore = {
  open: (dir: string, index = 0): Promise<LocalBlobstore> => LocalBlobstore.open(dir, index),
};

/** The blobstore of a controller's config (`dir` resolved), as the controller of `index` uses it. */
export async function openBlobstore(config: CcConfig['blobstore'], index: number): Promise<Blobstore> {
  if (config.url === undefined) return LocalBlobstore.open(config.dir, index);
  return HttpBlobstore.open({ url: config.url, user: config.user!, password: config.password!, timeoutMs: config.timeout_s * 1000, scratchDir: config.dir, index, cacheMaxBytes: config.cache_mb * 1024 * 1024 });
}

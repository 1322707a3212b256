// The blobstore's config: the common component keys plus its own, validated once at start
// into one typed, defaulted object.
import { z } from 'zod';
import { componentConfig } from '../component/mod.ts';

export const blobstoreConfig = componentConfig({
  /** Where the blobs live: on a persistent disk (blobs under <kind>/, uploads in flight under tmp/). */
  dir: z.string().min(1),
  /** Address and port of the blob API (0 picks a free port; the port is logged as `blob_port`). */
  host: z.string().default('0.0.0.0'),
  port: z.number().int().min(0).max(65535).default(9028),
  /** The controllers' Basic credential for every request of the blob API. */
  user: z.string().min(1),
  password: z.string().min(16, 'expected at least 16 characters'),
  /** Largest blob accepted. */
  max_blob_mb: z.number().int().positive().default(2048),
});

export type BlobstoreConfig = z.output<typeof blobstoreConfig>;

// The blobstore: packages, droplets and the resource cache of every cloud controller, on
// one persistent disk, over HTTP — Cloud Foundry's WebDAV blobstore job. Controllers on
// several VMs share blobs through it (kernel/cloud-controller/blobstore-http.ts); bulk data
// moves over HTTP, never NATS (DESIGN.md §1). Blobs are content-addressed and immutable, so
// any number of controllers may write the same key at once: the first whole, verified copy
// wins (store.ts).
//
// Request flow: api.ts (auth, path → kind + key) → store.ts (disk).
import { resolve } from 'node:path';
import { defineComponent, gauge, labelled, type Metric } from '../component/mod.ts';
import { closeServer, listenOn } from '../component/listen.ts';
import { BLOB_METHODS, createBlobApi } from './api.ts';
import { blobstoreConfig } from './config.ts';
import { BLOB_KINDS } from './keys.ts';
import { BlobDisk } from './store.ts';

export default defineComponent({
  type: 'blobstore',
  config: blobstoreConfig,
  async start({ config, log, configFile }) {
    const disk = await BlobDisk.open(resolve(configFile, '..', config.dir));
    const requests: Record<string, number> = Object.fromEntries([...BLOB_METHODS, 'OTHER'].map((m) => [m, 0]));
    const server = createBlobApi({
      disk,
      user: config.user,
      password: config.password,
      maxBytes: config.max_blob_mb * 1024 * 1024,
      log,
      count: (method) => void requests[method]!++,
    });
    await listenOn(server, config.port, config.host);
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    log.info({ blob_port: port, dir: disk.dir, ...Object.fromEntries(BLOB_KINDS.map((k) => [k, disk.tally[k].blobs])) }, 'blob API listening');

    return {
      varz: () => ({
        port,
        max_blob_mb: config.max_blob_mb,
        blobs: Object.fromEntries(BLOB_KINDS.map((k) => [k, { ...disk.tally[k] }])),
        requests: { ...requests },
      }),
      metrics: (): Metric[] => [
        labelled('blobs', 'Blobs held, by kind', 'gauge', 'kind', Object.fromEntries(BLOB_KINDS.map((k) => [k, disk.tally[k].blobs]))),
        labelled('blob_bytes', 'Bytes of the blobs held, by kind', 'gauge', 'kind', Object.fromEntries(BLOB_KINDS.map((k) => [k, disk.tally[k].bytes]))),
        labelled('requests_total', 'Blob API requests, by method', 'counter', 'method', requests),
        gauge('max_blob_bytes', 'Largest blob accepted', config.max_blob_mb * 1024 * 1024),
      ],
      // Transfers in flight finish (bounded by drain_timeout_s); no new connection is taken.
      drain: () => closeServer(server, 'idle'),
      stop: () => closeServer(server, 'all'),
    };
  },
});

// Droplets by sha256: fetched once over HTTP (bulk data never moves over NATS), verified
// against the sha256 the controller sent, and shared by every instance of that droplet on
// this DEA. Concurrent starts of one droplet share one download.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform } from 'node:stream';
import { DeaError } from './errors.ts';

export class DropletCache {
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
  ) {}

  /** The local path of the droplet with this sha256, downloading it when absent. */
  fetch(uri: string, sha256: string): Promise<string> {
    const path = join(this.dir, `${sha256}.tgz`);
    let p = this.inFlight.get(sha256);
    if (!p) {
      p = this.fetchOnce(uri, sha256, path).finally(() => this.inFlight.delete(sha256));
      this.inFlight.set(sha256, p);
    }
    return p;
  }

  private async fetchOnce(uri: string, sha256: string, path: string): Promise<string> {
    if (await exists(path)) return path;
    await mkdir(this.dir, { recursive: true });
    const partial = `${path}.${process.pid}.${Date.now()}.part`;
    try {
      const res = await fetch(uri);
      if (!res.ok || !res.body) throw new DeaError('droplet_download_failed', `Downloading the droplet from ${uri}: HTTP ${res.status}`);
      const hash = createHash('sha256');
      let bytes = 0;
      const meter = new Transform({
        transform: (chunk: Buffer, _enc, cb) => {
          bytes += chunk.length;
          if (bytes > this.maxBytes) return cb(new DeaError('droplet_download_failed', `Downloading the droplet from ${uri}: larger than ${this.maxBytes} bytes`));
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), meter, createWriteStream(partial));
      const got = hash.digest('hex');
      if (got !== sha256) throw new DeaError('droplet_checksum_mismatch', `Downloading the droplet from ${uri}: sha256 ${got} does not match the expected ${sha256}`);
      await rename(partial, path);
      return path;
    } catch (err) {
      await rm(partial, { force: true });
      if (err instanceof DeaError) throw err;
      throw new DeaError('droplet_download_failed', `Downloading the droplet from ${uri}: ${(err as Error).message}`, { cause: err });
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

// The blobstore as the blobstore component (kernel/blobstore/) over HTTP: what controllers on
// several VMs share. Bodies stream both ways, never whole in memory; each request is bounded
// by a timeout on its answer and on any silence during the transfer. A blobstore that cannot
// be reached or answers wrongly is a BlobstoreError naming its URL and the status — never its
// password, which travels only in the Authorization header.
//
// Local disk (the config's `dir`) is this controller's scratch: tmp/cc-<index>/ as in the local
// store, and cache/resources/, the resource files the package builder zips. A file enters the
// cache only once the blobstore holds it (after its PUT, or fetched from it and verified), so
// a cached resource is a held one and needs no request. The cache is bounded (`cacheMaxBytes`):
// past it, the least recently used files go (cache-eviction.ts), never one used lately.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { blobRelativePath, KEY_DIGEST, keyProblem, type BlobKind } from '../blobstore/keys.ts';
import type { Blobstore } from './blobstore.ts';
import { ContentAddressedStore } from './blobstore-base.ts';
import { cacheEviction, type CachedFile } from './cache-eviction.ts';
import { sweepDir } from './blobstore-local.ts';

export class BlobstoreError extends Error {
  override name = 'BlobstoreError';
  readonly code = 'blobstore_failed';
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface HttpBlobstoreOptions {
  /** The blobstore's base URL, e.g. http://10.244.0.8:9025 (no credential in it). */
  url: string;
  user: string;
  password: string;
  /** Bound on waiting for an answer, and on silence during a transfer. */
  timeoutMs: number;
  /** This controller's local scratch directory. */
  scratchDir: string;
  index: number;
  /** Bound on the resource cache. */
  cacheMaxBytes: number;
}

/** A cached file used this recently is kept over the bound: a package being built reads what it fetched. */
const CACHE_KEEP_RECENT_MS = 10 * 60_000;

export class HttpBlobstore extends ContentAddressedStore implements Blobstore {
  readonly tmpDir: string;
  private readonly cacheDir: string;
  private readonly base: URL;
  private readonly authorization: string;
  /** What the cache holds, as last counted plus what entered it since. */
  private cacheBytes = 0;
  private trimming: Promise<void> | undefined;

  private constructor(private readonly opts: HttpBlobstoreOptions) {
    super();
    this.tmpDir = join(opts.scratchDir, 'tmp', `cc-${opts.index}`);
    this.cacheDir = join(opts.scratchDir, 'cache');
    this.base = new URL(opts.url.replace(/\/+$/, '') + '/');
    this.authorization = `Basic ${Buffer.from(`${opts.user}:${opts.password}`).toString('base64')}`;
  }

  static async open(opts: HttpBlobstoreOptions): Promise<HttpBlobstore> {
    const store = new HttpBlobstore(opts);
    await mkdir(store.tmpDir, { recursive: true });
    await mkdir(join(store.cacheDir, 'resources'), { recursive: true });
    await sweepDir(store.tmpDir);
    await store.trimCache();
    return store;
  }

  /** The blobstore's URL as errors and logs name it. */
  get url(): string {
    return this.base.origin + this.base.pathname.replace(/\/$/, '');
  }

  tempPath(label = 'blob'): string {
    return join(this.tmpDir, `${label}-${randomUUID()}`);
  }

  async size(kind: BlobKind, key: string): Promise<number | undefined> {
    if (kind === 'resources') {
      const cached = await this.cachedSize(key);
      if (cached !== undefined) return cached;
    }
    const res = await this.call('HEAD', kind, key);
    if (res.statusCode === 404) {
      res.resume();
      return undefined;
    }
    await this.expect(res, 'HEAD', kind, key, [200]);
    res.resume();
    return contentLength(res, this.describe('HEAD', kind, key, 200));
  }

  async open(kind: BlobKind, key: string): Promise<{ size: number; stream: Readable } | undefined> {
    const res = await this.call('GET', kind, key);
    if (res.statusCode === 404) {
      res.resume();
      return undefined;
    }
    await this.expect(res, 'GET', kind, key, [200]);
    return { size: contentLength(res, this.describe('GET', kind, key, 200)), stream: res };
  }

  async put(kind: BlobKind, key: string, tempFile: string): Promise<void> {
    try {
      if (kind === 'resources' && (await this.cachedSize(key)) !== undefined) return;
      const { size } = await stat(tempFile);
      const res = await this.call('PUT', kind, key, { file: tempFile, size });
      await this.expect(res, 'PUT', kind, key, [201, 204]);
      res.resume();
      // Held by the blobstore now: the package builder will want it on disk.
      if (kind === 'resources') await this.intoCache(key, tempFile);
    } finally {
      await rm(tempFile, { force: true });
    }
  }

  async localPath(kind: 'resources', key: string): Promise<string> {
    const path = this.cachePath(key);
    if ((await this.cachedSize(key)) !== undefined) {
      const now = new Date();
      await utimes(path, now, now).catch(() => undefined); // a use: it goes last
      return path;
    }
    const blob = await this.open(kind, key);
    if (!blob) throw new BlobstoreError(`The blobstore ${this.url} holds no ${kind} blob ${key}.`, 404);
    const temp = this.tempPath('resource');
    const hash = createHash(KEY_DIGEST[kind]);
    try {
      await pipeline(
        blob.stream,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const c of chunks) {
            hash.update(c);
            yield c;
          }
        },
        createWriteStream(temp),
      );
      const digest = hash.digest('hex');
      if (digest !== key) throw new BlobstoreError(`The blobstore ${this.url} sent ${kind} blob ${key} with the ${KEY_DIGEST[kind]} ${digest}.`);
      await this.intoCache(key, temp);
      return path;
    } catch (err) {
      throw err instanceof BlobstoreError ? err : new BlobstoreError(`Fetching ${kind} blob ${key} from the blobstore ${this.url} failed: ${(err as Error).message}`, undefined, { cause: err });
    } finally {
      await rm(temp, { force: true });
    }
  }

  // ---- the local cache of resources ---------------------------------------------------------

  private cachePath(key: string): string {
    const problem = keyProblem('resources', key);
    if (problem) throw new Error(problem);
    return join(this.cacheDir, blobRelativePath('resources', key));
  }

  private async cachedSize(key: string): Promise<number | undefined> {
    try {
      return (await stat(this.cachePath(key))).size;
    } catch {
      return undefined;
    }
  }

  /** Renames a verified file into the cache (an identical file there already is simply replaced). */
  private async intoCache(key: string, file: string): Promise<void> {
    const { size } = await stat(file);
    await mkdir(join(this.cacheDir, 'resources', key.slice(0, 2)), { recursive: true });
    await rename(file, this.cachePath(key));
    this.cacheBytes += size;
    if (this.cacheBytes > this.opts.cacheMaxBytes && !this.trimming) {
      this.trimming = this.trimCache().finally(() => (this.trimming = undefined));
    }
  }

  /** Counts the cache and removes what is past its bound (least recently used, not used lately). */
  private async trimCache(): Promise<void> {
    const root = join(this.cacheDir, 'resources');
    const files: CachedFile[] = [];
    for (const dir of await readdir(root).catch(() => [] as string[])) {
      for (const name of await readdir(join(root, dir)).catch(() => [] as string[])) {
        const path = join(root, dir, name);
        const s = await stat(path).catch(() => undefined);
        if (s?.isFile()) files.push({ path, size: s.size, usedAtMs: s.mtimeMs });
      }
    }
    const evicted = cacheEviction(files, this.opts.cacheMaxBytes, Date.now(), CACHE_KEEP_RECENT_MS);
    for (const f of evicted) await rm(f.path, { force: true });
    this.cacheBytes = files.reduce((n, f) => n + f.size, 0) - evicted.reduce((n, f) => n + f.size, 0);
  }

  // ---- HTTP ---------------------------------------------------------------------------------

  private describe(method: string, kind: BlobKind, key: string, status?: number): string {
    return `The blobstore ${this.url} answered ${method} ${kind}/${key} with HTTP ${status}`;
  }

  /** Resolves on a status in `ok`; otherwise reads a little of the answer and throws. */
  private async expect(res: IncomingMessage, method: string, kind: BlobKind, key: string, ok: number[]): Promise<void> {
    if (ok.includes(res.statusCode ?? 0)) return;
    let text = '';
    try {
      for await (const c of res as AsyncIterable<Buffer>) {
        if (text.length < 300) text += c.toString('utf8');
      }
    } catch {
      // the reason is the status; the body was only a courtesy
    }
    const why = text.trim().split('\n')[0]?.slice(0, 200);
    throw new BlobstoreError(`${this.describe(method, kind, key, res.statusCode)}${why ? `: ${why}` : ''}`, res.statusCode);
  }

  /** One request, the answer's head awaited; a file body streams from disk. */
  private call(method: 'HEAD' | 'GET' | 'PUT', kind: BlobKind, key: string, body?: { file: string; size: number }): Promise<IncomingMessage> {
    const problem = keyProblem(kind, key);
    if (problem) return Promise.reject(new Error(problem));
    const url = new URL(`blobs/${kind}/${key}`, this.base);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const what = `${method} ${kind}/${key}`;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const file = body ? createReadStream(body.file) : undefined;
      const req = send(url, {
        method,
        headers: { authorization: this.authorization, ...(body ? { 'content-type': 'application/octet-stream', 'content-length': String(body.size) } : {}) },
      });
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        file?.destroy();
        req.destroy();
        reject(err);
      };
      // An idle socket for timeoutMs: no answer yet, or a transfer that stopped moving.
      req.setTimeout(this.opts.timeoutMs, () => {
        const err = new BlobstoreError(`The blobstore ${this.url} did not answer ${what} within ${this.opts.timeoutMs / 1000} s.`);
        if (!settled) fail(err);
        else req.destroy(err); // the body being read fails with it
      });
      req.once('error', (err: NodeJS.ErrnoException) => fail(new BlobstoreError(`The blobstore ${this.url} cannot be reached for ${what} (${err.code ?? err.message}).`, undefined, { cause: err })));
      req.once('response', (res) => {
        settled = true;
        resolve(res);
      });
      if (!file) return void req.end();
      file.once('error', fail);
      file.pipe(req);
    });
  }
}

function contentLength(res: IncomingMessage, what: string): number {
  const n = Number(res.headers['content-length']);
  if (!Number.isSafeInteger(n) || n < 0) throw new BlobstoreError(`${what} and no Content-Length.`, res.statusCode);
  return n;
}

// Moving bulk data over HTTP (never over NATS): the package download, streamed to disk with a
// size cap and a sha256, and the droplet upload, streamed from disk with its length known.
// Network errors and 5xx answers are retried a few times; a 4xx is final.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errorMessage } from './errors.ts';

const MAX_REDIRECTS = 5;

/** A transfer failure; `retryable` when another attempt may succeed. */
export class TransferError extends Error {
  override name = 'TransferError';
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface DownloadResult {
  bytes: number;
  sha256: string;
}

/** GETs `url` into `dest`, following redirects; refuses more than maxBytes. */
export async function download(url: string, dest: string, opts: { maxBytes: number; attempts: number; signal: AbortSignal }): Promise<DownloadResult> {
  return withAttempts(opts.attempts, opts.signal, async () => {
    try {
      return await downloadOnce(url, dest, opts.maxBytes, opts.signal);
    } catch (err) {
      await rm(dest, { force: true });
      throw err;
    }
  });
}

async function downloadOnce(url: string, dest: string, maxBytes: number, signal: AbortSignal): Promise<DownloadResult> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const res = await request('GET', current, {}, undefined, signal);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (hop >= MAX_REDIRECTS) throw new TransferError(`more than ${MAX_REDIRECTS} redirects`, false);
      current = new URL(res.headers.location, current).toString();
      continue;
    }
    if (status !== 200) {
      const body = await readSnippet(res);
      throw new TransferError(`HTTP ${status}${body ? ` (${body})` : ''}`, status >= 500 || status === 429, status);
    }
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      res.destroy();
      throw new TransferError(`the package is ${declared} bytes, more than the limit of ${maxBytes}`, false);
    }
    const hash = createHash('sha256');
    let bytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        if (bytes > maxBytes) return cb(new TransferError(`the package is larger than the limit of ${maxBytes} bytes`, false));
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(res, meter, createWriteStream(dest), { signal });
    } catch (err) {
      if (err instanceof TransferError || signal.aborted) throw err;
      throw new TransferError(`the connection broke after ${bytes} bytes (${errorMessage(err)})`, true);
    }
    return { bytes, sha256: hash.digest('hex') };
  }
}

/** PUTs (or POSTs) the file at `path` to `url`, streamed, with Content-Length and Content-Digest. */
export async function upload(
  url: string,
  path: string,
  opts: { method: 'PUT' | 'POST'; sha256: string; attempts: number; signal: AbortSignal },
): Promise<void> {
  const { size } = await stat(path);
  const digest = Buffer.from(opts.sha256, 'hex').toString('base64');
  await withAttempts(opts.attempts, opts.signal, async () => {
    const headers = {
      'content-type': 'application/gzip',
      'content-length': String(size),
      'content-digest': `sha-256=:${digest}:`,
    };
    const res = await request(opts.method, url, headers, createReadStream(path), opts.signal);
    const status = res.statusCode ?? 0;
    const body = await readSnippet(res);
    if (status < 200 || status >= 300) throw new TransferError(`HTTP ${status}${body ? ` (${body})` : ''}`, status >= 500 || status === 429, status);
  });
}

function request(
  method: string,
  url: string,
  headers: Record<string, string>,
  body: NodeJS.ReadableStream | undefined,
  signal: AbortSignal,
): Promise<http.IncomingMessage> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return Promise.reject(new TransferError(`${JSON.stringify(url)} is not a URL`, false));
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return Promise.reject(new TransferError(`${u.protocol} URLs are not supported`, false));
  const lib = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(u, { method, headers, signal }, resolve);
    req.once('error', (err) => reject(signal.aborted ? err : new TransferError(errorMessage(err), true)));
    if (body) {
      body.once('error', (err) => req.destroy(err as Error));
      body.pipe(req);
    } else {
      req.end();
    }
  });
}

async function readSnippet(res: http.IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (text.length < 300) text += chunk.toString('utf8');
  }
  return text.trim().replace(/\s+/g, ' ').slice(0, 200);
}

/** Runs fn up to `attempts` times while its failure is retryable, backing off 0.25 s, 0.5 s, … */
async function withAttempts<T>(attempts: number, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (signal.aborted || i >= attempts || !(err instanceof TransferError) || !err.retryable) throw err;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 250 * 2 ** (i - 1));
        signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
      signal.throwIfAborted();
    }
  }
}

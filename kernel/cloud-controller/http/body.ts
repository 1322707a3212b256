// Request bodies, parsed at the edge: JSON through a zod schema (422 naming each bad field's
// path), and uploads streamed to a temporary file under a size limit (413), raw or multipart.
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { z } from 'zod';
import { formatPath } from '../../component/mod.ts';
import { ApiError, errors } from '../errors.ts';
import { boundaryOf, MultipartError, parseMultipart } from './multipart.ts';

export const MAX_JSON_BYTES = 1024 * 1024;

/** zod's issues as one sentence: `name: Required; instances: Number must be greater than or equal to 0`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 10)
    .map((i) => {
      const at = i.path.length ? formatPath(i.path) : '(body)';
      if (i.code === 'unrecognized_keys') return `${at}: Unknown field(s): ${i.keys.map((k) => `'${k}'`).join(', ')}`;
      if (i.code === 'invalid_type' && i.received === 'undefined') return `${at}: Required`;
      return `${at}: ${i.message}`;
    })
    .join('; ');
}

/** Validates a value that came from the outside; 422 with the paths of every problem. */
export function validate<S extends z.ZodTypeAny>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw errors.unprocessable(describeIssues(parsed.error));
  return parsed.data;
}

/** Reads the body as JSON (an empty body is `{}`) and validates it. */
export async function readJson<S extends z.ZodTypeAny>(req: IncomingMessage, schema: S, limit = MAX_JSON_BYTES): Promise<z.output<S>> {
  const text = await readText(req, limit);
  let value: unknown = {};
  if (text.trim() !== '') {
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw errors.messageParse((err as Error).message);
    }
  }
  return validate(schema, value);
}

export async function readText(req: IncomingMessage, limit: number): Promise<string> {
  checkDeclaredLength(req, limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw errors.payloadTooLarge(`The request body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function checkDeclaredLength(req: IncomingMessage, limit: number): void {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw errors.payloadTooLarge(`The request body (${declared} bytes) is larger than ${limit} bytes`);
}

/** Counts bytes as they pass and fails with 413 past the limit. */
async function* limited(source: AsyncIterable<Buffer>, limit: number, what: string): AsyncGenerator<Buffer> {
  let size = 0;
  for await (const chunk of source) {
    size += chunk.length;
    if (size > limit) throw errors.payloadTooLarge(`${what} is larger than the limit of ${formatBytes(limit)}`);
    yield chunk;
  }
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KB`;
  return `${n} bytes`;
}

export interface Upload {
  /** The uploaded file, or undefined when a multipart body had no file part. */
  file?: { path: string; size: number };
  fields: Record<string, string>;
  /** Removes the temporary files. */
  cleanup(): Promise<void>;
}

/**
 * Receives an upload: `multipart/form-data` (file in `fileField`, other parts as fields) or
 * any other content type as the raw file. Streams to `tmpDir`; never holds the file in memory.
 */
export async function receiveUpload(
  req: IncomingMessage,
  opts: { tmpDir: string; maxBytes: number; fileField: string; what: string },
): Promise<Upload> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > opts.maxBytes) {
    throw errors.payloadTooLarge(`${opts.what} (${declared} bytes) is larger than the limit of ${formatBytes(opts.maxBytes)}`);
  }
  const temps: string[] = [];
  const tempPath = (): string => {
    const p = join(opts.tmpDir, `upload-${randomUUID()}`);
    temps.push(p);
    return p;
  };
  const cleanup = async (): Promise<void> => {
    await Promise.all(temps.map((p) => rm(p, { force: true })));
  };
  const source = limited(req as AsyncIterable<Buffer>, opts.maxBytes, opts.what);
  try {
    const boundary = boundaryOf(req.headers['content-type']);
    if (boundary) {
      const parsed = await parseMultipart(source, boundary, { fileFields: [opts.fileField], tempPath, maxFieldBytes: 32 * 1024 * 1024 });
      const f = parsed.files[opts.fileField];
      return { fields: parsed.fields, ...(f ? { file: { path: f.path, size: f.size } } : {}), cleanup };
    }
    const path = tempPath();
    let size = 0;
    await pipeline(
      Readable.from(source),
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const c of chunks) {
          size += c.length;
          yield c;
        }
      },
      createWriteStream(path, { flags: 'wx' }),
    );
    return { file: { path, size }, fields: {}, cleanup };
  } catch (err) {
    await cleanup();
    if (err instanceof ApiError) throw err;
    if (err instanceof MultipartError) throw errors.badRequest(`Reading the multipart body: ${err.message}`);
    throw err;
  }
}

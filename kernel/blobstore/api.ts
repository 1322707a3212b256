// The blob API the controllers call: PUT, GET, HEAD and DELETE of /blobs/<kind>/<key>, each
// Basic-authenticated. Bodies stream both ways; an upload is refused before it is read when
// its Content-Length is already over the limit.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../component/mod.ts';
import { BlobError } from './errors.ts';
import { parseBlobPath } from './keys.ts';
import type { BlobDisk } from './store.ts';

export const BLOB_METHODS = ['PUT', 'GET', 'HEAD', 'DELETE'] as const;

export interface BlobApiOptions {
  disk: BlobDisk;
  user: string;
  password: string;
  maxBytes: number;
  log: Logger;
  /** Counts each request by method (all others as OTHER). */
  count(method: string): void;
}

export function createBlobApi(opts: BlobApiOptions): Server {
  const expected = Buffer.from(`Basic ${Buffer.from(`${opts.user}:${opts.password}`).toString('base64')}`);
  const authorized = (req: IncomingMessage): boolean => {
    const given = Buffer.from(req.headers.authorization ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    opts.count((BLOB_METHODS as readonly string[]).includes(method) ? method : 'OTHER');
    handle(req, res, method).catch((err: unknown) => {
      if (err instanceof BlobError) return refuse(req, res, err.status, err.message);
      opts.log.error({ method, path: req.url, err: (err as Error).message }, 'blob request failed');
      if (!res.headersSent) refuse(req, res, 500, 'The blobstore failed to handle the request.');
      else res.destroy();
    });
  });
  // Uploads of gigabytes take long: no bound on a whole request, only on a silent socket.
  server.requestTimeout = 0;
  server.setTimeout(120_000);

  async function handle(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    if (!authorized(req)) {
      res.setHeader('WWW-Authenticate', 'Basic realm="ingot-blobstore"');
      return refuse(req, res, 401, 'Unauthorized: the blobstore wants its Basic credential.');
    }
    const blob = parseBlobPath(new URL(req.url ?? '/', 'http://blobstore').pathname);
    if ('problem' in blob) return refuse(req, res, 400, `Bad request: ${blob.problem}.`);
    const { kind, key } = blob;
    switch (method) {
      case 'PUT': {
        const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
        if (declared !== undefined && declared > opts.maxBytes) {
          return refuse(req, res, 413, `The blob (${declared} bytes) is larger than the ${opts.maxBytes} bytes this blobstore accepts.`);
        }
        const outcome = await opts.disk.receive(kind, key, req, { maxBytes: opts.maxBytes, ...(declared !== undefined && Number.isSafeInteger(declared) ? { expectedBytes: declared } : {}) });
        res.writeHead(outcome === 'created' ? 201 : 204);
        res.end();
        return;
      }
      case 'GET':
      case 'HEAD': {
        const size = await opts.disk.size(kind, key);
        if (size === undefined) return refuse(req, res, 404, `No ${kind} blob ${key}.`);
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) });
        if (method === 'HEAD') return void res.end();
        await pipeline(opts.disk.read(kind, key), res);
        return;
      }
      case 'DELETE': {
        if (!(await opts.disk.delete(kind, key))) return refuse(req, res, 404, `No ${kind} blob ${key}.`);
        res.writeHead(204);
        res.end();
        return;
      }
      default:
        res.setHeader('Allow', BLOB_METHODS.join(', '));
        return refuse(req, res, 405, `Method ${method} is not allowed on a blob.`);
    }
  }

  return server;
}

/**
 * Answers with a sentence. A request body not read to its end is not read at all: the
 * connection is closed after the answer, so an over-large upload is never taken in.
 */
function refuse(req: IncomingMessage, res: ServerResponse, status: number, message: string): void {
  const body = `${message}\n`;
  const unread = !req.complete;
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...(unread ? { Connection: 'close' } : {}) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

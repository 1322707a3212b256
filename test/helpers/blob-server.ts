// A loopback HTTP blobstore for tests that move bulk data: serves what a test put at a path
// (GET), keeps what is uploaded (PUT/POST), and can answer a path with an error status or
// never answer at all. Every request is recorded.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface BlobServer {
  /** http://127.0.0.1:<port><path> */
  url(path: string): string;
  /** Serve `body` at `path`. */
  put(path: string, body: Buffer): void;
  /** Answer `path` with `status` (the next `times` requests, or always). */
  fail(path: string, status: number, times?: number): void;
  /** Accept requests to `path` and never answer. */
  hang(path: string): void;
  /** Bodies uploaded, by path, with their headers. */
  uploads: Map<string, { body: Buffer; headers: IncomingMessage['headers']; method: string }>;
  requests: Array<{ method: string; path: string }>;
  close(): Promise<void>;
}

export async function startBlobServer(): Promise<BlobServer> {
  const blobs = new Map<string, Buffer>();
  const failures = new Map<string, { status: number; times: number }>();
  const hanging = new Set<string>();
  const uploads: BlobServer['uploads'] = new Map();
  const requests: BlobServer['requests'] = [];
  const sockets = new Set<Socket>();

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const method = req.method ?? 'GET';
    requests.push({ method, path });
    if (hanging.has(path)) return;
    const failure = failures.get(path);
    if (failure && failure.times > 0) {
      failure.times--;
      req.resume();
      res.writeHead(failure.status, { 'content-type': 'text/plain' });
      return void res.end(`injected failure ${failure.status}\n`);
    }
    if (method === 'PUT' || method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        uploads.set(path, { body: Buffer.concat(chunks), headers: req.headers, method });
        res.writeHead(201).end();
      });
      return;
    }
    const blob = blobs.get(path);
    if (!blob) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
    res.end(blob);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    put: (path, body) => void blobs.set(path, body),
    fail: (path, status, times = Number.POSITIVE_INFINITY) => void failures.set(path, { status, times }),
    hang: (path) => void hanging.add(path),
    uploads,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

import test from 'ava';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BlobstoreClient } from '../../orchestrator/agent/blobstore.ts';

/** A blobstore that sends the blob 16 bytes at a time, or its first `stallAfter` bytes and nothing more. */
async function server(body: Buffer, o: { stallAfter?: number; dripMs?: number }): Promise<{ url: string; close(): Promise<void> }> {
  const s: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': String(body.length) });
    if (o.stallAfter !== undefined) {
      res.write(body.subarray(0, o.stallAfter));
      return; // and never another byte
    }
    let at = 0;
    const drip = setInterval(() => {
      if (at >= body.length) {
        clearInterval(drip);
        res.end();
        return;
      }
      res.write(body.subarray(at, at + 16));
      at += 16;
    }, o.dripMs ?? 1);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); }),
  };
}

const blob = Buffer.from('x'.repeat(160));
const sha = createHash('sha256').update(blob).digest('hex');

test('a blob that stops arriving is given up after the stall timeout, naming it', async (t) => {
  const s = await server(blob, { stallAfter: 10 });
  try {
    const started = Date.now();
    const err = await t.throwsAsync(new BlobstoreClient(s.url, 200).fetchVerified('b1', sha));
    t.regex(err!.message, /fetching blob b1 from .*: no data for 0\.2 s/);
    t.true(Date.now() - started < 5000);
  } finally {
    await s.close();
  }
});

test('a slow blob that keeps moving arrives whole, longer than the stall timeout', async (t) => {
  // 10 drips of 16 bytes, 200 ms apart: 2 s in all, each gap far under the 1.5 s stall (a busy
  // machine may stretch a gap, not by a second).
  const s = await server(blob, { dripMs: 200 });
  try {
    const started = Date.now();
    t.deepEqual(await new BlobstoreClient(s.url, 1500).fetchVerified('b2', sha), blob);
    t.true(Date.now() - started >= 1500);
  } finally {
    await s.close();
  }
});

/** A blobstore whose first `failures` answers fail: a dropped connection, or a status code. */
async function flaky(failures: number, how: 'drop' | number): Promise<{ url: string; requests(): number; close(): Promise<void> }> {
  let n = 0;
  const s: Server = createServer((req, res) => {
    if (n++ < failures) {
      if (how === 'drop') return void req.socket.destroy();
      res.writeHead(how).end();
      return;
    }
    res.writeHead(200).end(blob);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    requests: () => n,
    close: () => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); }),
  };
}

test('a dropped connection or a 5xx is tried again; the blob arrives', async (t) => {
  for (const how of ['drop', 503] as const) {
    const s = await flaky(2, how);
    try {
      t.deepEqual(await new BlobstoreClient(s.url).fetchVerified('b2', sha), blob, String(how));
      t.is(s.requests(), 3);
    } finally {
      await s.close();
    }
  }
});

test('a blob that keeps failing is given up after three attempts with the reason; a 404 at once', async (t) => {
  const dropping = await flaky(10, 'drop');
  try {
    const err = await t.throwsAsync(new BlobstoreClient(dropping.url).fetchVerified('b3', sha));
    t.regex(err!.message, /fetching blob b3 from .*: fetch failed \(\w+/);
    t.is(dropping.requests(), 3);
  } finally {
    await dropping.close();
  }
  const missing = await flaky(10, 404);
  try {
    const err = await t.throwsAsync(new BlobstoreClient(missing.url).fetchVerified('b4', sha));
    t.regex(err!.message, /HTTP 404/);
    t.is(missing.requests(), 1);
  } finally {
    await missing.close();
  }
});

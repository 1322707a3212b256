// The router when things go wrong: refused and reset connections are retried where that is
// safe, a backend killed under load costs clients nothing, slow backends get 504, dead ones
// 502, and malformed requests 400 without ever reaching a backend.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Agent } from 'node:http';
import anyTest, { type TestFn } from 'ava';
import { deadPort, eventually, send, sendRaw, spawnBackend, startBackend, startRouter, type Backend, type RouterUnderTest } from '../helpers/router-process.ts';

const test = anyTest as TestFn<{ r: RouterUnderTest; ok: Backend }>;

test.before(async (t) => {
  t.timeout(90_000);
  const r = await startRouter('router-failures', { backend_response_timeout_s: 1, request_header_timeout_s: 1, max_header_bytes: 8192 });
  const ok = await startBackend('ok');
  t.context = { r, ok };
});

test.after.always(async (t) => {
  await t.context.r?.stop();
  await t.context.ok?.close();
});

/** A TCP server that takes requests and then does `behaviour` to the connection. */
async function rudeServer(behaviour: 'hang' | 'reset' | 'garbage'): Promise<{ port: number; requests: () => number; close(): Promise<void> }> {
  let requests = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      if (!chunk.includes('\r\n\r\n')) return;
      requests++;
      if (behaviour === 'reset') socket.resetAndDestroy();
      if (behaviour === 'garbage') socket.write('SSH-2.0-OpenSSH_9.2\r\nnot http at all\r\n\r\n');
    });
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  return {
    port,
    requests: () => requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function routeReady(r: RouterUnderTest, host: string, endpoints: number): Promise<void> {
  await eventually(async () => (await r.routes())[host]?.length === endpoints, 5000, `${endpoints} endpoint(s) for ${host}`);
}

test.serial('every endpoint refusing connections: 502 endpoint_failure', async (t) => {
  const { r } = t.context;
  await r.register(await deadPort(), ['dead.example.com']);
  await routeReady(r, 'dead.example.com', 1);
  const res = await r.get('dead.example.com');
  t.is(res.status, 502);
  t.is(res.headers['x-ingot-router-error'], 'endpoint_failure');
  t.regex(String(res.headers['x-vcap-request-id']), /^[0-9a-f-]{36}$/);
});

test.serial('a refused connection is retried on another endpoint, for any method, and the dead endpoint leaves rotation', async (t) => {
  const { r, ok } = t.context;
  await r.register(await deadPort(), ['half.example.com']);
  await r.register(ok.port, ['half.example.com']);
  await routeReady(r, 'half.example.com', 2);
  const retriesBefore = (await r.settledVarz()).retries as number;
  for (let i = 0; i < 30; i++) {
    const res = await send({ port: r.port, host: 'half.example.com', method: i % 2 ? 'POST' : 'GET', body: i % 2 ? 'payload' : undefined });
    t.is(res.status, 200, `request ${i}`);
  }
  const v = await r.settledVarz();
  t.true(v.retries - retriesBefore <= 2, `one retry per worker at most, then the dead endpoint is skipped: ${v.retries - retriesBefore}`);
});

test.serial('a connection reset after the request went out: GET is retried elsewhere, POST is not', async (t) => {
  const { r, ok } = t.context;
  const resetter = await rudeServer('reset');
  t.teardown(() => resetter.close());
  await r.register(resetter.port, ['reset-only.example.com']);
  await routeReady(r, 'reset-only.example.com', 1);
  const post = await send({ port: r.port, host: 'reset-only.example.com', method: 'POST', body: 'once' });
  t.is(post.status, 502);
  t.is(post.headers['x-ingot-router-error'], 'endpoint_failure');
  t.is(resetter.requests(), 1, 'a POST is sent once');

  await r.register(ok.port, ['reset-some.example.com']);
  await r.register(resetter.port, ['reset-some.example.com']);
  await routeReady(r, 'reset-some.example.com', 2);
  for (let i = 0; i < 10; i++) t.is((await r.get('reset-some.example.com', `/g${i}`)).status, 200);
});

test.serial('a backend that does not answer in time: 504 endpoint_timeout', async (t) => {
  const { r } = t.context;
  const hang = await rudeServer('hang');
  t.teardown(() => hang.close());
  await r.register(hang.port, ['slow.example.com']);
  await routeReady(r, 'slow.example.com', 1);
  const started = Date.now();
  const res = await r.get('slow.example.com');
  t.is(res.status, 504);
  t.is(res.headers['x-ingot-router-error'], 'endpoint_timeout');
  t.true(Date.now() - started < 10_000, 'bounded by backend_response_timeout_s');
});

test.serial('a backend that does not speak HTTP: 502 bad_response', async (t) => {
  const { r } = t.context;
  const garbage = await rudeServer('garbage');
  t.teardown(() => garbage.close());
  await r.register(garbage.port, ['garbage.example.com']);
  await routeReady(r, 'garbage.example.com', 1);
  const res = await r.get('garbage.example.com');
  t.is(res.status, 502);
  t.is(res.headers['x-ingot-router-error'], 'bad_response');
  t.regex(res.body, /not valid HTTP/);
});

test.serial('malformed requests get 400 and never reach a backend', async (t) => {
  const { r } = t.context;
  const guarded = await startBackend('guarded');
  t.teardown(() => guarded.close());
  await r.register(guarded.port, ['guarded.example.com']);
  await routeReady(r, 'guarded.example.com', 1);
  const bad: Array<[string, string]> = [
    ['oversized headers', `GET / HTTP/1.1\r\nHost: guarded.example.com\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`],
    ['bad Host', 'GET / HTTP/1.1\r\nHost: guarded.example.com/evil\r\n\r\n'],
    ['two Hosts', 'GET / HTTP/1.1\r\nHost: guarded.example.com\r\nHost: other.example.com\r\n\r\n'],
    ['no Host', 'GET / HTTP/1.1\r\n\r\n'],
    ['Content-Length with Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: guarded.example.com\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['conflicting Content-Lengths', 'POST / HTTP/1.1\r\nHost: guarded.example.com\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde'],
    ['a bare LF', 'GET / HTTP/1.1\nHost: guarded.example.com\r\n\r\n'],
    ['bad chunked body', 'POST / HTTP/1.1\r\nHost: guarded.example.com\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
  ];
  for (const [what, raw] of bad) {
    const reply = await sendRaw(r.port, raw);
    t.regex(reply, /^HTTP\/1\.1 400 Bad Request\r\n/, what);
    t.regex(reply, /X-Ingot-Router-Error: bad_request/, what);
    t.regex(reply, /Connection: close/, what);
  }
  t.is(guarded.seen.length, 0, 'no malformed request reached the backend');
  t.is((await r.get('guarded.example.com')).status, 200, 'well-formed ones still do');
});

test.serial('a head trickled in byte by byte is read whole; one that never ends gets 408', async (t) => {
  const { r, ok } = t.context;
  await r.register(ok.port, ['trickle.example.com']);
  await routeReady(r, 'trickle.example.com', 1);
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = createConnection(r.port, '127.0.0.1');
    let out = '';
    socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
    const bytes = Buffer.from('GET /slowly HTTP/1.1\r\nHost: trickle.example.com\r\nConnection: close\r\n\r\n');
    let i = 0;
    const next = (): void => {
      if (i < bytes.length) socket.write(bytes.subarray(i, ++i), () => setTimeout(next, 2));
    };
    next();
  });
  t.regex(reply, /^HTTP\/1\.1 200 OK\r\n/);
  t.regex(reply, /hello from ok/);
  t.true(ok.seen.some((s) => s.url === '/slowly'));

  const started = Date.now();
  const timedOut = await sendRaw(r.port, 'GET / HTTP/1.1\r\nHost: trickle.exa', 15_000);
  t.regex(timedOut, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  t.regex(timedOut, /X-Ingot-Router-Error: request_timeout/);
  t.true(Date.now() - started < 10_000, 'bounded by request_header_timeout_s');
});

test.serial('zero client errors while one of three backends is killed', async (t) => {
  t.timeout(60_000);
  const { r } = t.context;
  const backends = await Promise.all(['k1', 'k2', 'k3'].map((n) => spawnBackend(n)));
  t.teardown(() => Promise.all(backends.map((b) => b.kill())));
  for (const b of backends) await r.register(b.port, ['killed.example.com'], { app_id: 'killed-app' });
  await routeReady(r, 'killed.example.com', 3);
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  t.teardown(() => agent.destroy());
  const failures: string[] = [];
  const served = new Map<string, number>();
  let running = true;
  const loop = async (): Promise<void> => {
    while (running) {
      try {
        const res = await send({ port: r.port, host: 'killed.example.com', agent });
        if (res.status !== 200) failures.push(`${res.status} ${res.headers['x-ingot-router-error'] ?? ''}`);
        else served.set(res.body, (served.get(res.body) ?? 0) + 1);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const loops = Array.from({ length: 8 }, loop);
  await eventually(() => (served.get('hello from k2') ?? 0) > 50, 10_000, 'k2 in rotation');
  await backends[1]!.kill();
  const killedAt = new Map(served);
  await eventually(() => [...served.values()].reduce((a, b) => a + b, 0) > [...killedAt.values()].reduce((a, b) => a + b, 0) + 500, 20_000, '500 more requests');
  running = false;
  await Promise.all(loops);
  t.deepEqual(failures, []);
  t.true((served.get('hello from k1') ?? 0) > (killedAt.get('hello from k1') ?? 0), 'the survivors carry on');
  t.true((served.get('hello from k3') ?? 0) > (killedAt.get('hello from k3') ?? 0));
});

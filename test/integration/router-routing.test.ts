// The router end to end, with a real nats-server, the router as `ingot component router`, and
// real backends: routes come and go with register/unregister, match by host (any case, any
// port), wildcard and path; the forwarding headers, sticky sessions, keep-alive and chunked
// responses work; and it announces itself, lists its table, logs and counts.
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import anyTest, { type TestFn } from 'ava';
import { eventually, send, startBackend, startRouter, type Backend, type RouterUnderTest } from '../helpers/router-process.ts';

const test = anyTest as TestFn<{ r: RouterUnderTest; a: Backend; b: Backend }>;

test.before(async (t) => {
  t.timeout(90_000);
  const r = await startRouter('router-routing');
  const a = await startBackend('a');
  const b = await startBackend('b');
  t.context = { r, a, b };
});

test.after.always(async (t) => {
  await t.context.r?.stop();
  await t.context.a?.close();
  await t.context.b?.close();
});

test('a route is usable soon after its register message and gone soon after its unregister', async (t) => {
  const { r, a } = t.context;
  t.timeout(20_000);
  t.is((await r.get('soon.example.com')).headers['x-ingot-router-error'], 'unknown_route');
  const registeredAt = Date.now();
  await r.register(a.port, ['soon.example.com'], { app_id: 'soon-app' });
  await eventually(async () => (await r.get('soon.example.com')).status === 200, 5000, 'the route to work');
  const usableAfter = Date.now() - registeredAt;
  t.true(usableAfter < 500, `usable after ${usableAfter} ms (aim: 50 ms)`);
  const unregisteredAt = Date.now();
  await r.unregister(a.port, ['soon.example.com']);
  await eventually(async () => (await r.get('soon.example.com')).status === 404, 5000, 'the route to go');
  const goneAfter = Date.now() - unregisteredAt;
  t.true(goneAfter < 500, `gone after ${goneAfter} ms (aim: 50 ms)`);
});

test('hosts match in any case and with any port; wildcards and path prefixes route to their own backends', async (t) => {
  const { r, a, b } = t.context;
  await r.register(a.port, ['match.example.com', '*.wild.example.com']);
  await r.register(b.port, ['match.example.com/api', 'deep.wild.example.com']);
  await eventually(async () => (await r.get('x.wild.example.com')).status === 200, 5000, 'routes');
  await eventually(async () => (await r.get('match.example.com', '/api')).body === 'hello from b', 5000, 'routes');
  t.is((await r.get('MATCH.Example.COM:8080', '/')).body, 'hello from a');
  t.is((await r.get('match.example.com', '/api/users?x=1')).body, 'hello from b');
  t.is((await r.get('match.example.com', '/apiary')).body, 'hello from a');
  t.is((await r.get('a.b.wild.example.com')).body, 'hello from a');
  t.is((await r.get('deep.wild.example.com')).body, 'hello from b');
  const missing = await r.get('wild.example.com');
  t.is(missing.status, 404);
  t.is(missing.headers['x-ingot-router-error'], 'unknown_route');
  t.regex(missing.body, /Requested route \('wild\.example\.com'\) does not exist/);
});

test('the backend gets X-Forwarded-For/Proto, X-Request-Start and X-Vcap-Request-Id; the client gets the id back', async (t) => {
  const { r, a } = t.context;
  await r.register(a.port, ['headers.example.com']);
  await eventually(async () => (await r.get('headers.example.com')).status === 200, 5000, 'route');
  const before = Date.now();
  const res = await r.get('headers.example.com', '/h1', { 'x-forwarded-for': '203.0.113.9' });
  const seen = a.seen.find((s) => s.url === '/h1')!;
  t.is(seen.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
  t.is(seen.headers['x-forwarded-proto'], 'http');
  t.is(seen.headers.host, 'headers.example.com');
  const start = Number(seen.headers['x-request-start']);
  t.true(start >= before - 1000 && start <= Date.now(), 'X-Request-Start is the arrival time in ms');
  t.regex(String(seen.headers['x-vcap-request-id']), /^[0-9a-f-]{36}$/);
  t.is(res.headers['x-vcap-request-id'], seen.headers['x-vcap-request-id']);

  const mine = await r.get('headers.example.com', '/h2', { 'x-vcap-request-id': 'my-request-42', 'x-forwarded-proto': 'https' });
  const seen2 = a.seen.find((s) => s.url === '/h2')!;
  t.is(seen2.headers['x-vcap-request-id'], 'my-request-42');
  t.is(seen2.headers['x-forwarded-proto'], 'https');
  t.is(mine.headers['x-vcap-request-id'], 'my-request-42');
});

test('sticky sessions: a JSESSIONID brings __VCAP_ID__, honoured while the instance is registered', async (t) => {
  const { r } = t.context;
  const backends = await Promise.all(
    ['s1', 's2', 's3'].map((name) =>
      startBackend(name, (req, res) => {
        const headers: Record<string, string> = { 'content-type': 'text/plain' };
        if (req.url === '/login') headers['set-cookie'] = 'JSESSIONID=sess-1; Path=/; HttpOnly';
        res.writeHead(200, headers);
        res.end(name);
      }),
    ),
  );
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  for (const [i, b] of backends.entries()) await r.register(b.port, ['sticky.example.com'], { app_id: 'sticky-app', instance_id: `inst-${i}`, private_instance_id: `priv-${i}`, index: i });
  await eventually(async () => (await r.routes())['sticky.example.com']?.length === 3, 5000, 'three endpoints');

  const login = await r.get('sticky.example.com', '/login');
  const cookies = login.headers['set-cookie'] ?? [];
  const vcap = cookies.find((c) => c.startsWith('__VCAP_ID__='));
  t.truthy(vcap, `cookies: ${cookies.join(' | ')}`);
  t.regex(vcap!, /^__VCAP_ID__=priv-\d; Path=\/; HttpOnly$/);
  const instance = /priv-(\d)/.exec(vcap!)![1]!;
  const cookie = `JSESSIONID=sess-1; __VCAP_ID__=priv-${instance}`;
  for (let i = 0; i < 15; i++) t.is((await r.get('sticky.example.com', '/page', { cookie })).body, `s${Number(instance) + 1}`);

  // The instance goes away: the session moves, and the cookie follows.
  await r.unregister(backends[Number(instance)]!.port, ['sticky.example.com']);
  await eventually(async () => (await r.routes())['sticky.example.com']?.length === 2, 5000, 'two endpoints');
  const moved = await r.get('sticky.example.com', '/page', { cookie });
  t.not(moved.body, `s${Number(instance) + 1}`);
  t.truthy((moved.headers['set-cookie'] ?? []).find((c) => c.startsWith('__VCAP_ID__=priv-')));
});

test('client keep-alive and pooled backend connections: many requests, few connections', async (t) => {
  const { r } = t.context;
  const pooled = await startBackend('pooled');
  t.teardown(() => pooled.close());
  await r.register(pooled.port, ['pool.example.com']);
  await eventually(async () => (await r.get('pool.example.com')).status === 200, 5000, 'route');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const clientPorts = new Set<number>();
  agent.on('free', (s) => clientPorts.add(s.localPort ?? 0));
  const before = pooled.connections;
  for (let i = 0; i < 30; i++) {
    const res = await send({ port: r.port, host: 'pool.example.com', path: `/k${i}`, agent });
    t.is(res.status, 200);
  }
  t.is(clientPorts.size, 1, 'one client connection carried every request');
  t.true(pooled.connections - before <= 2, `backend connections opened for 30 requests: ${pooled.connections - before}`);
});

test('chunked and streamed responses and request bodies pass through', async (t) => {
  const { r } = t.context;
  const streaming = await startBackend('streaming', (req, res, body) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    let n = 0;
    const timer = setInterval(() => {
      res.write(`part ${n} of ${body.length}\n`);
      if (++n === 5) {
        clearInterval(timer);
        res.end('end\n');
      }
    }, 20);
  });
  t.teardown(() => streaming.close());
  await r.register(streaming.port, ['chunked.example.com']);
  await eventually(async () => (await r.get('chunked.example.com')).status === 200, 5000, 'route');
  const res = await send({ port: r.port, host: 'chunked.example.com', method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: 'x'.repeat(100_000) });
  t.is(res.headers['transfer-encoding'], 'chunked');
  t.is(res.body, 'part 0 of 100000\npart 1 of 100000\npart 2 of 100000\npart 3 of 100000\npart 4 of 100000\nend\n');
});

test('announces router.start at boot and answers router.greet the same way', async (t) => {
  const { r } = t.context;
  const greeting = (await r.nc.request('router.greet', JSON.stringify({}), { timeout: 5000 })).json<Record<string, unknown>>();
  t.is(greeting.minimum_register_interval_s, 20);
  t.is(greeting.prune_threshold_s, 60);
  t.true(Array.isArray(greeting.hosts));
  t.is(typeof greeting.id, 'string');
  const v = await r.varz();
  t.is(greeting.id, v.uuid);
});

test('/routes lists the table, only with credentials', async (t) => {
  const { r, a } = t.context;
  await r.register(a.port, ['listed.example.com'], { app_id: 'listed-app', instance_id: 'i-9', index: 4, tags: { component: 'test' } });
  const routes = await eventually(async () => {
    const all = await r.routes();
    return all['listed.example.com'] ? all : undefined;
  }, 5000, 'listing');
  t.like(routes['listed.example.com']![0], { address: `127.0.0.1:${a.port}`, app_id: 'listed-app', instance_id: 'i-9', index: 4, tags: { component: 'test' }, stale_after_s: 60 });
  t.is((await fetch(r.router.statusUrl('/routes'))).status, 401);
});

test('malformed register messages are dropped and counted in /varz', async (t) => {
  const { r } = t.context;
  const before = (await r.varz()).registry.malformed_messages as number;
  r.nc.publish('router.register', 'not json at all');
  r.nc.publish('router.register', JSON.stringify({ host: '127.0.0.1', port: 'eighty', uris: ['x.com'] }));
  r.nc.publish('router.unregister', JSON.stringify({ uris: [] }));
  r.nc.publish('router.register', JSON.stringify({ host: '127.0.0.1', port: 1, uris: ['bad uri with spaces'] }));
  await r.nc.flush();
  const v = await eventually(async () => {
    const v = await r.varz();
    return v.registry.malformed_messages >= before + 3 ? v : undefined;
  }, 5000, 'the count');
  t.is(v.registry.malformed_messages, before + 3);
  t.true(v.registry.invalid_uris >= 1);
  t.is((await r.varz()).workers.filter((w: { ready: boolean }) => w.ready).length, 2, 'the router is unharmed');
});

test('each request has an access-log line, its RTR line on logs.<app_id>, and counts in /varz and /metrics', async (t) => {
  const { r, a } = t.context;
  const lines: Array<Record<string, unknown>> = [];
  r.nc.subscribe('logs.counted-app', { callback: (_e, m) => lines.push(m.json()) });
  await r.nc.flush();
  await r.register(a.port, ['counted.example.com'], { app_id: 'counted-app', index: 7 });
  await eventually(async () => (await r.get('counted.example.com')).status === 200, 5000, 'route');
  for (let i = 0; i < 20; i++) t.is((await r.get('counted.example.com', `/count/${i}`)).status, 200);

  const rtr = await eventually(() => lines.find((l) => String(l.line).includes('/count/19')), 5000, 'an RTR line');
  t.like(rtr, { app_id: 'counted-app', source: 'RTR', index: 7, stream: 'out' });
  t.regex(String(rtr.line), /^counted\.example\.com - \[.+\] "GET \/count\/19 HTTP\/1\.1" 200 0 \d+ .* vcap_request_id:"[0-9a-f-]{36}" response_time:\d+\.\d+ app_id:"counted-app" app_index:"7"$/);

  const logged = await eventually(() => {
    const text = readFileSync(r.accessLog, 'utf8');
    return text.includes('/count/19') ? text : undefined;
  }, 5000, 'the access log');
  t.regex(logged, /"GET \/count\/0 HTTP\/1\.1" 200/);

  const v = await eventually(async () => {
    const v = await r.varz();
    return v.apps?.['counted-app']?.requests >= 21 ? v : undefined;
  }, 5000, 'per-app counts');
  t.true(v.apps['counted-app'].requests_per_second > 0);
  t.true(v.requests >= 21);
  t.true(v.responses['2xx'] >= 21);
  t.true(v.latency_ms.p99 > 0);
  t.true(v.routes > 0 && v.endpoints > 0);
  const metrics = await (await fetch(r.router.statusUrl('/metrics'), { headers: { authorization: r.router.auth } })).text();
  t.regex(metrics, /^ingot_router_app_requests_per_second\{app_id="counted-app"\} [\d.]+$/m);
  t.regex(metrics, /^ingot_router_responses_total\{class="2xx"\} \d+$/m);
  t.regex(metrics, /^ingot_router_latency_ms\{quantile="p99"\} [\d.]+$/m);
});

// The router over time: it announces itself, prunes endpoints whose registrants went quiet
// but never while NATS is unreachable, keeps proxying through a storm of registrations, and
// drains on SIGTERM (503 on /healthz, still serving, in-flight requests finished, then exit).
import { setTimeout as sleep } from 'node:timers/promises';
import anyTest, { type TestFn } from 'ava';
import { connect, type NatsConnection } from 'nats';
import { NatsServer } from '../helpers/nats-server.ts';
import { eventually, send, startBackend, startRouter, type Backend, type RouterUnderTest } from '../helpers/router-process.ts';

const test = anyTest as TestFn<{ nats: NatsServer; watcher: NatsConnection; starts: Array<Record<string, any>>; r: RouterUnderTest; ok: Backend }>;

const STALE_S = 2.5;

test.before(async (t) => {
  t.timeout(90_000);
  const nats = await NatsServer.start();
  const watcher = await connect({ servers: nats.url, user: nats.user, pass: nats.password, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const starts: Array<Record<string, any>> = [];
  watcher.subscribe('router.start', { callback: (_e, m) => starts.push(m.json()) });
  await watcher.flush();
  const r = await startRouter('router-lifecycle', { minimum_register_interval_s: 1, prune_stale_after_s: STALE_S, drain_wait_s: 2, drain_timeout_s: 20 }, nats);
  const ok = await startBackend('ok');
  t.context = { nats, watcher, starts, r, ok };
});

test.after.always(async (t) => {
  await t.context.r?.stop();
  await t.context.watcher?.close().catch(() => undefined);
  await t.context.nats?.stop();
  await t.context.ok?.close();
});

test.serial('announces router.start with its register interval at boot', async (t) => {
  const start = await eventually(() => t.context.starts[0], 5000, 'router.start');
  t.is(start.minimum_register_interval_s, 1);
  t.is(start.prune_threshold_s, STALE_S);
  t.is(start.id, (await t.context.r.varz()).uuid);
});

test.serial('an endpoint that is not refreshed is pruned; one that is refreshed stays', async (t) => {
  t.timeout(30_000);
  const { r, ok } = t.context;
  await r.register(ok.port, ['kept.example.com', 'quiet.example.com']);
  const refresher = setInterval(() => void r.register(ok.port, ['kept.example.com']), 500);
  t.teardown(() => clearInterval(refresher));
  await eventually(async () => (await r.get('quiet.example.com')).status === 200, 5000, 'the route');
  const registered = Date.now();
  await eventually(async () => (await r.get('quiet.example.com')).status === 404, 15_000, 'pruning');
  const after = (Date.now() - registered) / 1000;
  t.true(after >= STALE_S - 0.5 && after < STALE_S * 4, `pruned after ${after} s (threshold ${STALE_S} s)`);
  t.is((await r.get('kept.example.com')).status, 200);
  t.truthy((await r.routes())['kept.example.com']);
  t.true((await r.varz()).registry.pruned >= 1);
});

test.serial('nothing is pruned while NATS is unreachable; pruning resumes and router.start goes out when it is back', async (t) => {
  t.timeout(60_000);
  const { r, ok, nats } = t.context;
  await r.register(ok.port, ['outage.example.com']);
  await eventually(async () => (await r.get('outage.example.com')).status === 200, 5000, 'the route');
  await nats.stop();
  await eventually(async () => (await r.varz()).registry.pruning_suspended === true, 15_000, 'the router to notice');
  // Unhealthy once the outage outlasts a reconnect to another server (a few seconds).
  await eventually(async () => (await fetch(r.router.statusUrl('/healthz'))).status === 503, 15_000, 'unhealthy without NATS');
  // Let the stale threshold pass twice over, with nobody able to refresh.
  await sleep(STALE_S * 2 * 1000);
  t.truthy((await r.routes())['outage.example.com'], 'still listed');
  t.is((await r.get('outage.example.com')).status, 200, 'still served');

  const logged = r.router.logs.length;
  await nats.restart();
  // router.start goes out as the router reconnects. This test's own connection reconnects on
  // its own schedule and may resubscribe just after it (the message is then lost to it, not to
  // the others), so the router's word that it sent it is what is waited for.
  await r.router.waitForLog((l) => r.router.logs.indexOf(l) >= logged && l.msg === 'NATS reachable again: pruning resumed, router.start sent', 30_000);
  await eventually(async () => (await fetch(r.router.statusUrl('/healthz'))).status === 200, 10_000, 'healthy again');
  t.false((await r.varz()).registry.pruning_suspended);
  // Not refreshed after the outage either: it goes one threshold later.
  await eventually(async () => (await r.get('outage.example.com')).status === 404, 15_000, 'pruning after the outage');
});

test.serial('a storm of 10,000 registrations per second does not stall proxying', async (t) => {
  t.timeout(60_000);
  const { r, ok } = t.context;
  const refresher = setInterval(() => void r.register(ok.port, ['steady.example.com']), 500);
  t.teardown(() => clearInterval(refresher));
  await r.register(ok.port, ['steady.example.com']);
  await eventually(async () => (await r.get('steady.example.com')).status === 200, 5000, 'the route');

  let storming = true;
  let published = 0;
  const storm = (async () => {
    const startedAt = Date.now();
    while (storming && Date.now() - startedAt < 3000) {
      for (let i = 0; i < 500; i++) {
        r.nc.publish('router.register', JSON.stringify({ host: '127.0.0.1', port: 40000 + (published % 1000), uris: [`storm-${published}.example.com`], app_id: `storm-${published % 50}` }));
        published++;
      }
      await r.nc.flush();
      await sleep(50);
    }
  })();
  const latencies: number[] = [];
  const failures: number[] = [];
  const probe = (async () => {
    while (storming) {
      const at = Date.now();
      const res = await send({ port: r.port, host: 'steady.example.com' });
      latencies.push(Date.now() - at);
      if (res.status !== 200) failures.push(res.status);
    }
  })();
  await storm;
  storming = false;
  await probe;
  const seconds = 3;
  t.true(published >= 10_000 * seconds * 0.5, `published ${published} registrations in ${seconds} s`);
  t.deepEqual(failures, []);
  const worst = Math.max(...latencies);
  t.log(`${published} registrations in ${seconds} s; ${latencies.length} requests meanwhile, slowest ${worst} ms`);
  t.true(worst < 1000, `slowest request during the storm: ${worst} ms over ${latencies.length} requests`);
  const v = await r.varz();
  t.true(v.registry.registers >= published, `the router saw ${v.registry.registers} registrations`);
});

test.serial('a proxy worker that dies is replaced, with the whole table, while the other keeps serving', async (t) => {
  t.timeout(60_000);
  const { r, ok } = t.context;
  const refresher = setInterval(() => void r.register(ok.port, ['survivor.example.com']), 500);
  t.teardown(() => clearInterval(refresher));
  await r.register(ok.port, ['survivor.example.com']);
  await eventually(async () => (await r.get('survivor.example.com')).status === 200, 5000, 'the route');
  const before = (await r.varz()).workers as Array<{ id: number; pid: number }>;
  process.kill(before[0]!.pid, 'SIGKILL');
  const failures: number[] = [];
  const after = await eventually(async () => {
    const res = await r.get('survivor.example.com');
    if (res.status !== 200) failures.push(res.status);
    const w = ((await r.varz()).workers as Array<{ id: number; pid: number; ready: boolean; restarts: number }>)[0]!;
    return w.ready && w.pid !== before[0]!.pid ? w : undefined;
  }, 30_000, 'a replacement worker');
  t.is(after.restarts, 1);
  t.deepEqual(failures, [], 'the surviving worker served meanwhile');
  for (let i = 0; i < 20; i++) t.is((await r.get('survivor.example.com')).status, 200);
});

test.serial('drain: /healthz turns 503 at once, requests are served through the drain wait, in-flight ones finish, then it exits', async (t) => {
  t.timeout(60_000);
  const { r, ok } = t.context;
  const slow = await startBackend('slow', (_req, res) => setTimeout(() => res.end('slow but sure'), 3000));
  t.teardown(() => slow.close());
  const refresher = setInterval(() => {
    void r.register(ok.port, ['fast.example.com']);
    void r.register(slow.port, ['slowpoke.example.com']);
  }, 500);
  t.teardown(() => clearInterval(refresher));
  await r.register(ok.port, ['fast.example.com']);
  await r.register(slow.port, ['slowpoke.example.com']);
  await eventually(async () => (await r.get('fast.example.com')).status === 200, 5000, 'the route');
  await eventually(async () => (await r.routes())['slowpoke.example.com'] !== undefined, 5000, 'the slow route');

  const inFlight = send({ port: r.port, host: 'slowpoke.example.com', timeoutMs: 20_000 });
  await eventually(() => slow.connections > 0, 5000, 'the slow request to reach its backend');
  r.router.proc.kill('SIGTERM');
  await eventually(async () => (await fetch(r.router.statusUrl('/healthz'))).status === 503, 2000, '/healthz to turn 503');
  const during = await r.get('fast.example.com');
  t.is(during.status, 200, 'still serving during the drain wait');
  const finished = await inFlight;
  t.is(finished.status, 200);
  t.is(finished.body, 'slow but sure');
  const exit = await r.router.exited;
  t.is(exit.code, 0);
  await t.throwsAsync(send({ port: r.port, host: 'fast.example.com' }), undefined, 'nothing listens after the drain');
});

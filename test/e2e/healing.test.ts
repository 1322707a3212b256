// Apps that heal themselves, end to end (issue 6), against one local kernel brought up once:
// nats-server, router, cloud controller, two DEAs (namespace containers) and two health
// managers. Each test does to the platform what a bad day does — kill -9 an app, a whole DEA,
// the health managers, the controller — and watches, through the router and on NATS, how it
// recovers: HM → controller → DEA, one START per missing instance however many HMs watch.
// Serial; times are logged (bench/recovery measures them properly), bounds are generous.
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from 'nats';
import { appPids, containerPids } from '../helpers/app-processes.ts';
import { ADMIN } from '../helpers/cc-controller.ts';
import { eventually } from '../helpers/component-process.ts';
import { startPlatform, E2E_HM_TIMINGS, type CliResult, type Platform } from '../helpers/platform.ts';

interface Seen {
  subject: string;
  data: any;
  at: number;
}

interface Ctx {
  p: Platform;
  nc: NatsConnection;
  /** Every message on the subjects these tests watch, in order. */
  seen: Seen[];
  timings: Record<string, number>;
}
const test = anyTest as TestFn<Ctx>;
const ECHO_APP = fileURLToPath(new URL('./fixtures/echo-app', import.meta.url));
const WATCHED = ['cloudcontrollers.hm.requests', 'dea.*.start', 'droplet.exited', 'router.unregister'];

test.before(async (t) => {
  t.timeout(180_000);
  const started = Date.now();
  const p = await startPlatform({ label: 'e2e-heal', deas: 2, healthManagers: 2 });
  const seen: Seen[] = [];
  t.context = { p, nc: undefined as unknown as NatsConnection, seen, timings: { platform_up_ms: Date.now() - started } };
  const { servers, user, password } = p.nats.componentConfig;
  const nc = await connect({ servers, user, pass: password });
  t.context.nc = nc;
  for (const subject of WATCHED) nc.subscribe(subject, { callback: (_e, m) => seen.push({ subject: m.subject, data: m.json(), at: Date.now() }) });
  await nc.flush();
  for (const args of [['api', p.apiUrl], ['login', '-u', ADMIN.user, '-p', ADMIN.password]]) {
    const r = await p.cli(args);
    if (r.code !== 0) throw new Error(`ingot ${args[0]}: ${r.stderr}`);
  }
  // The first health manager leads; the second follows (and would take over).
  await eventually(async () => (await varz(p, 0)).leader === true && (await varz(p, 1)).leader === false, 30_000, 'HM 0 leading, HM 1 following');
});

test.after.always(async (t) => {
  t.timeout(180_000);
  await t.context.nc?.close().catch(() => undefined);
  await t.context.p?.stop();
  if (t.context.timings) t.log(JSON.stringify(t.context.timings));
});

async function ingot(t: ExecutionContext<Ctx>, args: string[], timeoutMs = 180_000): Promise<CliResult> {
  const r = await t.context.p.cli(args, timeoutMs);
  if (r.code !== 0) t.log(`ingot ${args.join(' ')} → ${r.code}\n${r.stdout}\n${r.stderr}`);
  t.is(r.code, 0, `ingot ${args.join(' ')}: ${r.stderr.trim()}`);
  return r;
}

async function varz(p: Platform, hm: number): Promise<any> {
  const c = p.hms[hm]!;
  const res = await fetch(c.statusUrl('/varz'), { headers: { authorization: c.auth } });
  return res.json();
}

async function appGuid(t: ExecutionContext<Ctx>, name: string): Promise<string> {
  return JSON.parse((await ingot(t, ['app', name, '--json'])).stdout).guid;
}

/** Instances of the app the DEAs report now (dea.find.droplet), gathered for a moment. */
async function findInstances(nc: NatsConnection, appId: string): Promise<Array<{ dea_id: string; index: number; state: string; instance_id: string }>> {
  const inbox = `_INBOX.${randomUUID()}`;
  const out: any[] = [];
  const sub = nc.subscribe(inbox, { callback: (_e, m) => out.push(m.json()) });
  nc.publish('dea.find.droplet', JSON.stringify({ app_id: appId }), { reply: inbox });
  await nc.flush();
  await new Promise((r) => setTimeout(r, 400)); // a window for every DEA's replies, as the controller takes
  sub.unsubscribe();
  return out;
}

const running = <T extends { state: string }>(xs: T[]): T[] => xs.filter((x) => x.state === 'RUNNING');
const since = (seen: Seen[], at: number, subject: RegExp, appId: string) => seen.filter((m) => m.at >= at && subject.test(m.subject) && m.data.app_id === appId);

/** Requests through the router until the route is gone and until it answers again from a new process. */
async function killAndWatch(t: ExecutionContext<Ctx>, name: string, pid: number): Promise<{ goneMs: number; backMs: number }> {
  const { p } = t.context;
  const host = p.appHost(name);
  const t0 = performance.now();
  process.kill(pid, 'SIGKILL');
  let goneMs: number | undefined;
  // Bounded: one request every few ms for at most 30 s.
  while (performance.now() - t0 < 30_000) {
    const r = await p.get(host, '/', 2000).catch(() => ({ status: 0 }));
    const now = performance.now() - t0;
    if (goneMs === undefined && r.status === 404) goneMs = now;
    if (r.status === 200 && goneMs !== undefined && !appPids(name, 'app.py').includes(pid)) return { goneMs, backMs: now };
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${name} not routable again within 30 s of the kill (route gone: ${goneMs ?? 'never'} ms)`);
}

test.serial('kill -9 of an app: its route goes at once, it runs again within seconds, by HM → controller → DEA, asked once by two HMs', async (t) => {
  t.timeout(240_000);
  const { p, seen } = t.context;
  await ingot(t, ['push', 'heal', '-p', ECHO_APP, '-m', '64M']);
  const appId = await appGuid(t, 'heal');
  const [pid] = appPids('heal', 'app.py');
  t.truthy(pid, 'the app process on this host');
  const at = Date.now();
  const { goneMs, backMs } = await killAndWatch(t, 'heal', pid!);
  Object.assign(t.context.timings, { kill_route_gone_ms: Math.round(goneMs), kill_routable_again_ms: Math.round(backMs) });
  t.true(goneMs < 1000, `route gone ${goneMs} ms after the kill (aim 100 ms)`);
  t.true(backMs < 20_000, `routable again ${backMs} ms after the kill (aim 2 s)`);

  // The chain: the DEA reported the crash, the HM asked, the controller sent the DEA a start.
  const crash = since(seen, at, /^droplet\.exited$/, appId).find((m) => m.data.reason === 'CRASHED');
  const ask = since(seen, at, /^cloudcontrollers\.hm\.requests$/, appId).find((m) => m.data.op === 'START');
  const start = since(seen, at, /^dea\..+\.start$/, appId)[0];
  t.truthy(crash && ask && start, 'droplet.exited CRASHED, then an HM START, then dea.<id>.start');
  t.true(crash!.at <= ask!.at && ask!.at <= start!.at, 'in that order');
  t.deepEqual(ask!.data.indices, [0]);
  // Two HMs watched; one asked. Let a few more analysis rounds of both pass.
  const rounds = [(await varz(p, 0)).rounds, (await varz(p, 1)).rounds];
  await eventually(async () => (await varz(p, 0)).rounds >= rounds[0] + 8 && (await varz(p, 1)).rounds >= rounds[1] + 8, 20_000, 'eight more rounds on each HM');
  t.is(since(seen, at, /^cloudcontrollers\.hm\.requests$/, appId).filter((m) => m.data.op === 'START').length, 1, 'one START for one crash');
  t.false((await varz(p, 1)).leader, 'the other HM follows');
  // And the controller kept the HM's request as an audit event.
  const events = await p.cc.admin.get(`/v3/audit_events?target_guids=${appId}&types=audit.app.process.hm_start`);
  t.true(events.body.resources.some((e: any) => e.data.index === 0 && e.data.reason === 'crashed'), JSON.stringify(events.body.resources));
});

test.serial('an extra instance started by hand is stopped', async (t) => {
  t.timeout(120_000);
  const { p, nc, seen } = t.context;
  const appId = await appGuid(t, 'heal');
  const original = seen.filter((m) => /^dea\..+\.start$/.test(m.subject) && m.data.app_id === appId).at(-1)!;
  const extra = { ...original.data, instance_id: randomUUID(), index: 3 };
  const at = Date.now();
  nc.publish(original.subject, JSON.stringify(extra));
  await eventually(() => since(seen, at, /^droplet\.exited$/, appId).some((m) => m.data.instance_id === extra.instance_id && m.data.reason === 'STOPPED'), 30_000, 'the extra instance stopped');
  const stop = since(seen, at, /^cloudcontrollers\.hm\.requests$/, appId).find((m) => m.data.op === 'STOP');
  t.deepEqual(stop?.data.instance_ids, [extra.instance_id]);
  t.is(stop?.data.reason, 'extra_index');
  t.is(running(await findInstances(nc, appId)).length, 1, 'index 0 alone runs');
  t.is((await p.get(p.appHost('heal'))).status, 200);
});

test.serial('a crash-looping app restarts at once three times, then backs off, and `ingot app` shows it flapping', async (t) => {
  t.timeout(240_000);
  const { seen } = t.context;
  // It opens its port, so it is healthy, then dies a moment later: a crash each time.
  // The push may see it running, or already crashed: either way it is pushed and started.
  await t.context.p.cli(['push', 'loop', '-p', ECHO_APP, '-m', '64M', '-c', 'python3 app.py & sleep 2; exit 3'], 180_000);
  const appId = await appGuid(t, 'loop');
  const shown = await eventually(async () => {
    const out = (await t.context.p.cli(['app', 'loop'])).stdout;
    return /flapping: crashed \d+ times/.test(out) ? out : undefined;
  }, 90_000, '`ingot app loop` showing flapping');
  t.regex(shown, /#0\s+crashed.*flapping: crashed \d+ times(, next restart in \d+ s)?/);
  // The controller started it; the HM restarted it after each of the first three crashes at
  // once, and after the fourth only once the base delay (4 s) had passed.
  const starts = () => seen.filter((m) => m.subject === 'cloudcontrollers.hm.requests' && m.data.app_id === appId && m.data.op === 'START').map((m) => m.at);
  await eventually(() => starts().length >= 4, 60_000, 'a fourth restart, after the back-off');
  const crashes = seen.filter((m) => m.subject === 'droplet.exited' && m.data.app_id === appId && m.data.reason === 'CRASHED').map((m) => m.at);
  const [s1, s2, s3, s4] = starts();
  const quick = [s1!, s2!, s3!].map((s, i) => s - crashes[i]!);
  t.true(quick.every((ms) => ms >= 0 && ms < 3000), `the first three restarts at once: ${quick.join(', ')} ms after their crash`);
  const waited = s4! - crashes[3]!;
  t.true(waited >= (E2E_HM_TIMINGS.crash_backoff.base_delay_s - 1) * 1000, `the fourth restart ${waited} ms after its crash`);
  t.context.timings.flapping_fourth_restart_ms = waited;
  await ingot(t, ['delete', 'loop', '-f']);
});

test.serial('with the health managers stopped, a crashed instance stays down; back, they heal it', async (t) => {
  t.timeout(180_000);
  const { p, nc, seen } = t.context;
  const appId = await appGuid(t, 'heal');
  for (const hm of p.hms) await hm.kill('SIGTERM');
  const [pid] = appPids('heal', 'app.py');
  const at = Date.now();
  process.kill(pid!, 'SIGKILL');
  await eventually(async () => (await p.get(p.appHost('heal'))).status === 404, 10_000, 'the route gone');
  // Longer than the HMs would take to notice and restart it (their heartbeat timeout and a start).
  await new Promise((r) => setTimeout(r, (E2E_HM_TIMINGS.heartbeat_timeout_s + 4) * 1000));
  t.is(since(seen, at, /^dea\..+\.start$/, appId).length, 0, 'no one started it');
  t.is(running(await findInstances(nc, appId)).length, 0);
  t.is((await p.get(p.appHost('heal'))).status, 404);
  const back = Date.now();
  await p.restartHealthManager(0);
  await p.restartHealthManager(1);
  await eventually(async () => (await p.get(p.appHost('heal'))).status === 200, 60_000, 'the app back once the HMs are');
  t.context.timings.hm_restart_to_routable_ms = Date.now() - back;
  t.is(since(seen, back, /^cloudcontrollers\.hm\.requests$/, appId).filter((m) => m.data.op === 'START').length, 1, 'one START from the two fresh HMs');
});

test.serial('kill -9 of a whole DEA and its instances: they run on the other DEA within seconds', async (t) => {
  t.timeout(240_000);
  const { p, nc } = t.context;
  const appId = await appGuid(t, 'heal');
  await ingot(t, ['scale', 'heal', '-i', '2']);
  const before = running(await findInstances(nc, appId));
  t.is(before.length, 2);
  const deaIds = [...new Set(before.map((i) => i.dea_id))];
  t.is(deaIds.length, 2, 'one instance on each DEA (the taint spreads them)');
  // DEA ids begin with their index.
  const victim = Number(deaIds[0]!.split('-')[0]);
  const survivor = deaIds.find((id) => !id.startsWith(`${victim}-`))!;
  const t0 = Date.now();
  await p.deas[victim]!.kill('SIGKILL');
  for (const pid of containerPids(p.deaPrefixes[victim]!)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  await eventually(async () => {
    const now = running(await findInstances(nc, appId));
    return now.length === 2 && now.every((i) => i.dea_id === survivor);
  }, 150_000, 'both instances running on the surviving DEA');
  const moved = Date.now() - t0;
  t.context.timings.dea_kill_moved_ms = moved;
  t.true(moved < 150_000, `moved in ${moved} ms (aim 15 s)`);
  t.is((await p.get(p.appHost('heal'))).status, 200);
  // The DEA comes back (its successor cleans up what was left) for the next tests.
  await p.restartDea(victim);
});

test.serial("an evacuating DEA's instances move to the other DEA with no failed request", async (t) => {
  t.timeout(240_000);
  const { p, nc } = t.context;
  const appId = await appGuid(t, 'heal');
  const before = running(await findInstances(nc, appId));
  const evacuee = Number(before[0]!.dea_id.split('-')[0]);
  const evacueeId = before[0]!.dea_id;
  let done = false;
  const results: Array<{ status: number; error?: string }> = [];
  const trickle = (async () => {
    // Bounded: at most 3000 requests, one every 20 ms, until the instances have moved.
    for (let i = 0; i < 3000 && !done; i++) {
      const r = await p.get(p.appHost('heal'), '/', 5000).catch((err: Error) => ({ status: 0, body: err.message }));
      results.push(r.status === 200 ? { status: 200 } : { status: r.status, error: String(r.body).slice(0, 200) });
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const t0 = Date.now();
  p.deas[evacuee]!.proc.kill('SIGUSR2');
  await eventually(async () => {
    const now = running(await findInstances(nc, appId));
    return now.length === 2 && now.every((i) => i.dea_id !== evacueeId);
  }, 120_000, 'every instance running off the evacuating DEA');
  t.context.timings.evacuation_moved_ms = Date.now() - t0;
  // The evacuated DEA exits once its instances are stopped.
  await Promise.race([p.deas[evacuee]!.exited, new Promise((_, reject) => setTimeout(() => reject(new Error('the evacuated DEA did not exit')), 60_000))]);
  done = true;
  await trickle;
  const failed = results.filter((r) => r.status !== 200);
  t.deepEqual(failed, [], `${failed.length} of ${results.length} requests failed`);
  t.true(results.length >= 20, `a steady trickle (${results.length} requests)`);
  await p.restartDea(evacuee);
});

test.serial('with the controller down for a minute, the HMs keep their view, ask nothing harmful, and catch up after', async (t) => {
  t.timeout(300_000);
  const { p, nc, seen } = t.context;
  const appId = await appGuid(t, 'heal');
  const before = await varz(p, 0);
  await p.cc.kill();
  const down = Date.now();
  const [pid] = appPids('heal', 'app.py');
  process.kill(pid!, 'SIGKILL');
  // A minute without the controller: sampled every few seconds.
  while (Date.now() - down < 60_000) {
    const v = await varz(p, 0);
    t.is(v.intended.apps, before.intended.apps, 'the desired state is kept');
    await new Promise((r) => setTimeout(r, 5000));
  }
  const stops = since(seen, down, /^cloudcontrollers\.hm\.requests$/, appId).filter((m) => m.data.op === 'STOP');
  t.deepEqual(stops.map((m) => m.data), [], 'no STOP while the controller was away');
  t.is(running(await findInstances(nc, appId)).length, 1, 'the other instance ran on throughout');
  const back = Date.now();
  await p.cc.start();
  await eventually(async () => running(await findInstances(nc, appId)).length === 2, 60_000, 'both instances running after the controller is back');
  t.context.timings.cc_back_to_healed_ms = Date.now() - back;
  t.is((await p.get(p.appHost('heal'))).status, 200);
});

// The health manager as a real process (`ingot component health-manager --config`) against a
// real nats-server, a real cloud controller process and test DEAs speaking the real protocol
// (test/helpers/cc-peers.ts). The test heartbeats for the DEAs from what they hold, so it can
// hide, crash, evacuate or plant instances; every request the HM sends is recorded from the
// bus, and every effect is checked where it lands: the controller's dea.start / dea.stop.
// Timings in the HM's config are short so the suite stays quick; waits are bounded.
import anyTest, { type TestFn } from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { replies, subjects, type Bus, type HmRequest } from '../../kernel/bus/mod.ts';
import { BULK, multipart, startController, zipOf, type Controller } from '../helpers/cc-controller.ts';
import { Journal, TestDea, TestStager, testBus, type PeerInstance } from '../helpers/cc-peers.ts';
import { eventually, runCli, startComponentProcess, writeConfig, type StartedComponent } from '../helpers/component-process.ts';
import { NatsServer } from '../helpers/nats-server.ts';
import { scratchDir } from '../helpers/tmp.ts';

const STATUS = { user: 'ingot', password: 'hm-status-pw' };
const BASE_DELAY_S = 2;
const SLOW_DISCOVER_MS = 300;
const ELECTION_MS = 200;
const ANALYSIS_S = 0.2;
const HEARTBEAT_TIMEOUT_S = 1.5;
const FOLLOWER_TIMEOUT_S = 0.6;

interface Ctx {
  nats: NatsServer;
  cc: Controller;
  journal: Journal;
  stager: TestStager;
  deas: TestDea[];
  bus: Bus;
  hm: StartedComponent;
  hmConfig: Record<string, unknown>;
  /** Every request any HM sent, as the controllers hear it. */
  requests: Array<HmRequest & { at: number }>;
  heartbeater: NodeJS.Timeout;
  extraHms: StartedComponent[];
}

const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const nats = await NatsServer.start();
  const journal = new Journal();
  const stager = await TestStager.start(nats, journal);
  // The first DEA answers discover slowly: a DEA started later wins placements, which is how
  // the evacuation test sees a replacement land elsewhere.
  const deas = [await TestDea.start(nats, 'dea-a', journal, { discoverDelayMs: SLOW_DISCOVER_MS, runAfterMs: 100 })];
  const bus = await testBus(nats);
  const requests: Ctx['requests'] = [];
  bus.subscribe(subjects.hmRequests, (m) => void requests.push({ ...m, at: Date.now() }));
  await bus.flush();
  const heartbeater = setInterval(() => {
    for (const dea of deas) {
      const instances = [...dea.instances.values()]
        .map((i) => ({ app_id: i.app_id, version: i.version, instance_id: i.instance_id, index: i.index, state: i.state, state_timestamp: i.state_timestamp }));
      bus.publish(subjects.deaHeartbeat, { dea_id: dea.id, instances });
    }
  }, 200);
  const cc = await startController(nats);
  const hmConfig = {
    nats: nats.componentConfig,
    status: { host: '127.0.0.1', port: 0, ...STATUS },
    logging: { level: 'info' },
    local_ip: '127.0.0.1',
    drain_timeout_s: 2,
    bulk_api: { url: cc.url, user: BULK.user, password: BULK.password, timeout_s: 3, retry_interval_s: 0.5 },
    analysis_interval_s: ANALYSIS_S,
    resync_interval_s: 5,
    heartbeat_timeout_s: HEARTBEAT_TIMEOUT_S,
    quiet_period_s: 0.5,
    unknown_app_grace_s: 1.5,
    crash_backoff: { immediate_restarts: 3, base_delay_s: BASE_DELAY_S, max_delay_s: 8, reset_after_s: 120 },
    rate_limit: { requests_per_s: 50, burst: 50 },
    election: { interval_ms: ELECTION_MS },
  };
  const hm = await startComponentProcess('health-manager', writeConfig('hm', hmConfig), { statusUser: STATUS.user, statusPassword: STATUS.password });
  t.context = { nats, cc, journal, stager, deas, bus, hm, hmConfig, requests, heartbeater, extraHms: [] };
  await hm.waitForLog((l) => l.msg === 'desired state loaded', 10_000);
  // Alone, it leads once it has listened for peers (election.ts).
  await hm.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('leading'), 10_000);
});

test.after.always(async (t) => {
  clearInterval(t.context.heartbeater);
  for (const h of t.context.extraHms ?? []) await h.kill();
  await t.context.hm?.kill();
  await t.context.cc?.kill();
  // dea-a answers dea.discover SLOW_DISCOVER_MS late, even to a placement already won by
  // another DEA: let such a reply go out before its connection closes.
  await new Promise((r) => setTimeout(r, SLOW_DISCOVER_MS + 100));
  for (const d of t.context.deas ?? []) await d.close();
  await t.context.stager?.close();
  await t.context.bus?.close();
  await t.context.nats?.stop();
});

// ---- helpers -------------------------------------------------------------------------------

async function pushAndStart(cc: Controller, name: string, instances: number): Promise<{ guid: string; version: string }> {
  const api = cc.admin;
  const app = (await api.post('/v3/apps', { name })).body;
  const pkg = (await api.post('/v3/packages', { type: 'bits', relationships: { app: { data: { guid: app.guid } } } })).body;
  const form = multipart({}, { field: 'bits', filename: 'app.zip', content: await zipOf({ 'server.js': `// ${name}` }) });
  await api.post(`/v3/packages/${pkg.guid}/upload`, form.body, { 'content-type': form.contentType });
  const created = (await api.post('/v3/builds', { package: { guid: pkg.guid } })).body;
  const build = await eventually(async () => {
    const b = (await api.get(`/v3/builds/${created.guid}`)).body;
    return b.state !== 'STAGING' && b;
  }, 15_000, `build of ${name}`);
  if (build.state !== 'STAGED') throw new Error(`staging ${name}: ${build.error}`);
  await api.patch(`/v3/apps/${app.guid}/relationships/current_droplet`, { data: { guid: build.droplet.guid } });
  await api.post(`/v3/processes/${app.guid}/actions/scale`, { instances });
  await api.post(`/v3/apps/${app.guid}/actions/start`);
  // The version is not in the v3 app resource; the bulk API the HM reads has it.
  const res = await fetch(`${cc.url}/bulk/apps/${app.guid}`, { headers: { authorization: `Basic ${Buffer.from(`${BULK.user}:${BULK.password}`).toString('base64')}` } });
  return { guid: app.guid, version: ((await res.json()) as { version: string }).version };
}

const running = (t: { context: Ctx }, appId: string) => t.context.deas.flatMap((d) => d.active(appId)).filter((i) => i.state === 'RUNNING');

/** Waits until every index of the app runs exactly once. */
async function allRunning(t: { context: Ctx }, appId: string, instances: number): Promise<PeerInstance[]> {
  return eventually(() => {
    const r = running(t, appId);
    const indices = r.map((i) => i.index).sort();
    return indices.length === instances && indices.every((ix, n) => ix === n) && r;
  }, 10_000, `${appId}: ${instances} instances running`);
}

function plant(dea: TestDea, over: Partial<PeerInstance> & Pick<PeerInstance, 'app_id' | 'index' | 'version'>): PeerInstance {
  const now = Date.now();
  const inst: PeerInstance = { instance_id: `planted-${now}-${Math.random().toString(16).slice(2, 8)}`, state: 'RUNNING', state_timestamp: now / 1000, started_at: now, ...over };
  dea.instances.set(inst.instance_id, inst);
  return inst;
}

function waitRequest(t: { context: Ctx }, what: string, pred: (r: HmRequest & { at: number }) => boolean, timeoutMs = 8000) {
  return eventually(() => t.context.requests.find(pred), timeoutMs, `hm request: ${what}`);
}

function waitStopped(t: { context: Ctx }, instanceId: string, timeoutMs = 8000) {
  return eventually(() => t.context.journal.stops().find((s) => s.stopped.includes(instanceId)), timeoutMs, `dea.stop reaching ${instanceId}`);
}

async function metricsText(t: { context: Ctx }): Promise<string> {
  const res = await fetch(t.context.hm.statusUrl('/metrics'), { headers: { authorization: t.context.hm.auth } });
  return res.text();
}

async function varzOf(hm: StartedComponent): Promise<Record<string, any>> {
  return (await (await fetch(hm.statusUrl('/varz'), { headers: { authorization: hm.auth } })).json()) as Record<string, any>;
}

/** The controller's audit events of an app, of one type. */
async function auditEvents(cc: Controller, appGuid: string, type: string): Promise<Array<Record<string, any>>> {
  const res = await cc.admin.get(`/v3/audit_events?target_guids=${appGuid}&types=${type}`);
  return res.body.resources as Array<Record<string, any>>;
}

// ---- the tests -----------------------------------------------------------------------------

test.serial('a bad config is one line naming the file, line and key, and exit 1', async (t) => {
  const file = join(scratchDir('hm-bad'), 'hm.yml');
  writeFileSync(file, `nats: {servers: ["nats://127.0.0.1:4222"], user: u, password: p}\nbulk_api: {url: "http://cc", user: hm}\n`);
  const res = await runCli(['component', 'health-manager', '--config', file]);
  t.is(res.code, 1);
  t.regex(res.stderr.trim(), /^ingot: hm\.yml:2 bulk_api\.password: required$/m);
});

test.serial('missing: an index no DEA reports is started again through the controller', async (t) => {
  const { cc, journal, deas, requests } = t.context;
  const app = await pushAndStart(cc, 'two', 2);
  await allRunning(t, app.guid, 2);
  const before = journal.starts(app.guid).length;
  const asked = requests.length;
  // Index 1 dies without a word: its DEA heartbeats only index 0 from now on.
  deas[0]!.crash(app.guid, 1);
  const req = await waitRequest(t, 'START index 1', (r) => r.app_id === app.guid && r.op === 'START');
  t.deepEqual({ ...req, at: 0 }, { op: 'START', app_id: app.guid, version: app.version, indices: [1], reason: 'missing', at: 0 });
  const started = await eventually(() => journal.starts(app.guid).slice(before).find((s) => s.msg.index === 1), 8000, 'dea.start for index 1');
  t.is(started.msg.version, app.version);
  await allRunning(t, app.guid, 2);
  t.false(requests.slice(asked).some((r) => r.app_id === app.guid && r.indices?.includes(0)), 'the running index is left alone');
  // The controller keeps what it carried out as the app's audit event.
  const [event, ...more] = await eventually(async () => {
    const e = await auditEvents(cc, app.guid, 'audit.app.process.hm_start');
    return e.length > 0 && e;
  }, 5000, 'the hm_start audit event');
  t.is(more.length, 0);
  t.like(event, { type: 'audit.app.process.hm_start', actor: { name: 'health_manager' }, target: { guid: app.guid, type: 'app', name: 'two' }, data: { index: 1, version: app.version, reason: 'missing' } });
  t.deepEqual(await auditEvents(cc, app.guid, 'audit.app.process.crash'), [], 'the types filter keeps other kinds out');
});

test.serial('crashes: three immediate restarts, then back-off; status says flapping; health counts', async (t) => {
  const { cc, bus, journal, deas, requests } = t.context;
  const app = await pushAndStart(cc, 'crashy', 1);
  await allRunning(t, app.guid, 1);
  const crashOnce = async (n: number): Promise<{ crashedAt: number; startAt: number }> => {
    const [inst] = await allRunning(t, app.guid, 1);
    const startsBefore = journal.starts(app.guid).length;
    const askedBefore = requests.length;
    deas[0]!.crash(app.guid, 0);
    const crashedAt = Date.now();
    bus.publish(subjects.dropletExited, { app_id: app.guid, version: app.version, instance_id: inst!.instance_id, index: 0, reason: 'CRASHED', exit_status: 1, exit_description: `crash ${n}` });
    if (n === 4) {
      // Past the immediate restarts: the index waits, and says so.
      const status = await eventually(async () => {
        const s = await bus.request(subjects.healthmanagerStatus, { app_id: app.guid }, replies.healthmanagerStatus, { timeoutMs: 2000 });
        return s.flapping.length > 0 && s;
      }, 3000, 'flapping in healthmanager.status');
      t.like(status.flapping[0], { index: 0, version: app.version, crash_count: 4 });
      t.true(status.flapping[0]!.next_restart_at! * 1000 >= crashedAt + BASE_DELAY_S * 1000 - 500);
      const health = await bus.request(subjects.healthmanagerHealth, { droplets: [{ app_id: app.guid }] }, replies.healthmanagerHealth, { timeoutMs: 2000 });
      t.like(health.droplets[0], { app_id: app.guid, version: app.version, desired: 1, running: 0, flapping: true });
    }
    const req = await waitRequest(t, `restart after crash ${n}`, (r) => r.app_id === app.guid && r.op === 'START' && requests.indexOf(r) >= askedBefore, 10_000);
    t.is(req.reason, 'crashed');
    await eventually(() => journal.starts(app.guid).length > startsBefore, 8000, `dea.start after crash ${n}`);
    return { crashedAt, startAt: req.at };
  };
  for (let n = 1; n <= 3; n++) {
    const { crashedAt, startAt } = await crashOnce(n);
    t.true(startAt - crashedAt < BASE_DELAY_S * 1000 - 500, `crash ${n} restarted at once (${startAt - crashedAt} ms)`);
  }
  const { crashedAt, startAt } = await crashOnce(4);
  t.true(startAt - crashedAt >= BASE_DELAY_S * 1000 - 100, `crash 4 waited the back-off (${startAt - crashedAt} ms)`);
  await allRunning(t, app.guid, 1);
  const health = await eventually(async () => {
    const h = await bus.request(subjects.healthmanagerHealth, { droplets: [{ app_id: app.guid }] }, replies.healthmanagerHealth, { timeoutMs: 2000 });
    return h.droplets[0]!.running === 1 && h;
  }, 3000, 'health counts the instance running again');
  t.like(health.droplets[0], { desired: 1, running: 1, flapping: true });
});

test.serial('extras: beyond the count, a duplicate, an old version, an unknown app and a stopped app are stopped', async (t) => {
  const { cc, deas } = t.context;
  const app = await pushAndStart(cc, 'extras', 2);
  await allRunning(t, app.guid, 2);
  const dea = deas[0]!;
  const beyond = plant(dea, { app_id: app.guid, index: 2, version: app.version });
  const duplicate = plant(dea, { app_id: app.guid, index: 0, version: app.version, state_timestamp: Date.now() / 1000 + 5 });
  const old = plant(dea, { app_id: app.guid, index: 1, version: 'an-old-version' });
  const ghost = plant(dea, { app_id: 'ghost-app', index: 0, version: 'v1' });
  const cases: Array<[PeerInstance, string]> = [[beyond, 'extra_index'], [duplicate, 'duplicate'], [old, 'old_version'], [ghost, 'unknown_app']];
  for (const [inst, reason] of cases) {
    const req = await waitRequest(t, `STOP ${reason}`, (r) => r.op === 'STOP' && !!r.instance_ids?.includes(inst.instance_id));
    t.like(req, { op: 'STOP', app_id: inst.app_id, version: inst.version, instance_ids: [inst.instance_id], reason });
    await waitStopped(t, inst.instance_id);
  }
  // The instances the app needs were never touched.
  t.is(running(t, app.guid).length, 2);
  const stops = await eventually(async () => {
    const e = await auditEvents(cc, app.guid, 'audit.app.process.hm_stop');
    return e.length >= 3 && e;
  }, 5000, 'hm_stop audit events');
  t.deepEqual(
    stops.map((e) => `${e.data.instance} ${e.data.reason}`).sort(),
    [`${beyond.instance_id} extra_index`, `${duplicate.instance_id} duplicate`, `${old.instance_id} old_version`].sort(),
  );

  // A stopped app's leftover.
  await cc.admin.post(`/v3/apps/${app.guid}/actions/stop`);
  await eventually(() => dea.active(app.guid).length === 0, 5000, 'the controller stops the app');
  const leftover = plant(dea, { app_id: app.guid, index: 0, version: app.version });
  const req = await waitRequest(t, 'STOP stopped_app', (r) => r.op === 'STOP' && !!r.instance_ids?.includes(leftover.instance_id));
  t.is(req.reason, 'stopped_app');
  await waitStopped(t, leftover.instance_id);
});

test.serial('evacuation: the index starts elsewhere at once, then the evacuating instance is stopped', async (t) => {
  const { cc, bus, journal, deas, nats } = t.context;
  const app = await pushAndStart(cc, 'evac', 2);
  await allRunning(t, app.guid, 2);
  // A second DEA joins; it answers discover first, so replacements land there.
  deas.push(await TestDea.start(nats, 'dea-b', journal, { runAfterMs: 100 }));
  const evacuating = deas[0]!.active(app.guid).find((i) => i.index === 1)!;
  const before = journal.starts(app.guid).length;
  evacuating.state = 'EVACUATING';
  bus.publish(subjects.dropletExited, { app_id: app.guid, version: app.version, instance_id: evacuating.instance_id, index: 1, reason: 'DEA_EVACUATION' });

  const start = await waitRequest(t, 'START evacuating', (r) => r.app_id === app.guid && r.op === 'START' && r.reason === 'evacuating');
  t.deepEqual(start.indices, [1]);
  const placed = await eventually(() => journal.starts(app.guid).slice(before).find((s) => s.msg.index === 1), 8000, 'replacement placed');
  t.is(placed.dea, 'dea-b', 'elsewhere');
  const stop = await waitRequest(t, 'STOP evacuated', (r) => r.app_id === app.guid && r.op === 'STOP' && r.reason === 'evacuated');
  t.deepEqual(stop.instance_ids, [evacuating.instance_id]);
  const replacementRunning = journal.events.find((e) => e.type === 'running' && e.app_id === app.guid && e.index === 1 && e.dea === 'dea-b');
  t.truthy(replacementRunning, 'the evacuating one is stopped only after the replacement runs');
  t.true(replacementRunning!.at <= stop.at);
  await waitStopped(t, evacuating.instance_id);
  const now = running(t, app.guid);
  t.deepEqual(now.map((i) => i.index).sort(), [0, 1]);
  t.is(deas[1]!.active(app.guid).length, 1);
});

test.serial('/varz and /metrics report apps, instances, flapping and requests by kind', async (t) => {
  const { hm } = t.context;
  const varz = (await (await fetch(hm.statusUrl('/varz'), { headers: { authorization: hm.auth } })).json()) as Record<string, any>;
  t.is(varz.type, 'health-manager');
  t.true(varz.apps >= 3, `apps ${varz.apps}`);
  t.true(varz.instances >= 5, `instances ${varz.instances}`);
  for (const kind of ['missing', 'crashed', 'evacuating', 'evacuated', 'extra_index', 'duplicate', 'old_version', 'unknown_app', 'stopped_app']) {
    t.true(varz.requests_sent[kind] >= 1, `requests_sent.${kind}`);
  }
  t.true(varz.intended.loaded);
  t.is(varz.config.bulk_api.password, '[redacted]');
  t.is(varz.leader, true, 'alone, it leads');
  t.deepEqual(varz.peers, []);
  t.is(varz.requests_withheld, 0);
  const lastAt = Date.parse(varz.last_analysis_at);
  t.true(Date.now() - lastAt < 5000 && Date.now() - lastAt >= 0, `last_analysis_at ${varz.last_analysis_at}`);
  t.is(new Date(lastAt).toISOString(), varz.last_analysis_at);
  t.true(typeof varz.last_analysis_ms === 'number' && varz.last_analysis_ms >= 0 && varz.last_analysis_ms < 1000, `last_analysis_ms ${varz.last_analysis_ms}`);
  const text = await metricsText(t);
  t.regex(text, /^ingot_health_manager_apps \d+$/m);
  t.regex(text, /^ingot_health_manager_instances_flapping \d+$/m);
  t.regex(text, /^ingot_health_manager_requests_sent_total\{kind="crashed"\} [1-9]\d*$/m);
  t.regex(text, /^ingot_health_manager_instances_missing \d+$/m);
  t.regex(text, /^ingot_health_manager_instances_crashed \d+$/m);
  t.regex(text, /^ingot_health_manager_leader 1$/m);
  t.regex(text, /^ingot_health_manager_peers 0$/m);
  const ts = Number(/^ingot_health_manager_last_analysis_timestamp_seconds (\S+)$/m.exec(text)?.[1]);
  t.true(Math.abs(Date.now() / 1000 - ts) < 5, `last analysis at ${ts}`);
  t.regex(text, /^ingot_health_manager_last_analysis_duration_seconds \d/m);
});

test.serial('two health managers: one leads and sends; the other watches, sends nothing, and takes over when the leader dies', async (t) => {
  const { cc, deas, requests, hmConfig } = t.context;
  const first = t.context.hm;
  // The second HM calls an index missing sooner than the first: it sees the crash first, so
  // only the election keeps it from asking.
  const second = await startComponentProcess('health-manager', writeConfig('hm2', { ...hmConfig, index: 1, heartbeat_timeout_s: FOLLOWER_TIMEOUT_S }), {
    statusUser: STATUS.user,
    statusPassword: STATUS.password,
  });
  t.context.extraHms.push(second);
  await second.waitForLog((l) => l.msg === 'desired state loaded', 10_000);
  // Each hears the other; the one watching longer (the first) leads.
  const [v1, v2] = await eventually(async () => {
    const vs = [await varzOf(first), await varzOf(second)];
    return vs.every((v) => v.peers.length === 1) && vs;
  }, 5000, 'the two HMs hear each other');
  t.is(v1!.leader, true);
  t.is(v2!.leader, false);
  t.is(v2!.leader_id, v1!.id);
  t.is(v1!.peers[0].id, v2!.id);

  // One missing index: exactly one START, from the leader.
  const app = await pushAndStart(cc, 'twice-watched', 2);
  await allRunning(t, app.guid, 2);
  const asked = requests.length;
  for (const d of deas) d.crash(app.guid, 1);
  await allRunning(t, app.guid, 2);
  // Watch a window: both HMs analyse at least a heartbeat timeout's worth of rounds more, so a
  // second START (the follower's, or the leader repeating itself) would have been sent.
  const roundsAfter = Math.ceil((HEARTBEAT_TIMEOUT_S / ANALYSIS_S) * 1.5);
  const base = await Promise.all([varzOf(first), varzOf(second)]);
  await eventually(async () => {
    const vs = await Promise.all([varzOf(first), varzOf(second)]);
    return vs.every((v, n) => v.rounds - base[n]!.rounds >= roundsAfter);
  }, 10_000, `${roundsAfter} more analysis rounds on both HMs`);
  const starts = requests.slice(asked).filter((r) => r.app_id === app.guid && r.op === 'START');
  t.is(starts.length, 1, JSON.stringify(starts));
  t.deepEqual(starts[0]!.indices, [1]);
  t.true(first.logs.some((l) => l.msg === 'hm request sent' && l.app_id === app.guid), 'the leader sent it');
  t.false(second.logs.some((l) => l.msg === 'hm request sent'), 'the follower never sends');
  const follower = await varzOf(second);
  t.is(Object.values(follower.requests_sent as Record<string, number>).reduce((a, b) => a + b, 0), 0);
  t.true(follower.requests_withheld > 0, 'the follower found the missing index first, and held back');

  // The leader dies: the follower takes over and heals the next missing index.
  await first.kill();
  const took = await eventually(async () => {
    const v = await varzOf(second);
    return v.leader === true && v;
  }, 5000, 'the second HM leads');
  t.deepEqual(took.peers, []);
  const askedBefore = requests.length;
  for (const d of deas) d.crash(app.guid, 0);
  const req = await waitRequest(t, 'START index 0 from the new leader', (r) => r.app_id === app.guid && r.op === 'START' && requests.indexOf(r) >= askedBefore);
  t.like(req, { indices: [0], reason: 'missing' });
  t.true(second.logs.some((l) => l.msg === 'hm request sent' && l.app_id === app.guid && l.op === 'START'));
  await allRunning(t, app.guid, 2);
});

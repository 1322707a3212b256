// The health manager's state keeping: the intended state (bulk walk, re-reads, merging, a
// real HTTP server speaking the bulk API), the real state (heartbeats, exits, pruning), the
// memory of what was asked, the config and the status/health answers.
import test from 'ava';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig, ConfigError } from '../../kernel/component/mod.ts';
import { healthmanagerHealthReply, healthmanagerStatusReply } from '../../kernel/bus/mod.ts';
import { analyze } from '../../kernel/health-manager/analysis.ts';
import { healthReply, statusReply } from '../../kernel/health-manager/answers.ts';
import { AskedMemory } from '../../kernel/health-manager/asked.ts';
import { analysisPolicy, hmConfig } from '../../kernel/health-manager/config.ts';
import { HmError } from '../../kernel/health-manager/errors.ts';
import { BulkClient, IntendedState, type BulkApp, type DesiredStateSource } from '../../kernel/health-manager/intended-state.ts';
import { RealState } from '../../kernel/health-manager/real-state.ts';
import { crashKey, startKey, type BackoffPolicy } from '../../kernel/health-manager/types.ts';

const S = 1000;
const backoff: BackoffPolicy = { immediate_restarts: 3, base_delay_ms: 30 * S, max_delay_ms: 960 * S, reset_after_ms: 300 * S };
const bulkApp = (id: string, over: Partial<BulkApp> = {}): BulkApp => ({ id, name: id, version: 'v1', instances: 1, state: 'STARTED', package_state: 'STAGED', ...over });

/** A desired-state source whose reads can be held, to order them by hand. */
class FakeSource implements DesiredStateSource {
  apps = new Map<string, BulkApp>();
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  reads = 0;
  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open?.();
    this.gate = undefined;
  }
  async all(): Promise<BulkApp[]> {
    const snapshot = [...this.apps.values()].filter((a) => a.state === 'STARTED');
    await this.gate;
    return snapshot;
  }
  async one(id: string): Promise<BulkApp | undefined> {
    this.reads++;
    const a = this.apps.get(id);
    await this.gate;
    return a && { ...a };
  }
}

class Clock {
  constructor(public t = 1_000_000) {}
  now = (): number => this.t;
}

// ---- intended state ----------------------------------------------------------------------

test('intended: the first load knows every started app and marks none as changed', async (t) => {
  const src = new FakeSource();
  src.apps.set('a', bulkApp('a'));
  src.apps.set('b', bulkApp('b', { state: 'STOPPED' }));
  const clock = new Clock();
  const st = new IntendedState(src, clock.now);
  t.false(st.loaded);
  await st.loadAll();
  const snap = st.snapshot();
  t.deepEqual([...snap.apps.keys()], ['a']);
  t.is(snap.apps.get('a')?.changed_at, undefined);
  t.is(snap.loaded_at, clock.t);
});

test('intended: droplet.updated starts the quiet period at once and re-reads; a deleted app is forgotten', async (t) => {
  const src = new FakeSource();
  src.apps.set('a', bulkApp('a'));
  const clock = new Clock();
  const st = new IntendedState(src, clock.now);
  await st.loadAll();
  src.apps.set('a', bulkApp('a', { instances: 3, version: 'v2' }));
  clock.t += 10;
  const p = st.changed('a');
  await p;
  t.like(st.snapshot().apps.get('a'), { instances: 3, version: 'v2', changed_at: clock.t });
  src.apps.delete('a');
  await st.changed('a');
  t.false(st.has('a'));
});

test('intended: a later load never undoes a fresher single read, and forgets apps no longer started', async (t) => {
  const src = new FakeSource();
  src.apps.set('a', bulkApp('a', { version: 'v1' }));
  src.apps.set('b', bulkApp('b'));
  const clock = new Clock();
  const st = new IntendedState(src, clock.now);
  await st.loadAll();
  // A full walk reads v1 of a, then a is restarted (v2) and re-read before the walk lands.
  src.apps.delete('b');
  src.hold();
  clock.t += 10;
  const walk = st.loadAll();
  src.apps.set('a', bulkApp('a', { version: 'v2' }));
  src.release();
  clock.t += 10;
  await st.refresh('a');
  await walk;
  t.is(st.snapshot().apps.get('a')?.version, 'v2');
  t.false(st.has('b'), 'the walk found b gone');
});

test('intended: a change nobody announced, found by a reload, earns the quiet period; a new app too', async (t) => {
  const src = new FakeSource();
  src.apps.set('a', bulkApp('a'));
  const clock = new Clock();
  const st = new IntendedState(src, clock.now);
  await st.loadAll();
  src.apps.set('a', bulkApp('a', { instances: 2 }));
  src.apps.set('n', bulkApp('n'));
  clock.t += 5000;
  await st.loadAll();
  t.is(st.snapshot().apps.get('a')?.changed_at, clock.t);
  t.is(st.snapshot().apps.get('n')?.changed_at, clock.t);
  t.is(st.snapshot().loaded_at, 1_000_000, 'loaded_at is the first complete load');
});

test('intended: reads of one app never overlap; a request meanwhile reads once more after', async (t) => {
  const src = new FakeSource();
  src.apps.set('a', bulkApp('a', { version: 'v1' }));
  const st = new IntendedState(src, new Clock().now);
  src.hold();
  const first = st.refresh('a');
  src.apps.set('a', bulkApp('a', { version: 'v2' }));
  const second = st.refresh('a');
  const third = st.refresh('a');
  src.release();
  await Promise.all([first, second, third]);
  t.is(src.reads, 2);
  t.is(st.snapshot().apps.get('a')?.version, 'v2');
});

test('intended: a failed load keeps what was known and says why', async (t) => {
  const src = new FakeSource();
  src.apps.set('a', bulkApp('a'));
  const st = new IntendedState(src, new Clock().now);
  await st.loadAll();
  src.all = async () => {
    throw new HmError('bulk_request_failed', 'Loading the desired state from http://cc: connection refused');
  };
  await t.throwsAsync(st.loadAll(), { instanceOf: HmError });
  t.true(st.has('a'));
  t.is(st.counts.full_load_failures, 1);
  t.regex(st.lastError ?? '', /connection refused/);
});

// ---- the bulk API client, against a real HTTP server ---------------------------------------

async function bulkServer(t: { teardown(fn: () => void): void }, apps: BulkApp[], opts: { user?: string; password?: string; garble?: boolean } = {}) {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(req.url ?? '');
    const expected = `Basic ${Buffer.from(`${opts.user ?? 'hm'}:${opts.password ?? 'pw'}`).toString('base64')}`;
    if (req.headers.authorization !== expected) {
      res.writeHead(401).end('{"errors":[]}');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const one = /^\/bulk\/apps\/(.+)$/.exec(url.pathname);
    if (one) {
      const app = apps.find((a) => a.id === decodeURIComponent(one[1]!));
      if (!app) return void res.writeHead(404).end('{}');
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(opts.garble ? { id: 1 } : app));
    }
    const size = Number(url.searchParams.get('batch_size'));
    const after = (JSON.parse(url.searchParams.get('bulk_token') ?? '{}') as { id?: string }).id ?? '';
    const page = apps.filter((a) => a.state === 'STARTED' && a.id > after).sort((a, b) => (a.id < b.id ? -1 : 1)).slice(0, size);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ results: Object.fromEntries(page.map((a) => [a.id, { ...a, memory: 256, disk: 1024, updated_at: '2024-01-01T00:00:00Z' }])), bulk_token: { id: page.at(-1)?.id ?? after } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

/** A port nothing listens on (any more). */
async function freedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

test('bulk client: walks every page with the token, reads one app, 404 is "deleted"', async (t) => {
  const apps = ['a', 'b', 'c', 'd', 'e'].map((id) => bulkApp(id));
  apps.push(bulkApp('s', { state: 'STOPPED' }));
  const srv = await bulkServer(t, apps);
  const client = new BulkClient({ urls: [`${srv.url}/`], user: 'hm', password: 'pw', batchSize: 2, timeoutMs: 2000 });
  t.deepEqual((await client.all()).map((a) => a.id), ['a', 'b', 'c', 'd', 'e']);
  t.is(srv.seen.length, 4, 'three pages and the empty one that ends the walk');
  t.is(srv.seen[0], `/bulk/apps?batch_size=2&bulk_token=${encodeURIComponent('{}')}`);
  t.is(srv.seen[1], `/bulk/apps?batch_size=2&bulk_token=${encodeURIComponent('{"id":"b"}')}`);
  t.like(await client.one('s'), { id: 's', state: 'STOPPED' });
  t.is(await client.one('gone'), undefined);
});

test('bulk client: a wrong credential, a bad reply and an unreachable controller are sentences', async (t) => {
  const srv = await bulkServer(t, [bulkApp('a')], { garble: true });
  const wrong = new BulkClient({ urls: [srv.url], user: 'hm', password: 'nope', batchSize: 10, timeoutMs: 2000 });
  const e1 = await t.throwsAsync(wrong.all(), { instanceOf: HmError });
  t.is((e1 as HmError).code, 'bulk_unauthorized');
  t.regex(e1!.message, /^Loading the desired state from http:\/\/127\.0\.0\.1:\d+: HTTP 401; check bulk_api\.user/);
  const garbled = new BulkClient({ urls: [srv.url], user: 'hm', password: 'pw', batchSize: 10, timeoutMs: 2000 });
  const e2 = await t.throwsAsync(garbled.one('a'), { instanceOf: HmError });
  t.is((e2 as HmError).code, 'bulk_invalid_reply');
  const closed = await freedPort();
  const down = new BulkClient({ urls: [`http://127.0.0.1:${closed}`], user: 'hm', password: 'pw', batchSize: 10, timeoutMs: 2000 });
  const e3 = await t.throwsAsync(down.all(), { instanceOf: HmError });
  t.is((e3 as HmError).code, 'bulk_request_failed');
  t.regex(e3!.message, new RegExp(`^Loading the desired state from http://127\\.0\\.0\\.1:${closed}: .*ECONNREFUSED`));
});

test('bulk client: controllers sharing a database are tried in turn; the one that answered is asked first after', async (t) => {
  const srv = await bulkServer(t, [bulkApp('a'), bulkApp('b')]);
  const closed = await freedPort();
  const client = new BulkClient({ urls: [`http://127.0.0.1:${closed}`, srv.url], user: 'hm', password: 'pw', batchSize: 1, timeoutMs: 2000 });
  t.deepEqual((await client.all()).map((a) => a.id), ['a', 'b']);
  t.is(srv.seen.length, 3, 'every page from the controller that answers');
  t.like(await client.one('b'), { id: 'b' });
  t.is(srv.seen.length, 4);
  // Every controller down: the last one's failure, a sentence naming it.
  const none = new BulkClient({ urls: [`http://127.0.0.1:${closed}`, `http://127.0.0.1:${closed}/`], user: 'hm', password: 'pw', batchSize: 1, timeoutMs: 2000 });
  const e = await t.throwsAsync(none.all(), { instanceOf: HmError });
  t.regex(e!.message, /ECONNREFUSED/);
  // A refused credential is not a reason to ask another controller.
  const wrong = new BulkClient({ urls: [srv.url, `http://127.0.0.1:${closed}`], user: 'hm', password: 'nope', batchSize: 1, timeoutMs: 2000 });
  t.is(((await t.throwsAsync(wrong.all(), { instanceOf: HmError })) as HmError).code, 'bulk_unauthorized');
});

// ---- real state --------------------------------------------------------------------------

const hbi = (id: string, over: Record<string, unknown> = {}) => ({ app_id: 'a', version: 'v1', instance_id: id, index: 0, state: 'RUNNING' as const, state_timestamp: 1, ...over });

test('real: heartbeats track first/last heard, running and evacuating since; exits STOPPED forget', (t) => {
  const r = new RealState(0, backoff);
  r.onHeartbeat({ dea_id: 'd', instances: [hbi('i1', { state: 'STARTING' })] }, 10);
  r.onHeartbeat({ dea_id: 'd', instances: [hbi('i1')] }, 20);
  r.onHeartbeat({ dea_id: 'd', instances: [hbi('i1')] }, 30);
  t.like(r.snapshot().instances[0], { first_heard_at: 10, heard_at: 30, active_heard_at: 30, running_since: 20, evacuating_since: undefined, dea_id: 'd' });
  r.onExited({ app_id: 'a', version: 'v1', instance_id: 'i1', index: 0, reason: 'DEA_EVACUATION' }, 40);
  t.like(r.snapshot().instances[0], { state: 'EVACUATING', evacuating_since: 40, running_since: 20 });
  r.onExited({ app_id: 'a', version: 'v1', instance_id: 'i1', index: 0, reason: 'STOPPED' }, 50);
  t.deepEqual(r.snapshot().instances, []);
});

test('real: an instance a DEA stops listing is forgotten; another DEA\'s are not', (t) => {
  const r = new RealState(0, backoff);
  r.onHeartbeat({ dea_id: 'd1', instances: [hbi('i1'), hbi('i2')] }, 10);
  r.onHeartbeat({ dea_id: 'd2', instances: [hbi('i3')] }, 10);
  r.onHeartbeat({ dea_id: 'd1', instances: [hbi('i2')] }, 20);
  t.deepEqual(r.snapshot().instances.map((i) => i.instance_id).sort(), ['i2', 'i3']);
});

test('real: prune forgets silent instances, crashes of unwanted versions, and crashes long over', (t) => {
  const r = new RealState(0, backoff);
  r.onHeartbeat({ dea_id: 'd', instances: [hbi('old')] }, 0);
  r.onExited({ app_id: 'a', version: 'v0', instance_id: 'x', index: 0, reason: 'CRASHED' }, 0);
  r.onExited({ app_id: 'a', version: 'v1', instance_id: 'y', index: 1, reason: 'CRASHED' }, 0);
  r.prune(50 * S, 90 * S, (_a, v) => v === 'v1');
  t.is(r.snapshot().crashes.size, 2, 'an unwanted version is kept a while (the HM may not have re-read the app)');
  r.prune(100 * S, 90 * S, (_a, v) => v === 'v1');
  t.deepEqual([...r.snapshot().crashes.keys()], [crashKey('a', 'v1', 1)]);
  t.deepEqual(r.snapshot().instances, [], 'every instance is unheard of for longer than 90 s');
  r.prune(2000 * S, 1e9, () => true);
  t.is(r.snapshot().crashes.size, 0, 'past the longest back-off and a reset period');
});

test('asked: records STARTs by index and STOPs by instance; prune keeps a START a crash record still needs', (t) => {
  const m = new AskedMemory();
  m.record({ op: 'START', app_id: 'a', version: 'v1', indices: [0, 2], reason: 'missing' }, 10);
  m.record({ op: 'STOP', app_id: 'a', version: 'v1', instance_ids: ['i9'], reason: 'duplicate' }, 10);
  t.deepEqual([...m.snapshot().starts.keys()], [startKey('a', 'v1', 0), startKey('a', 'v1', 2)]);
  m.prune(100, 50, (k) => k === startKey('a', 'v1', 2));
  t.deepEqual([...m.snapshot().starts.keys()], [startKey('a', 'v1', 2)]);
  t.is(m.snapshot().stops.size, 0);
});

// ---- config --------------------------------------------------------------------------------

const base = 'nats: {servers: ["nats://127.0.0.1:4222"], user: u, password: p}\n';

test('config: defaults, and the policy in milliseconds', (t) => {
  const c = parseConfig(`${base}bulk_api: {url: "http://cc:9022", user: hm, password: secret}\n`, 'hm.yml', hmConfig);
  t.like(c, { analysis_interval_s: 2, resync_interval_s: 60, heartbeat_timeout_s: 30, quiet_period_s: 5, unknown_app_grace_s: 60 });
  t.like(c.bulk_api, { urls: ['http://cc:9022'], batch_size: 500, timeout_s: 10, retry_interval_s: 5 });
  t.deepEqual(parseConfig(`${base}bulk_api: {urls: ["http://cc0:9022", "http://cc1:9022"], user: hm, password: secret}\n`, 'hm.yml', hmConfig).bulk_api.urls, ['http://cc0:9022', 'http://cc1:9022']);
  const both = t.throws(() => parseConfig(`${base}bulk_api: {url: "http://cc:9022", urls: ["http://cc1:9022"], user: hm, password: secret}\n`, 'hm.yml', hmConfig), { instanceOf: ConfigError });
  t.regex(both!.problems.join('\n'), /bulk_api: give url \(one controller\) or urls \(several\), not both or neither/);
  t.deepEqual(analysisPolicy(c), {
    heartbeat_timeout_ms: 30_000, quiet_period_ms: 5000, unknown_app_grace_ms: 60_000,
    backoff: { immediate_restarts: 3, base_delay_ms: 30_000, max_delay_ms: 960_000, reset_after_ms: 300_000 },
  });
});

test('config: every mistake at once, with file, line and key', (t) => {
  const text = `${base}bulk_api: {url: "not a url", user: hm}\nheartbeat_timeout_s: -1\nrate_limit: {burst: 0}\nextra: 1\n`;
  const err = t.throws(() => parseConfig(text, '/etc/hm.yml', hmConfig), { instanceOf: ConfigError });
  t.deepEqual(err!.problems, [
    'hm.yml:2 bulk_api.url: invalid url',
    'hm.yml:2 bulk_api.password: required',
    'hm.yml:3 heartbeat_timeout_s: number must be greater than 0',
    'hm.yml:4 rate_limit.burst: number must be greater than or equal to 1',
    'hm.yml:5: unknown key (extra)',
  ]);
  const crossed = `${base}bulk_api: {url: "http://cc", user: hm, password: pw}\nheartbeat_timeout_s: 2\nanalysis_interval_s: 2\ncrash_backoff: {base_delay_s: 60, max_delay_s: 30}\n`;
  const err2 = t.throws(() => parseConfig(crossed, 'hm.yml', hmConfig), { instanceOf: ConfigError });
  t.deepEqual(err2!.problems, [
    'hm.yml:5 crash_backoff.max_delay_s: must be at least base_delay_s (60)',
    'hm.yml:3 heartbeat_timeout_s: must be longer than analysis_interval_s (2)',
  ]);
});

// ---- status and health answers ------------------------------------------------------------

test('answers: crashed instances and flapping indices; running counts; both valid on the wire', (t) => {
  const policy = { heartbeat_timeout_ms: 30 * S, quiet_period_ms: 0, unknown_app_grace_ms: 60 * S, backoff };
  const now = 1_000_000 * S;
  const r = new RealState(now - 100 * S, backoff);
  r.onHeartbeat({ dea_id: 'd', instances: [hbi('i0', { index: 0 }), hbi('i1', { index: 1, state: 'EVACUATING' }), hbi('x', { index: 5 })] }, now);
  for (let n = 0; n < 5; n++) r.onExited({ app_id: 'a', version: 'v1', instance_id: `c${n}`, index: 2, reason: 'CRASHED', crash_timestamp: 900 + n }, now - (5 - n) * S);
  const apps = new Map([['a', { app_id: 'a', name: 'a', version: 'v1', instances: 3, state: 'STARTED' as const, package_state: 'STAGED', changed_at: undefined }]]);
  const real = r.snapshot();
  const analysis = analyze({ apps, loaded_at: now - 100 * S }, real, now, { asked: new AskedMemory().snapshot(), policy, budget: 100 });
  const round = { analysis, real, at: now, heartbeat_timeout_ms: policy.heartbeat_timeout_ms };

  const status = statusReply({ app_id: 'a' }, round);
  t.true(healthmanagerStatusReply.safeParse(status).success);
  t.is(status.version, 'v1');
  t.deepEqual(status.crashed.map((c) => [c.instance_id, c.index, c.since]), [0, 1, 2, 3, 4].map((n) => [`c${n}`, 2, 900 + n]));
  t.deepEqual(status.flapping, [{ index: 2, version: 'v1', crash_count: 5, since: now / 1000 - 5, next_restart_at: now / 1000 - 1 + 60 }]);
  t.deepEqual(statusReply({ app_id: 'a', state: 'FLAPPING' }, round).crashed, []);
  t.deepEqual(statusReply({ app_id: 'a', state: 'CRASHED' }, round).flapping, []);
  t.deepEqual(statusReply({ app_id: 'nobody' }, round), { app_id: 'nobody', crashed: [], flapping: [] });

  const health = healthReply({ droplets: [{ app_id: 'a' }, { app_id: 'a', version: 'v0' }, { app_id: 'nobody' }] }, round);
  t.true(healthmanagerHealthReply.safeParse(health).success);
  t.deepEqual(health.droplets, [
    { app_id: 'a', version: 'v1', desired: 3, running: 2, crashed: 5, flapping: true },
    { app_id: 'a', version: 'v0', desired: 0, running: 0, crashed: 0, flapping: false },
    { app_id: 'nobody', desired: 0, running: 0, crashed: 0, flapping: false },
  ]);
  t.deepEqual(healthReply({ droplets: [{ app_id: 'a' }] }, undefined).droplets, [{ app_id: 'a', desired: 0, running: 0, crashed: 0, flapping: false }]);
});

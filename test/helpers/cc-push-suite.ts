// A whole push against the cloud controller, started as a real process, with a test stager
// and two test DEAs that speak the real NATS protocol: create → upload → stage (signed URLs
// both ways) → start on a discovered DEA; scaling 1→3→1 (highest indices stopped); route
// changes reaching running instances; a rolling restart, one index at a time; the health
// managers' requests applied only when the controller agrees; droplet.updated on every
// change; the bulk endpoint; logs recent and live; and a controller restart that keeps
// everything (a build staging across it is FAILED with the reason).
// One suite, run by cc-push.test.ts on SQLite and by cc-push-postgres.test.ts on PostgreSQL.
import type { TestFn } from 'ava';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Bus, HmRequest, RouterRegister } from '../../kernel/bus/mod.ts';
import { subjects } from '../../kernel/bus/mod.ts';
import { INTERRUPTED } from '../../kernel/cloud-controller/staging.ts';
import { APPS_DOMAIN, ApiClient, BULK, multipart, startController, SYSTEM_DOMAIN, zipOf, type CcSuiteOptions, type Controller, type SuiteBlobstore } from './cc-controller.ts';
import { Journal, TestDea, TestStager, testBus } from './cc-peers.ts';
import { eventually } from './component-process.ts';
import { NatsServer } from './nats-server.ts';
import { scratchDir } from './tmp.ts';

export interface CcPushContext {
  nats: NatsServer;
  cc: Controller;
  journal: Journal;
  stager: TestStager;
  deas: TestDea[];
  bus: Bus;
  updated: Array<{ app_id: string; at: number }>;
  registers: Array<RouterRegister & { at: number }>;
  appsDomain: string;
  /** The app pushed by the first test, used by the ones after it. */
  web: { guid: string; droplet: string };
}

const instancesOf = (t: { context: CcPushContext }, appId: string) => t.context.deas.flatMap((d) => d.active(appId));

async function waitBuild(api: ApiClient, guid: string): Promise<any> {
  return eventually(async () => {
    const b = (await api.get(`/v3/builds/${guid}`)).body;
    return b.state !== 'STAGING' && b;
  }, 15_000, `build ${guid} done`);
}

/** create → upload → build → assign: an app ready to start. */
async function pushApp(api: ApiClient, name: string, files: Record<string, string> = { 'server.js': `// ${name}` }): Promise<{ app: any; build: any }> {
  const app = (await api.post('/v3/apps', { name })).body;
  const pkg = (await api.post('/v3/packages', { type: 'bits', relationships: { app: { data: { guid: app.guid } } } })).body;
  const form = multipart({}, { field: 'bits', filename: 'app.zip', content: await zipOf(files) });
  const up = await api.post(`/v3/packages/${pkg.guid}/upload`, form.body, { 'content-type': form.contentType });
  if (up.body.state !== 'READY') throw new Error(`upload: ${JSON.stringify(up.body)}`);
  const created = await api.post('/v3/builds', { package: { guid: pkg.guid } });
  const build = await waitBuild(api, created.body.guid);
  if (build.state === 'STAGED') await api.patch(`/v3/apps/${app.guid}/relationships/current_droplet`, { data: { guid: build.droplet.guid } });
  return { app, build };
}

function hm(t: { context: CcPushContext }, req: HmRequest): void {
  t.context.bus.publish(subjects.hmRequests, req);
}

async function currentVersion(t: { context: CcPushContext }, appId: string): Promise<string> {
  const res = await fetch(`${t.context.cc.url}/bulk/apps/${appId}`, { headers: { authorization: `Basic ${Buffer.from(`${BULK.user}:${BULK.password}`).toString('base64')}` } });
  return ((await res.json()) as { version: string }).version;
}

async function runningCount(t: { context: CcPushContext }, appId: string, version?: string): Promise<number> {
  return instancesOf(t, appId).filter((i) => i.state === 'RUNNING' && (!version || i.version === version)).length;
}

/** Registers the suite on `test`: its world before (the controller on `options.dbUrl()`), stopped after, and the cases. */
export function registerCcPushSuite(test: TestFn<CcPushContext>, options: CcSuiteOptions): void {
  /** Started before the context is complete: kept here so that after.always reaches it. */
  let blobstore: SuiteBlobstore | undefined;
  test.before(async (t) => {
    const nats = await NatsServer.start();
    const journal = new Journal();
    const stager = await TestStager.start(nats, journal);
    const deas = [await TestDea.start(nats, 'dea-a', journal), await TestDea.start(nats, 'dea-b', journal, { discoverDelayMs: 20 })];
    const bus = await testBus(nats);
    const updated: CcPushContext['updated'] = [];
    const registers: CcPushContext['registers'] = [];
    bus.subscribe(subjects.dropletUpdated, (m) => void updated.push({ app_id: m.app_id, at: Date.now() }));
    bus.subscribe(subjects.routerRegister, (m) => void registers.push({ ...m, at: Date.now() }));
    await bus.flush();
    blobstore = await options.blobstore?.(nats);
    const cc = await startController(nats, {
      rolling_instance_timeout_s: 10,
      db: { url: await options.dbUrl() },
      ...(blobstore ? { blobstore: blobstore.ccConfig(join(scratchDir('cc-scratch'), 'blobs')) } : {}),
    });
    const appsDomain = (await cc.admin.get(`/v3/domains?names=${APPS_DOMAIN}`)).body.resources[0].guid;
    t.context = { nats, cc, journal, stager, deas, bus, updated, registers, appsDomain, web: { guid: '', droplet: '' } };
  });

  test.after.always(async (t) => {
    await t.context.cc?.kill();
    for (const d of t.context.deas ?? []) await d.close();
    await t.context.stager?.close();
    await t.context.bus?.close();
    await blobstore?.kill();
    await t.context.nats?.stop();
  });

  test.serial('registers api.<system_domain> with the routers, again at the interval router.start announces', async (t) => {
    const { registers, bus, cc } = t.context;
    const mine = () => registers.filter((r) => r.uris.includes(`api.${SYSTEM_DOMAIN}`));
    const first = await eventually(() => mine()[0], 10_000, 'api route registered');
    t.is(first.port, cc.port);
    t.is(first.host, '127.0.0.1');
    const before = mine().length;
    bus.publish(subjects.routerStart, { id: 'router-test', hosts: ['127.0.0.1'], minimum_register_interval_s: 0.2 });
    await eventually(() => mine().length >= before + 4, 5000, 'registrations at the announced interval');
    bus.publish(subjects.routerStart, { id: 'router-test', hosts: ['127.0.0.1'], minimum_register_interval_s: 60 });
    t.pass();
  });

  test.serial('push: upload, stage with signed URLs on a stager, assign the droplet, start on a discovered DEA', async (t) => {
    const { cc, journal, stager, appsDomain, updated } = t.context;
    const api = cc.admin;
    const files = { 'server.js': 'require("http").createServer().listen(process.env.PORT)', 'package.json': '{"name":"web"}' };
    const app = (await api.post('/v3/apps', { name: 'web', environment_variables: { MODE: 'test' } })).body;
    const route = (await api.post('/v3/routes', { host: 'web', relationships: { domain: { data: { guid: appsDomain } } } })).body;
    await api.post(`/v3/routes/${route.guid}/destinations`, { destinations: [{ app: { guid: app.guid } }] });
    const pkg = (await api.post('/v3/packages', { type: 'bits', relationships: { app: { data: { guid: app.guid } } } })).body;
    const zip = await zipOf(files);
    const form = multipart({}, { field: 'bits', filename: 'app.zip', content: zip });
    t.is((await api.post(`/v3/packages/${pkg.guid}/upload`, form.body, { 'content-type': form.contentType })).body.state, 'READY');

    const created = await api.post('/v3/builds', { package: { guid: pkg.guid } });
    t.is(created.status, 201);
    t.is(created.body.state, 'STAGING');
    const build = await waitBuild(api, created.body.guid);
    t.is(build.state, 'STAGED', String(build.error));
    const req = stager.requests.at(-1)!;
    t.is(req.build_id, build.guid);
    t.is(req.app_id, app.guid);
    t.regex(req.package_uri, new RegExp(`^${cc.url}/internal/v3/packages/${pkg.guid}/download\\?expires=\\d+&signature=[0-9a-f]{64}$`));
    t.regex(req.droplet_upload_uri, new RegExp(`^${cc.url}/internal/v3/droplets/${build.droplet.guid}/upload\\?expires=\\d+&signature=`));
    t.is(req.package_sha256, createHash('sha256').update(zip).digest('hex'));
    t.deepEqual(req.env, { MODE: 'test' });
    t.deepEqual(req.limits, { memory_mb: 1024, disk_mb: 4096 });
    t.is(req.stack, 'bookworm');
    t.is(journal.events.find((e) => e.type === 'staging')?.type, 'staging');
    t.is(stager.uploads.at(-1)?.status, 201);
    // A signature is bound to its path and method: the package URL's cannot upload a droplet.
    const forged = `${req.droplet_upload_uri.split('?')[0]}?${req.package_uri.split('?')[1]}`;
    t.is((await fetch(forged, { method: 'PUT', body: 'x' })).status, 403);

    const droplet = (await api.get(`/v3/droplets/${build.droplet.guid}`)).body;
    t.is(droplet.state, 'STAGED');
    t.deepEqual(droplet.process_types, { web: 'node server.js' });
    t.is(droplet.buildpacks[0].name, 'test-buildpack');
    t.regex(droplet.checksum.value, /^[0-9a-f]{64}$/);
    t.is((await api.get(`/v3/builds?app_guids=${app.guid}&states=STAGED`)).body.pagination.total_results, 1);
    const assigned = await api.patch(`/v3/apps/${app.guid}/relationships/current_droplet`, { data: { guid: droplet.guid } });
    t.deepEqual(assigned.body.data, { guid: droplet.guid });
    t.is((await api.get(`/v3/apps/${app.guid}/droplets/current`)).body.guid, droplet.guid);

    const updatesBefore = updated.filter((u) => u.app_id === app.guid).length;
    const started = await api.post(`/v3/apps/${app.guid}/actions/start`);
    t.is(started.status, 200);
    t.is(started.body.state, 'STARTED');
    const start = await eventually(() => journal.starts(app.guid)[0], 10_000, 'dea.start');
    t.is(start.dea, 'dea-a', 'the first DEA to answer discover wins');
    t.true(start.droplet_ok, 'the DEA fetched the droplet from its signed URL and its sha256 matched');
    t.like(start.msg, {
      app_id: app.guid,
      name: 'web',
      index: 0,
      droplet_sha256: droplet.checksum.value,
      uris: [`web.${APPS_DOMAIN}`],
      limits: { memory_mb: 256, disk_mb: 1024 },
      env: { MODE: 'test' },
      services: [],
      health_check: { type: 'port' },
      start_command: 'node server.js',
      stack: 'bookworm',
    });
    t.is(start.msg.version, await currentVersion(t, app.guid));
    await eventually(() => updated.filter((u) => u.app_id === app.guid).length > updatesBefore, 5000, 'droplet.updated');
    t.is((await api.post(`/v3/apps/${app.guid}/actions/start`)).body.state, 'STARTED', 'starting a started app changes nothing');

    await eventually(async () => (await runningCount(t, app.guid)) === 1, 5000, 'running');
    const stats = await api.get(`/v3/processes/${app.guid}/stats`);
    t.is(stats.body.resources.length, 1);
    t.like(stats.body.resources[0], { type: 'web', index: 0, state: 'RUNNING', host: '127.0.0.1', port: 61000, usage: { cpu: 0.125, mem: 50 * 1024 * 1024 } });
    t.true(stats.body.resources[0].uptime >= 0);
    Object.assign(t.context.web, { guid: app.guid, droplet: droplet.guid }); // the context object is shallow-copied per test
  });

  test.serial('scaling 1→3 starts indices 1 and 2; 3→1 stops the highest', async (t) => {
    const { cc, journal, updated, web } = t.context;
    const version = await currentVersion(t, web.guid);
    const mark = journal.events.length;
    const updates = updated.length;
    const up = await cc.admin.post(`/v3/apps/${web.guid}/processes/web/actions/scale`, { instances: 3 });
    t.is(up.status, 202);
    t.is(up.body.instances, 3);
    await eventually(() => journal.starts(web.guid).filter((s) => journal.events.indexOf(s) >= mark).length === 2, 10_000, 'two starts');
    const starts = journal.starts(web.guid).filter((s) => journal.events.indexOf(s) >= mark);
    t.deepEqual(starts.map((s) => s.msg.index).sort(), [1, 2]);
    t.true(starts.every((s) => s.msg.version === version), 'scaling keeps the version');
    await eventually(() => updated.length > updates, 5000, 'droplet.updated after scale');
    await eventually(async () => (await runningCount(t, web.guid)) === 3, 5000, 'three running');
    t.is((await cc.admin.get(`/v3/processes/${web.guid}/stats`)).body.resources.filter((r: any) => r.state === 'RUNNING').length, 3);

    const markDown = journal.events.length;
    await cc.admin.post(`/v3/processes/${web.guid}/actions/scale`, { instances: 1 });
    const stop = await eventually(() => journal.stops(web.guid).find((s) => journal.events.indexOf(s) >= markDown && s.msg.indices !== undefined), 5000, 'dea.stop');
    t.deepEqual(stop.msg, { app_id: web.guid, indices: [1, 2] });
    await eventually(() => instancesOf(t, web.guid).length === 1, 5000, 'one left');
    t.is(instancesOf(t, web.guid)[0]!.index, 0);
    t.is(journal.starts(web.guid).filter((s) => journal.events.indexOf(s) >= markDown).length, 0, 'scaling down starts nothing');
  });

  test.serial('mapping and unmapping routes of a started app reach its instances (dea.update)', async (t) => {
    const { cc, journal, appsDomain, web } = t.context;
    const route = (await cc.admin.post('/v3/routes', { host: 'web2', relationships: { domain: { data: { guid: appsDomain } } } })).body;
    const mark = journal.events.length;
    await cc.admin.post(`/v3/routes/${route.guid}/destinations`, { destinations: [{ app: { guid: web.guid } }] });
    // Every DEA journals each dea.update: look for the content, not merely the next entry.
    const update = await eventually(() => journal.updates(web.guid).find((u) => journal.events.indexOf(u) >= mark && u.uris.length === 2), 5000, 'dea.update');
    t.deepEqual(update.uris, [`web.${APPS_DOMAIN}`, `web2.${APPS_DOMAIN}`]);
    const mark2 = journal.events.length;
    await cc.admin.del(`/v3/routes/${route.guid}`);
    const after = await eventually(() => journal.updates(web.guid).find((u) => journal.events.indexOf(u) >= mark2 && u.uris.length === 1), 5000, 'dea.update after delete');
    t.deepEqual(after.uris, [`web.${APPS_DOMAIN}`]);
  });

  test.serial('a rolling restart replaces one index at a time, the next only once the new one runs', async (t) => {
    const { cc, journal, web } = t.context;
    await cc.admin.post(`/v3/processes/${web.guid}/actions/scale`, { instances: 3 });
    await eventually(async () => (await runningCount(t, web.guid)) === 3, 10_000, 'three running');
    const from = await currentVersion(t, web.guid);
    const mark = journal.events.length;
    const res = await cc.admin.post(`/v3/apps/${web.guid}/actions/restart`, { strategy: 'rolling' });
    t.is(res.status, 200);
    const to = await currentVersion(t, web.guid);
    t.not(to, from, 'a restart is a new version');
    t.is((await cc.admin.post(`/v3/apps/${web.guid}/actions/restart`, {})).status, 409, 'no second restart while rolling');
    t.is((await cc.admin.post(`/v3/processes/${web.guid}/actions/scale`, { instances: 4 })).status, 409, 'no scaling while rolling');
    hm(t, { op: 'STOP', app_id: web.guid, version: from, indices: [2], reason: 'stale version' });
    await cc.proc.waitForLog((l) => l.msg === 'hm request refused' && l.app_id === web.guid && l.version === from && String(l.refused).includes('rolling'), 5000);

    await eventually(() => journal.stops(web.guid).some((s) => journal.events.indexOf(s) >= mark && s.msg.indices?.[0] === 2), 20_000, 'last index replaced');
    const events = journal.since(mark);
    const at = (pred: (e: (typeof events)[number]) => boolean, what: string) => {
      const i = events.findIndex(pred);
      if (i < 0) throw new Error(`${what} not in the journal`);
      return i;
    };
    let previousStop = -1;
    for (const index of [0, 1, 2]) {
      const start = at((e) => e.type === 'start' && e.msg.app_id === web.guid && e.msg.index === index && e.msg.version === to, `start ${index}`);
      const running = at((e) => e.type === 'running' && e.app_id === web.guid && e.index === index && e.version === to, `running ${index}`);
      const stop = at((e) => e.type === 'stop' && e.msg.app_id === web.guid && e.msg.version === from && e.msg.indices?.length === 1 && e.msg.indices[0] === index, `stop ${index}`);
      t.true(previousStop < start, `index ${index} starts only after index ${index - 1}'s old instance was stopped`);
      t.true(start < running && running < stop, `index ${index}: start, running, then the old one stops`);
      previousStop = stop;
    }
    t.is(events.filter((e) => e.type === 'start').length, 3);
    await eventually(async () => (await runningCount(t, web.guid, to)) === 3 && instancesOf(t, web.guid).length === 3, 5000, 'three new instances only');
    // The rollout is over (it says so in the app's log): the app is the HMs' again.
    await eventually(async () => ((await cc.admin.get(`/v3/apps/${web.guid}/logs/recent`)).body.resources as Array<{ line: string }>).some((l) => /Rolling restart of web finished/.test(l.line)), 5000, 'rollout finished');
  });

  test.serial('hm requests are carried out only while the controller agrees', async (t) => {
    const { cc, journal, deas, web } = t.context;
    const version = await currentVersion(t, web.guid);
    deas.forEach((d) => d.crash(web.guid, 1));
    const mark = journal.events.length;

    hm(t, { op: 'START', app_id: web.guid, version: 'stale-version', indices: [1], reason: 'missing' });
    await cc.proc.waitForLog((l) => l.msg === 'hm request refused' && l.version === 'stale-version');
    hm(t, { op: 'START', app_id: web.guid, version, indices: [7], reason: 'missing' });
    await cc.proc.waitForLog((l) => l.msg === 'hm request refused' && l.op === 'START' && String(l.refused).includes('beyond'));
    await eventually(async () => {
      hm(t, { op: 'START', app_id: web.guid, version, indices: [1], reason: 'missing' });
      return eventually(() => journal.starts(web.guid).find((s) => journal.events.indexOf(s) >= mark), 1500, 'hm start');
    }, 10_000, 'an agreed START');
    const starts = journal.starts(web.guid).filter((s) => journal.events.indexOf(s) >= mark);
    t.true(starts.every((s) => s.msg.index === 1 && s.msg.version === version), 'only the agreed index was started');

    hm(t, { op: 'STOP', app_id: web.guid, version, indices: [0], reason: 'extra?' });
    await cc.proc.waitForLog((l) => l.msg === 'hm request refused' && l.op === 'STOP' && String(l.refused).includes('within'));
    const markStop = journal.events.length;
    hm(t, { op: 'STOP', app_id: web.guid, version: 'older-version', indices: [0], reason: 'stale' });
    const stale = await eventually(() => journal.stops(web.guid).find((s) => journal.events.indexOf(s) >= markStop && s.msg.version === 'older-version'), 5000, 'stop of a stale version');
    t.deepEqual(stale.msg, { app_id: web.guid, version: 'older-version', indices: [0] });

    // A duplicate of index 0 (as an evacuation leaves): STOP by instance id is agreed for it,
    // refused for the only instance of index 2.
    await eventually(async () => (await runningCount(t, web.guid, version)) === 3, 5000, 'three running');
    const dup = { instance_id: 'evacuating-0', app_id: web.guid, index: 0, version, state: 'EVACUATING' as const, state_timestamp: Date.now() / 1000, started_at: Date.now() };
    deas[1]!.instances.set(dup.instance_id, dup);
    const only2 = instancesOf(t, web.guid).find((i) => i.index === 2)!;
    hm(t, { op: 'STOP', app_id: web.guid, version, instance_ids: [only2.instance_id], reason: 'duplicate?' });
    await cc.proc.waitForLog((l) => l.msg === 'hm request refused' && l.op === 'STOP' && String(l.refused).includes('still needs'));
    const markDup = journal.events.length;
    hm(t, { op: 'STOP', app_id: web.guid, version, instance_ids: ['evacuating-0'], reason: 'duplicate' });
    const dupStop = await eventually(() => journal.stops(web.guid).find((s) => journal.events.indexOf(s) >= markDup && s.msg.instance_ids !== undefined), 5000, 'stop of the duplicate');
    t.deepEqual(dupStop.msg, { app_id: web.guid, instance_ids: ['evacuating-0'] });
    t.is(instancesOf(t, web.guid).length, 3);
  });

  test.serial('the bulk endpoint pages through every started app’s desired state', async (t) => {
    const { cc, web } = t.context;
    const { app: other } = await pushApp(cc.admin, 'other');
    await cc.admin.post(`/v3/apps/${other.guid}/actions/start`);
    const auth = { authorization: `Basic ${Buffer.from(`${BULK.user}:${BULK.password}`).toString('base64')}` };
    const seen: Record<string, any> = {};
    let token = '{}';
    for (let page = 0; page < 5; page++) {
      const res = await fetch(`${cc.url}/bulk/apps?batch_size=1&bulk_token=${encodeURIComponent(token)}`, { headers: auth });
      const body = (await res.json()) as { results: Record<string, any>; bulk_token: { id: string } };
      if (Object.keys(body.results).length === 0) break;
      t.is(Object.keys(body.results).length, 1);
      Object.assign(seen, body.results);
      token = JSON.stringify(body.bulk_token);
    }
    t.deepEqual(Object.keys(seen).sort(), [web.guid, other.guid].sort());
    t.like(seen[web.guid], { id: web.guid, name: 'web', instances: 3, state: 'STARTED', package_state: 'STAGED', memory: 256, disk: 1024 });
    t.is(seen[web.guid].version, await currentVersion(t, web.guid));
    t.like(seen[other.guid], { instances: 1, state: 'STARTED', package_state: 'STAGED' });
  });

  test.serial('logs: the recent lines of an app, and a live stream', async (t) => {
    const { cc, bus, web } = t.context;
    for (let i = 1; i <= 3; i++) bus.publish(subjects.logs(web.guid), { app_id: web.guid, source: 'APP', index: 0, stream: 'out', timestamp: Date.now(), line: `hello ${i}` });
    const recent = await eventually(async () => {
      const r = (await cc.admin.get(`/v3/apps/${web.guid}/logs/recent`)).body.resources as Array<{ line: string; source: string }>;
      return r.some((l) => l.line === 'hello 3') && r;
    }, 5000, 'recent lines');
    t.deepEqual(recent.filter((l) => l.source === 'APP').map((l) => l.line).slice(-3), ['hello 1', 'hello 2', 'hello 3']);
    t.true(recent.some((l) => l.source === 'API' && /Starting app web/.test(l.line)), 'the controller logs its own actions');
    t.is((await cc.admin.get(`/v3/apps/${web.guid}/logs/recent?limit=2`)).body.resources.length, 2);
    t.is((await cc.anonymous.get(`/v3/apps/${web.guid}/logs/recent`)).status, 401);
    t.is((await fetch(`${cc.url}/v3/apps/${web.guid}/logs/stream`)).status, 401);

    const abort = new AbortController();
    const res = await fetch(`${cc.url}/v3/apps/${web.guid}/logs/stream?recent=1`, { headers: { authorization: `bearer ${cc.admin.token}` }, signal: abort.signal });
    t.is(res.status, 200);
    t.regex(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const readUntil = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${pattern}`);
        text += Buffer.from(value).toString();
      }
    };
    await readUntil(/: connected/);
    t.regex(text, /hello 3/, 'the recent line first');
    bus.publish(subjects.logs(web.guid), { app_id: web.guid, source: 'APP', index: 1, stream: 'err', timestamp: Date.now(), line: 'live line' });
    await readUntil(/live line/);
    const event = text.split('\n\n').find((e) => e.includes('live line'))!;
    t.regex(event, /^event: log\ndata: /);
    t.like(JSON.parse(event.split('data: ')[1]!), { app_id: web.guid, source: 'APP', index: 1, stream: 'err', line: 'live line' });
    abort.abort();
  });

  test.serial('a failing stage: the build is FAILED with the stager’s error', async (t) => {
    const { cc, stager } = t.context;
    stager.failNext('no buildpack detected');
    const { build } = await pushApp(cc.admin, 'broken');
    t.is(build.state, 'FAILED');
    t.is(build.error, 'no buildpack detected');
  });

  test.serial('a crash reported on droplet.exited becomes an audit event', async (t) => {
    const { cc, bus, web } = t.context;
    bus.publish(subjects.dropletExited, { app_id: web.guid, version: 'v', instance_id: 'i-1', index: 1, reason: 'CRASHED', exit_status: 137, exit_description: 'out of memory' });
    const events = await eventually(async () => {
      const r = (await cc.admin.get(`/v3/audit_events?target_guids=${web.guid}&types=audit.app.process.crash`)).body.resources;
      return r.length > 0 && r;
    }, 5000, 'audit event');
    t.like(events[0], { type: 'audit.app.process.crash', target: { guid: web.guid, name: 'web' }, data: { index: 1, exit_status: 137, exit_description: 'out of memory' } });
  });

  test.serial('SIGTERM while a build stages: the API route is withdrawn at once, and the draining controller still takes the droplet and finishes the build', async (t) => {
    const { cc, stager, bus, web } = t.context;
    const api = cc.admin;
    const unregistered: number[] = [];
    const sub = bus.subscribe(subjects.routerUnregister, (m) => {
      if (m.uris.includes(`api.${SYSTEM_DOMAIN}`) && m.port === cc.port) unregistered.push(Date.now());
    });
    await bus.flush();
    const pkg = (await api.get(`/v3/apps/${web.guid}/packages`)).body.resources[0];
    stager.hold();
    const build = (await api.post('/v3/builds', { package: { guid: pkg.guid } })).body;
    await eventually(() => stager.waiting === 1, 5000, 'the stager holds the staging');
    const uploadsBefore = stager.uploads.length;
    const stopping = cc.proc.kill('SIGTERM');
    await eventually(() => unregistered.length > 0, 5000, 'router.unregister of the API route at the drain’s start');
    // Still draining: the stager fetches the package and uploads the droplet to this controller.
    stager.release();
    await stopping;
    sub();
    t.is(stager.uploads.length, uploadsBefore + 1);
    t.true(stager.uploads.at(-1)!.status < 300, `the droplet upload during the drain: HTTP ${stager.uploads.at(-1)!.status} ${stager.uploads.at(-1)!.body}`);
    await cc.start();
    t.is((await cc.admin.get(`/v3/builds/${build.guid}`)).body.state, 'STAGED');
  });

  test.serial('a controller restart keeps everything; a build staging across it is FAILED with the reason', async (t) => {
    const { cc, stager, journal, web, registers } = t.context;
    const api = cc.admin;
    const oldToken = api.token!;
    const beforeApp = (await api.get(`/v3/apps/${web.guid}`)).body;
    const beforeVersion = await currentVersion(t, web.guid);
    const routes = (await api.get(`/v3/apps/${web.guid}/routes`)).body.resources.map((r: any) => r.url);
    const pkg = (await api.get(`/v3/apps/${web.guid}/packages`)).body.resources[0];
    stager.hold();
    const build = (await api.post('/v3/builds', { package: { guid: pkg.guid } })).body;
    await eventually(() => stager.waiting === 1, 5000, 'the stager holds the staging');

    const registersBefore = registers.length;
    await cc.restart();
    const after = cc.admin;
    t.is((await after.withToken(oldToken).get('/v3/apps')).status, 200, 'tokens survive a restart');
    const app = (await after.get(`/v3/apps/${web.guid}`)).body;
    t.is(app.state, 'STARTED');
    t.is(app.name, beforeApp.name);
    t.is(await currentVersion(t, web.guid), beforeVersion);
    t.is((await after.get(`/v3/apps/${web.guid}/droplets/current`)).body.guid, web.droplet);
    t.is((await after.get(`/v3/processes/${web.guid}`)).body.instances, 3);
    t.deepEqual((await after.get(`/v3/apps/${web.guid}/routes`)).body.resources.map((r: any) => r.url), routes);
    t.is((await after.get(`/v3/packages/${pkg.guid}`)).body.state, 'READY');
    const failed = (await after.get(`/v3/builds/${build.guid}`)).body;
    t.is(failed.state, 'FAILED');
    t.is(failed.error, INTERRUPTED);
    stager.release();
    await eventually(() => stager.uploads.at(-1)?.status === 422, 10_000, 'the late droplet upload is refused');
    await eventually(() => registers.slice(registersBefore).some((r) => r.uris.includes(`api.${SYSTEM_DOMAIN}`)), 5000, 'the API route registered again');
    // Still in charge: a scale after the restart reaches the DEAs.
    const mark = journal.events.length;
    await after.post(`/v3/processes/${web.guid}/actions/scale`, { instances: 2 });
    const stop = await eventually(() => journal.stops(web.guid).find((s) => journal.events.indexOf(s) >= mark && s.msg.indices !== undefined), 5000, 'dea.stop after restart');
    t.deepEqual(stop.msg, { app_id: web.guid, indices: [2] });
  });

  test.serial('stop and delete stop every instance and tell the health managers', async (t) => {
    const { cc, journal, updated, web } = t.context;
    const mark = journal.events.length;
    const updates = updated.length;
    const stopped = await cc.admin.post(`/v3/apps/${web.guid}/actions/stop`);
    t.is(stopped.body.state, 'STOPPED');
    const stop = await eventually(() => journal.stops(web.guid).find((s) => journal.events.indexOf(s) >= mark && Object.keys(s.msg).length === 1), 5000, 'dea.stop');
    t.deepEqual(stop.msg, { app_id: web.guid });
    await eventually(() => updated.slice(updates).some((u) => u.app_id === web.guid), 5000, 'droplet.updated');
    const bulk = await fetch(`${cc.url}/bulk/apps`, { headers: { authorization: `Basic ${Buffer.from(`${BULK.user}:${BULK.password}`).toString('base64')}` } });
    t.false(web.guid in ((await bulk.json()) as any).results, 'a stopped app is not in the bulk list');

    hm(t, { op: 'START', app_id: web.guid, version: await currentVersion(t, web.guid), indices: [0], reason: 'missing' });
    await cc.proc.waitForLog((l) => l.msg === 'hm request refused' && l.app_id === web.guid && String(l.refused).includes('stopped'));

    const mark2 = journal.events.length;
    const updates2 = updated.length;
    t.is((await cc.admin.del(`/v3/apps/${web.guid}`)).status, 204);
    await eventually(() => journal.stops(web.guid).some((s) => journal.events.indexOf(s) >= mark2), 5000, 'dea.stop on delete');
    await eventually(() => updated.slice(updates2).some((u) => u.app_id === web.guid), 5000, 'droplet.updated on delete');
    t.is((await cc.admin.get(`/v3/apps/${web.guid}`)).status, 404);
    hm(t, { op: 'STOP', app_id: web.guid, version: 'whatever', instance_ids: ['leftover'], reason: 'app gone' });
    const leftover = await eventually(() => journal.stops(web.guid).find((s) => s.msg.instance_ids?.includes('leftover')), 5000, 'stop of a deleted app’s leftover');
    t.deepEqual(leftover.msg, { app_id: web.guid, instance_ids: ['leftover'] });
  });
}

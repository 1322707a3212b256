// Two cloud controllers side by side: one nats-server, one PostgreSQL database (a harness
// cluster), one blobstore directory, one router in front; the same config but their index and
// port. Either serves the API, behind the router or alone; an app created through one is the
// other's to read, change, stage and start — bits uploaded through one are downloaded,
// staged and run through the other; and a health manager's request, published once, is
// carried out by exactly one of them (they subscribe in one queue group).
import anyTest, { type TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Bus, HmRequest } from '../../kernel/bus/mod.ts';
import { subjects } from '../../kernel/bus/mod.ts';
import { ADMIN, BULK, multipart, startController, SYSTEM_DOMAIN, zipOf, type Controller } from '../helpers/cc-controller.ts';
import { Journal, TestDea, TestStager, testBus } from '../helpers/cc-peers.ts';
import { eventually } from '../helpers/component-process.ts';
import { NatsServer } from '../helpers/nats-server.ts';
import { PostgresCluster } from '../helpers/postgres.ts';
import { send, startRouter, type RouterUnderTest } from '../helpers/router-process.ts';
import { scratchDir } from '../helpers/tmp.ts';

interface Ctx {
  nats: NatsServer;
  cluster: PostgresCluster;
  router: RouterUnderTest;
  journal: Journal;
  stager: TestStager;
  dea: TestDea;
  bus: Bus;
  a: Controller;
  b: Controller;
  /** The app pushed by the second test, started by the third. */
  app: { guid: string; droplet: string };
}

const test = anyTest as TestFn<Ctx>;
const API_HOST = `api.${SYSTEM_DOMAIN}`;

test.before(async (t) => {
  t.context = { app: { guid: '', droplet: '' } } as Ctx;
  const c = t.context;
  c.nats = await NatsServer.start();
  c.cluster = await PostgresCluster.start();
  c.router = await startRouter('cc-two-router', {}, c.nats);
  c.journal = new Journal();
  c.stager = await TestStager.start(c.nats, c.journal);
  c.dea = await TestDea.start(c.nats, 'dea-a', c.journal);
  c.bus = await testBus(c.nats);
  const shared = {
    db: { url: await c.cluster.createDatabase('cc_two') },
    blobstore: { dir: join(scratchDir('cc-two-blobs'), 'blobs') },
    // Tokens and signed URLs made by one are checked by the other.
    jwt: { secret: randomBytes(24).toString('hex') },
  };
  // At the same moment, as a deploy starts them: one migrates and bootstraps, the other waits
  // for the migration lock and finds the admin, org, space and domains already there.
  const [a, b] = await Promise.allSettled([startController(c.nats, { ...shared, index: 0 }), startController(c.nats, { ...shared, index: 1 })]);
  if (a.status === 'fulfilled') c.a = a.value;
  if (b.status === 'fulfilled') c.b = b.value;
  for (const r of [a, b]) if (r.status === 'rejected') throw r.reason;
});

test.after.always(async (t) => {
  const c = t.context;
  await c.a?.kill();
  await c.b?.kill();
  await c.dea?.close();
  await c.stager?.close();
  await c.bus?.close();
  await c.router?.stop();
  await c.nats?.stop();
  await c.cluster?.stop();
});

test.serial('both serve the API, alone and behind one router, with one login good at either', async (t) => {
  const { a, b, router } = t.context;
  for (const cc of [a, b]) t.is((await cc.anonymous.get('/v3/info')).body.custom.system_domain, SYSTEM_DOMAIN);
  const backends = await eventually(async () => {
    const ports = ((await router.routes())[API_HOST] ?? []).map((e) => Number(String(e.address ?? `${e.host}:${e.port}`).split(':').pop()));
    return ports.includes(a.port) && ports.includes(b.port) && ports;
  }, 15_000, 'both controllers registered with the router');
  t.is(backends.length, 2);
  for (let i = 0; i < 4; i++) t.is((await router.get(API_HOST, '/v3/info')).status, 200);
  const form = new URLSearchParams({ grant_type: 'password', username: ADMIN.user, password: ADMIN.password }).toString();
  const login = await send({ port: router.port, host: API_HOST, method: 'POST', path: '/oauth/token', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  t.is(login.status, 200);
  const token = JSON.parse(login.body).access_token as string;
  for (const cc of [a, b]) t.is((await cc.anonymous.withToken(token).get('/v3/apps')).status, 200);
});

test.serial('an app made through one is the other’s: updated, its bits downloaded and staged, its droplet started', async (t) => {
  const { a, b, journal } = t.context;
  const app = (await a.admin.post('/v3/apps', { name: 'shared' })).body;
  t.is((await b.admin.get(`/v3/apps/${app.guid}`)).body.name, 'shared');
  t.is((await b.admin.patch(`/v3/apps/${app.guid}`, { name: 'shared-too' })).status, 200);
  t.is((await a.admin.get(`/v3/apps/${app.guid}`)).body.name, 'shared-too');
  t.is((await a.admin.post('/v3/apps', { name: 'shared-too' })).status, 422, 'the name is taken in the one database');

  // Bits uploaded through A, downloaded through B from the one blobstore.
  const zip = await zipOf({ 'server.js': 'require("http").createServer().listen(process.env.PORT)' });
  const pkg = (await a.admin.post('/v3/packages', { type: 'bits', relationships: { app: { data: { guid: app.guid } } } })).body;
  const form = multipart({}, { field: 'bits', filename: 'app.zip', content: zip });
  t.is((await a.admin.post(`/v3/packages/${pkg.guid}/upload`, form.body, { 'content-type': form.contentType })).body.state, 'READY');
  const download = await fetch(`${b.url}/v3/packages/${pkg.guid}/download`, { headers: { authorization: `bearer ${b.admin.token}` } });
  t.is(download.status, 200);
  t.true(Buffer.from(await download.arrayBuffer()).length > 0);

  // Staged through B (the stager fetches the package from B, uploads the droplet to B), then
  // assigned and started through A: the DEA fetches the droplet B stored from A.
  const created = await b.admin.post('/v3/builds', { package: { guid: pkg.guid } });
  t.is(created.status, 201);
  const build = await eventually(async () => {
    const got = (await a.admin.get(`/v3/builds/${created.body.guid}`)).body;
    return got.state !== 'STAGING' && got;
  }, 15_000, 'the build staged');
  t.is(build.state, 'STAGED', JSON.stringify(build));
  t.is((await a.admin.patch(`/v3/apps/${app.guid}/relationships/current_droplet`, { data: { guid: build.droplet.guid } })).status, 200);
  t.is((await a.admin.post(`/v3/apps/${app.guid}/actions/start`)).body.state, 'STARTED');
  const start = await eventually(() => journal.starts(app.guid)[0], 10_000, 'dea.start');
  t.true(start.droplet_ok, 'the DEA downloaded the droplet through the controller that did not store it');
  Object.assign(t.context.app, { guid: app.guid, droplet: build.droplet.guid });
});

test.serial('a health manager’s START, published once, is carried out by exactly one controller', async (t) => {
  const { a, b, bus, dea, journal, app } = t.context;
  if (!app.guid) return t.fail('the app of the previous test was not started');
  await eventually(() => dea.active(app.guid).some((i) => i.state === 'RUNNING'), 10_000, 'the instance running');
  const version = await bulkVersion(a, app.guid);
  dea.crash(app.guid, 0);
  const mark = journal.events.length;
  const agreed = () => [a, b].flatMap((cc) => cc.proc.logs.filter((l) => l.msg === 'hm request agreed' && l.app_id === app.guid));

  const hm = (req: HmRequest) => bus.publish(subjects.hmRequests, req);
  hm({ op: 'START', app_id: app.guid, version, indices: [0], reason: 'missing' });
  await eventually(() => journal.starts(app.guid).find((s) => journal.events.indexOf(s) >= mark), 10_000, 'the restart on the DEA');

  // Requests published after it, each refused by whichever controller takes it: once every
  // one is accounted for, a second delivery of the START would have been handled too.
  const markers = Array.from({ length: 10 }, (_, i) => `stale-${i}`);
  for (const v of markers) hm({ op: 'START', app_id: app.guid, version: v, indices: [0], reason: 'marker' });
  const refusedBy = (cc: Controller) => cc.proc.logs.filter((l) => l.msg === 'hm request refused' && markers.includes(String(l.version))).map((l) => String(l.version));
  await eventually(() => refusedBy(a).length + refusedBy(b).length >= markers.length, 10_000, 'every marker refused');
  t.deepEqual([...refusedBy(a), ...refusedBy(b)].sort(), [...markers].sort(), 'each marker handled once');
  t.log(`markers handled: ${refusedBy(a).length} by A, ${refusedBy(b).length} by B`);

  t.is(agreed().length, 1, 'one controller agreed to the START');
  t.is(journal.starts(app.guid).filter((s) => journal.events.indexOf(s) >= mark).length, 1, 'one dea.start for it');
  const events = (await b.admin.get(`/v3/audit_events?target_guids=${app.guid}&types=audit.app.process.hm_start`)).body.resources as unknown[];
  t.is(events.length, 1, 'one audit event, the same through either controller');
  t.is((await a.admin.get(`/v3/audit_events?target_guids=${app.guid}&types=audit.app.process.hm_start`)).body.resources.length, 1);
});

/** The app's current version as the health managers see it (the bulk API). */
async function bulkVersion(cc: Controller, appGuid: string): Promise<string> {
  const res = await fetch(`${cc.url}/bulk/apps/${appGuid}`, { headers: { authorization: `Basic ${Buffer.from(`${BULK.user}:${BULK.password}`).toString('base64')}` } });
  return ((await res.json()) as { version: string }).version;
}

// What two controllers on one PostgreSQL database must not get wrong between them: a quota
// checked by both at the same moment (starts and scales fired at both at once never add up
// past it), and uploads at start (a controller starting while the other receives bits leaves
// that upload alone; an upload whose controller was killed is FAILED — by the other controller
// once it has been silent long enough, at once by its own controller when it comes back).
import anyTest, { type TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';
import { multipart, startController, zipOf, type ApiClient, type Controller } from '../helpers/cc-controller.ts';
import { Journal, TestStager } from '../helpers/cc-peers.ts';
import { must, orgWithSpace, stagedApp, TINY_APP } from '../helpers/cc-tenants.ts';
import { eventually } from '../helpers/component-process.ts';
import { NatsServer } from '../helpers/nats-server.ts';
import { PostgresCluster } from '../helpers/postgres.ts';
import { scratchDir } from '../helpers/tmp.ts';

interface Ctx {
  a: Controller;
  b: Controller;
  space: string;
}

const test = anyTest as TestFn<Ctx>;

/** Short, so that a silent upload is failed within seconds: dead after 3 heartbeats. */
const HEARTBEAT_S = 2;
const DEAD_AFTER_MS = 3 * HEARTBEAT_S * 1000;

// Module-level, so that after.always reaches whatever before got to start.
let nats: NatsServer | undefined;
let cluster: PostgresCluster | undefined;
let stager: TestStager | undefined;
const controllers: Controller[] = [];

test.before(async (t) => {
  nats = await NatsServer.start();
  cluster = await PostgresCluster.start();
  stager = await TestStager.start(nats, new Journal());
  const shared = {
    db: { url: await cluster.createDatabase('cc_multi') },
    blobstore: { dir: join(scratchDir('cc-multi-blobs'), 'blobs') },
    jwt: { secret: randomBytes(24).toString('hex') },
    upload_heartbeat_s: HEARTBEAT_S,
  };
  // The first migrates and bootstraps; the second finds it done.
  const a = await startController(nats, { ...shared, index: 0 });
  controllers.push(a);
  const b = await startController(nats, { ...shared, index: 1 });
  controllers.push(b);
  const { space } = await orgWithSpace(a, 'multi-org', 'multi-space');
  t.context = { a, b, space: space.guid };
});

test.after.always(async () => {
  for (const cc of controllers) await cc.kill();
  await stager?.close();
  await nats?.stop();
  await cluster?.stop();
});

test.serial('starts and scales fired at both controllers at once never overrun the org quotas', async (t) => {
  const { a, b } = t.context;
  // Several orgs at once, each its own race at its quota's edge; and several rounds: a race
  // is lost only now and then.
  const ORGS = 4;
  const APPS = 8;
  const LIMIT = 4;
  const ROUNDS = 4;
  const through = (i: number): ApiClient => (i % 2 ? a.admin : b.admin);
  const orgs = await Promise.all(
    Array.from({ length: ORGS }, async (_, k) => {
      const { org, space } = await orgWithSpace(a, `race-org-${k}`, 'race');
      const quota = await must(a.admin.post('/v3/organization_quotas', { name: `race-q-${k}`, apps: { total_instances: LIMIT }, relationships: { organizations: { data: [{ guid: org.guid }] } } }), 201, 'org quota');
      const apps = await Promise.all(Array.from({ length: APPS }, async (_, i) => (await stagedApp(through(i), `race-${i}`, space.guid)).app.guid as string));
      return { quota: quota.guid as string, apps, started: [] as string[] };
    }),
  );
  const fire = (round: number, what: (org: (typeof orgs)[number]) => string[], action: (api: ApiClient, app: string) => Promise<{ status: number }>) =>
    Promise.all(orgs.map((org) => Promise.all(what(org).map((app, i) => action(through(i + round), app)))));

  // Every app has one instance: exactly LIMIT starts fit in each org, whichever controller takes them.
  for (let round = 1; round <= ROUNDS; round++) {
    await Promise.all(orgs.flatMap((org) => org.started.map((app) => must(a.admin.post(`/v3/apps/${app}/actions/stop`), 200, `stop ${app}`))));
    const starts = await fire(round, (org) => org.apps, (api, app) => api.post(`/v3/apps/${app}/actions/start`));
    for (const [k, org] of orgs.entries()) {
      t.deepEqual([...new Set(starts[k]!.map((r) => r.status))].sort(), [200, 422], `round ${round}, org ${k}: each start succeeded or was refused by the quota`);
      org.started = org.apps.filter((_, i) => starts[k]![i]!.status === 200);
      t.is(org.started.length, LIMIT, `round ${round}, org ${k}: starts that succeeded (of ${APPS})`);
      t.is(await instancesOf(a.admin, org.apps), LIMIT, `round ${round}, org ${k}: instances started`);
    }
  }

  // Room for LIMIT more; each scale to 3 asks for 2: half of them fit. Scaling back down is
  // always allowed.
  for (const org of orgs) await must(a.admin.patch(`/v3/organization_quotas/${org.quota}`, { apps: { total_instances: 2 * LIMIT } }), 200, 'a larger quota');
  for (let round = 1; round <= ROUNDS; round++) {
    const scales = await fire(round, (org) => org.started, (api, app) => api.post(`/v3/apps/${app}/processes/web/actions/scale`, { instances: 3 }));
    for (const [k, org] of orgs.entries()) {
      t.deepEqual([...new Set(scales[k]!.map((r) => r.status))].sort(), [202, 422], `round ${round}, org ${k}: each scale succeeded or was refused by the quota`);
      t.is(scales[k]!.filter((r) => r.status === 202).length, LIMIT / 2, `round ${round}, org ${k}: scales that succeeded`);
      t.is(await instancesOf(a.admin, org.apps), 2 * LIMIT, `round ${round}, org ${k}: instances after the scales`);
    }
    await Promise.all(orgs.flatMap((org) => org.started.map((app) => must(a.admin.post(`/v3/apps/${app}/processes/web/actions/scale`, { instances: 1 }), 202, `scale ${app} down`))));
  }
});

test.serial('a controller starting while the other receives bits leaves that upload alone', async (t) => {
  const { a, b } = t.context;
  const pkg = await newPackage(a.admin, t.context.space, 'live-upload');
  const upload = await slowUpload(a, pkg);
  await b.restart();
  t.is((await packageOf(b.admin, pkg)).state, 'PROCESSING_UPLOAD', 'just after the other controller started');
  // Longer than an upload may stay silent, with the restarted controller checking meanwhile.
  await new Promise((r) => setTimeout(r, DEAD_AFTER_MS + 2000));
  t.is((await packageOf(b.admin, pkg)).state, 'PROCESSING_UPLOAD', 'while the upload goes on');
  const done = await upload.finish();
  t.is(done.status, 200, JSON.stringify(done.body));
  t.is(done.body.state, 'READY');
});

test.serial('an upload whose controller was killed is FAILED: by the other once silent, by its own at once when it comes back', async (t) => {
  const { a, b, space } = t.context;
  const p1 = await newPackage(b.admin, space, 'killed-on-a');
  const onA = await slowUpload(a, p1);
  await a.kill();
  await onA.response.catch(() => undefined);
  const killedAt = Date.now();
  t.is((await packageOf(b.admin, p1)).state, 'PROCESSING_UPLOAD', 'not failed the moment its controller died');
  const failed = await eventually(async () => {
    const p = await packageOf(b.admin, p1);
    return p.state !== 'PROCESSING_UPLOAD' && p;
  }, DEAD_AFTER_MS + 15_000, 'the other controller fails the silent upload');
  t.is(failed.state, 'FAILED');
  t.regex(failed.data.error, /^The controller receiving this upload stopped \(nothing heard from it for 6 s\); upload the bits again\.$/);
  t.true(Date.now() - killedAt >= DEAD_AFTER_MS - HEARTBEAT_S * 1000, 'only after it had been silent for a while');

  // With A still down, nobody but B's next process judges B's upload: at its start, at once.
  const p2 = await newPackage(b.admin, space, 'killed-on-b');
  const onB = await slowUpload(b, p2);
  await b.kill();
  await onB.response.catch(() => undefined);
  await b.start();
  const cut = await packageOf(b.admin, p2);
  t.is(cut.state, 'FAILED');
  t.is(cut.data.error, 'The upload was cut off by a controller restart; upload the bits again.');

  // A failed package takes bits again.
  await a.start();
  for (const [cc, pkg] of [[a, p1], [b, p2]] as const) {
    const form = multipart({}, { field: 'bits', filename: 'app.zip', content: await zipOf(TINY_APP) });
    t.is((await cc.admin.post(`/v3/packages/${pkg}/upload`, form.body, { 'content-type': form.contentType })).body.state, 'READY');
  }
});

/** Instances of the started apps among `apps`. */
async function instancesOf(api: ApiClient, apps: string[]): Promise<number> {
  let total = 0;
  for (const app of apps) {
    if ((await api.get(`/v3/apps/${app}`)).body.state !== 'STARTED') continue;
    total += (await api.get(`/v3/apps/${app}/processes/web`)).body.instances as number;
  }
  return total;
}

async function newPackage(api: ApiClient, space: string, name: string): Promise<string> {
  const app = await must(api.post('/v3/apps', { name, relationships: { space: { data: { guid: space } } } }), 201, `app ${name}`);
  return (await must(api.post('/v3/packages', { type: 'bits', relationships: { app: { data: { guid: app.guid } } } }), 201, `package of ${name}`)).guid;
}

async function packageOf(api: ApiClient, guid: string): Promise<any> {
  return must(api.get(`/v3/packages/${guid}`), 200, `package ${guid}`);
}

/**
 * An upload of a package through `cc` that sends half its body and waits, until finish()
 * sends the rest; resolves once the controller has claimed the package.
 */
async function slowUpload(cc: Controller, pkg: string): Promise<{ finish(): Promise<{ status: number; body: any }>; response: Promise<{ status: number; body: any }> }> {
  const form = multipart({}, { field: 'bits', filename: 'app.zip', content: await zipOf(TINY_APP) });
  const half = Math.floor(form.body.length / 2);
  const req = request({
    host: '127.0.0.1',
    port: cc.port,
    method: 'POST',
    path: `/v3/packages/${pkg}/upload`,
    headers: { authorization: `bearer ${cc.admin.token}`, 'content-type': form.contentType, 'content-length': String(form.body.length) },
  });
  const response = new Promise<{ status: number; body: any }>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || 'null') }));
      res.on('error', reject);
    });
  });
  response.catch(() => undefined);
  req.write(form.body.subarray(0, half));
  await eventually(async () => (await packageOf(cc.admin, pkg)).state === 'PROCESSING_UPLOAD', 10_000, `the upload of ${pkg} claimed`);
  return {
    response,
    finish: () => {
      req.end(form.body.subarray(half));
      return response;
    },
  };
}

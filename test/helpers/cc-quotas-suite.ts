// Quotas over real HTTP, the controller a real process with a test stager on the bus (no DEA:
// a started app's instances go unplaced, but they count). Org and space quotas refuse a start,
// a restart, a scale and a route past their limits with 422 naming the quota, and leave
// everything as it was; an org manager owns the space quotas of its org and no other; the CLI
// creates, lists and applies quotas, and a push past a quota fails at the start, unstarted.
// One suite, run by cc-quotas.test.ts on SQLite and by cc-quotas-postgres.test.ts on PostgreSQL.
import type { TestFn } from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN, APPS_DOMAIN, startController, type ApiClient, type CcSuiteOptions, type Controller } from './cc-controller.ts';
import { addUser, giveRole, ingot, must, orgWithSpace, stagedApp, useCliHome, TINY_APP } from './cc-tenants.ts';
import { Journal, TestStager } from './cc-peers.ts';
import { NatsServer } from './nats-server.ts';
import { scratchDir } from './tmp.ts';

export interface CcQuotasContext {
  nats: NatsServer;
  cc: Controller;
  stager: TestStager;
  dev: ApiClient;
  mgr: ApiClient;
  org: string;
  s1: string;
  s2: string;
  otherOrg: string;
  otherSpace: string;
  domain: string;
}

const errorOf = (body: any) => body?.errors?.[0] as { title: string; detail: string } | undefined;

const scale = (api: ApiClient, app: string, body: Record<string, number>) => api.post(`/v3/apps/${app}/processes/web/actions/scale`, body);

/** Registers the suite on `test`: its world before (the controller on `options.dbUrl()`), stopped after, and the cases. */
export function registerCcQuotasSuite(test: TestFn<CcQuotasContext>, options: CcSuiteOptions): void {
  useCliHome('cc-quotas-home');

  test.before(async (t) => {
    const nats = await NatsServer.start();
    const stager = await TestStager.start(nats, new Journal());
    const cc = await startController(nats, { db: { url: await options.dbUrl() } });
    const { org, space: s1 } = await orgWithSpace(cc, 'quota-org', 's1');
    const s2 = await must(cc.admin.post('/v3/spaces', { name: 's2', relationships: { organization: { data: { guid: org.guid } } } }), 201, 'space s2');
    const other = await orgWithSpace(cc, 'other-org', 'o1');
    const dev = await addUser(cc, 'dev');
    const mgr = await addUser(cc, 'mgr');
    await giveRole(cc.admin, 'organization_user', dev.guid, { organization: org.guid });
    await giveRole(cc.admin, 'space_developer', dev.guid, { space: s1.guid });
    await giveRole(cc.admin, 'space_developer', dev.guid, { space: s2.guid });
    await giveRole(cc.admin, 'organization_manager', mgr.guid, { organization: org.guid });
    const domain = (await cc.admin.get(`/v3/domains?names=${APPS_DOMAIN}`)).body.resources[0].guid;
    t.context = { nats, cc, stager, dev: dev.api, mgr: mgr.api, org: org.guid, s1: s1.guid, s2: s2.guid, otherOrg: other.org.guid, otherSpace: other.space.guid, domain };
  });

  test.after.always(async (t) => {
    await t.context.cc?.kill();
    await t.context.stager?.close();
    await t.context.nats?.stop();
  });

  test.serial('a start past the space memory quota is 422 naming it; the app stays STOPPED', async (t) => {
    const { cc, dev, s1 } = t.context;
    await must(cc.admin.post('/v3/space_quotas', { name: 'small', apps: { total_memory_in_mb: 1024 }, relationships: { organization: { data: { guid: t.context.org } }, spaces: { data: [{ guid: s1 }] } } }), 201, 'quota small');
    const { app } = await stagedApp(dev, 'big', s1);
    await must(scale(dev, app.guid, { instances: 2, memory_in_mb: 768 }), 202, 'a stopped app scales freely');

    for (const action of ['start', 'restart']) {
      const refused = await dev.post(`/v3/apps/${app.guid}/actions/${action}`, {});
      t.is(refused.status, 422, action);
      t.is(errorOf(refused.body)?.title, 'CF-UnprocessableEntity');
      t.is(errorOf(refused.body)?.detail, "memory quota exceeded: space quota 'small' allows 1024 MB, the space would use 1536 MB (SpaceQuotaMemoryLimitExceeded)");
      t.is((await dev.get(`/v3/apps/${app.guid}`)).body.state, 'STOPPED', `after the refused ${action}`);
    }

    // Within the quota it starts; then a scale of memory past it is refused and changes nothing.
    await must(scale(dev, app.guid, { memory_in_mb: 512 }), 202, 'scale to 2 × 512');
    t.is((await must(dev.post(`/v3/apps/${app.guid}/actions/start`), 200, 'start')).state, 'STARTED');
    const bigger = await scale(dev, app.guid, { memory_in_mb: 513 });
    t.is(bigger.status, 422);
    t.regex(errorOf(bigger.body)!.detail, /space quota 'small' allows 1024 MB, the space would use 1026 MB/);
    t.like((await dev.get(`/v3/apps/${app.guid}/processes/web`)).body, { instances: 2, memory_in_mb: 512 });
    await must(scale(dev, app.guid, { instances: 1 }), 202, 'scaling down is always allowed');
  });

  test.serial('a scale past the org instance quota is 422 naming it; the process keeps its count', async (t) => {
    const { cc, dev, s2, org } = t.context;
    await must(cc.admin.post('/v3/organization_quotas', { name: 'org-q', apps: { total_instances: 2 }, relationships: { organizations: { data: [{ guid: org }] } } }), 201, 'org quota');
    const { app } = await stagedApp(dev, 'wide', s2);
    await must(scale(dev, app.guid, { memory_in_mb: 64 }), 202, 'small instances');
    await must(dev.post(`/v3/apps/${app.guid}/actions/start`), 200, 'start: 1 (big) + 1 = 2 instances');
    const refused = await scale(dev, app.guid, { instances: 2 });
    t.is(refused.status, 422);
    t.is(errorOf(refused.body)?.detail, "instance quota exceeded: organization quota 'org-q' allows 2 instances, the organization would use 3 instances (QuotaInstanceLimitExceeded)");
    t.is((await dev.get(`/v3/apps/${app.guid}/processes/web`)).body.instances, 1);
    // Stopped apps do not count: stopping the other frees its instance.
    const big = (await dev.get('/v3/apps?names=big')).body.resources[0];
    await must(dev.post(`/v3/apps/${big.guid}/actions/stop`), 200, 'stop big');
    await must(scale(dev, app.guid, { instances: 2 }), 202, 'now within the quota');
    t.is((await dev.get(`/v3/organizations/${org}`)).body.relationships.quota.data.guid, (await cc.admin.get('/v3/organization_quotas?names=org-q')).body.resources[0].guid);
  });

  test.serial('an org manager makes and applies space quotas in its org only; a route past one is 422', async (t) => {
    const { dev, mgr, org, s2, otherOrg, otherSpace, domain } = t.context;
    const body = (name: string, orgGuid: string) => ({ name, routes: { total_routes: 1 }, relationships: { organization: { data: { guid: orgGuid } } } });
    t.is((await dev.post('/v3/space_quotas', body('dev-q', org))).status, 403, 'a developer owns no quotas');
    t.is((await mgr.post('/v3/space_quotas', body('elsewhere', otherOrg))).status, 422, 'another org does not exist for the manager');
    const quota = await must(mgr.post('/v3/space_quotas', body('one-route', org)), 201, 'space quota by the manager');
    t.like(quota, { name: 'one-route', routes: { total_routes: 1 }, apps: { total_memory_in_mb: null }, services: { total_service_instances: null } });
    const foreign = await mgr.post(`/v3/space_quotas/${quota.guid}/relationships/spaces`, { data: [{ guid: otherSpace }] });
    t.is(foreign.status, 422);
    t.regex(errorOf(foreign.body)!.detail, /do not exist within the organization/);
    t.deepEqual((await must(mgr.post(`/v3/space_quotas/${quota.guid}/relationships/spaces`, { data: [{ guid: s2 }] }), 200, 'apply')).data, [{ guid: s2 }]);
    t.is((await dev.get(`/v3/space_quotas/${quota.guid}`)).status, 200, 'a developer of the space reads its quota');
    t.is((await dev.patch(`/v3/space_quotas/${quota.guid}`, { routes: { total_routes: 9 } })).status, 403);

    const route = (host: string) => dev.post('/v3/routes', { host, relationships: { domain: { data: { guid: domain } }, space: { data: { guid: s2 } } } });
    await must(route('first'), 201, 'the first route');
    const second = await route('second');
    t.is(second.status, 422);
    t.is(errorOf(second.body)?.detail, "route quota exceeded: space quota 'one-route' allows 1 route, the space would use 2 routes (SpaceQuotaTotalRoutesExceeded)");
    t.is((await dev.get(`/v3/routes?space_guids=${s2}&hosts=second`)).body.pagination.total_results, 0);

    t.is((await mgr.del(`/v3/space_quotas/${quota.guid}`)).status, 422, 'a quota in use is not deleted');
    t.is((await mgr.del(`/v3/space_quotas/${quota.guid}/relationships/spaces/${s2}`)).status, 204);
    await must(route('second'), 201, 'without the quota, the route is made');
    t.is((await mgr.del(`/v3/space_quotas/${quota.guid}`)).status, 204);
  });

  test.serial('the CLI: create-quota, quotas, set-quota, create-space-quota, space-quotas, set-space-quota; a push past a quota fails unstarted', async (t) => {
    const { cc } = t.context;
    await ingot(t, ['api', cc.url]);
    await ingot(t, ['login', '-u', ADMIN.user, '-p', ADMIN.password]);
    t.regex((await ingot(t, ['create-quota', 'cli-q', '-m', '2G', '-i', '10', '-r', '5'])).stdout, /Created quota cli-q\./);
    await ingot(t, ['create-quota', 'cli-q'], /Creating quota cli-q: Organization Quota 'cli-q' already exists/);
    await ingot(t, ['create-quota', 'bad', '-m', '12XB'], /-m 12XB: /);
    const list = await ingot(t, ['quotas']);
    t.regex(list.stdout, /name\s+total memory\s+instances\s+routes\s+service instances/);
    t.regex(list.stdout, /cli-q\s+2G\s+10\s+5\s+unlimited/);
    await ingot(t, ['create-org', 'cli-org']);
    await ingot(t, ['create-space', 'cli-space', '-o', 'cli-org']);
    t.regex((await ingot(t, ['set-quota', 'cli-org', 'cli-q'])).stdout, /Set quota cli-q to org cli-org\./);
    await ingot(t, ['set-quota', 'cli-org', 'nope'], /quota nope not found/);
    t.regex((await ingot(t, ['create-space-quota', 'tiny', '-o', 'cli-org', '-m', '128M'])).stdout, /Created space quota tiny in org cli-org\./);
    t.regex((await ingot(t, ['space-quotas', '-o', 'cli-org'])).stdout, /tiny\s+128M\s+unlimited\s+unlimited\s+unlimited/);
    t.deepEqual(JSON.parse((await ingot(t, ['space-quotas', '-o', 'cli-org', '--json'])).stdout).map((q: { name: string }) => q.name), ['tiny']);
    t.regex((await ingot(t, ['set-space-quota', 'cli-space', 'tiny', '-o', 'cli-org'])).stdout, /Set space quota tiny to space cli-org\/cli-space\./);

    // A push of 256 MB into a space allowed 128 MB: created, uploaded and staged, then refused at the start.
    const dir = join(scratchDir('cc-quotas-app'), 'app');
    mkdirSync(dir, { recursive: true });
    for (const [name, content] of Object.entries(TINY_APP)) writeFileSync(join(dir, name), content);
    writeFileSync(join(dir, 'package.json'), '{"name":"app","scripts":{"start":"node server.js"}}');
    await ingot(t, ['target', '-o', 'cli-org', '-s', 'cli-space']);
    await ingot(t, ['push', 'heavy', '-p', dir, '-m', '256M'], /Starting heavy: memory quota exceeded: space quota 'tiny' allows 128 MB, the space would use 256 MB \(SpaceQuotaMemoryLimitExceeded\)/);
    const space = (await cc.admin.get('/v3/spaces?names=cli-space')).body.resources[0];
    const app = (await cc.admin.get(`/v3/apps?names=heavy&space_guids=${space.guid}`)).body.resources[0];
    t.is(app.state, 'STOPPED');
  });
}

// The audit trail over real HTTP, the controller a real process with a test stager on the bus:
// two developers (alice, dave) work on one app; their events come back with the right actor,
// target and type, in order, secrets hidden; the org's manager also sees the org-level events;
// a user of another org sees none of it; filters narrow; `ingot events APP` prints the table.
// One suite, run by cc-audit.test.ts on SQLite and by cc-audit-postgres.test.ts on PostgreSQL.
import type { TestFn } from 'ava';
import { APPS_DOMAIN, startController, type ApiClient, type CcSuiteOptions, type Controller } from './cc-controller.ts';
import { addUser, giveRole, ingot, must, orgWithSpace, stagedApp, useCliHome } from './cc-tenants.ts';
import { Journal, TestStager } from './cc-peers.ts';
import { NatsServer } from './nats-server.ts';

export interface CcAuditContext {
  nats: NatsServer;
  cc: Controller;
  stager: TestStager;
  alice: ApiClient;
  dave: ApiClient;
  olga: ApiClient;
  bob: ApiClient;
  guids: Record<string, string>;
  org: string;
  space: string;
  app: string;
  route: string;
}

type Event = { guid: string; type: string; actor: { guid: string; type: string; name: string }; target: { guid: string; type: string; name: string }; data: any; space: { guid: string } | null; organization: { guid: string } | null };

async function events(api: ApiClient, query: string): Promise<Event[]> {
  return (await must(api.get(`/v3/audit_events?per_page=5000&${query}`), 200, `events ${query}`)).resources;
}

/** Registers the suite on `test`: its world before (the controller on `options.dbUrl()`), stopped after, and the cases. */
export function registerCcAuditSuite(test: TestFn<CcAuditContext>, options: CcSuiteOptions): void {
  useCliHome('cc-audit-home');

  test.before(async (t) => {
    const nats = await NatsServer.start();
    const stager = await TestStager.start(nats, new Journal());
    const cc = await startController(nats, { db: { url: await options.dbUrl() } });
    const { org, space } = await orgWithSpace(cc, 'audit-org', 'audit-space');
    const other = await orgWithSpace(cc, 'bob-org', 'bob-space');
    const users: Record<string, { guid: string; api: ApiClient }> = {};
    for (const name of ['alice', 'dave', 'olga', 'bob']) users[name] = await addUser(cc, name);
    for (const dev of ['alice', 'dave']) {
      await giveRole(cc.admin, 'organization_user', users[dev]!.guid, { organization: org.guid });
      await giveRole(cc.admin, 'space_developer', users[dev]!.guid, { space: space.guid });
    }
    await giveRole(cc.admin, 'organization_manager', users.olga!.guid, { organization: org.guid });
    await giveRole(cc.admin, 'organization_user', users.bob!.guid, { organization: other.org.guid });
    await giveRole(cc.admin, 'space_developer', users.bob!.guid, { space: other.space.guid });

    // The story: alice pushes and routes the app, dave scales and stops it, alice restarts it.
    const alice = users.alice!.api;
    const dave = users.dave!.api;
    const { app } = await stagedApp(alice, 'web', space.guid, { environment_variables: { SECRET: 's3cret' } });
    await must(alice.patch(`/v3/apps/${app.guid}/environment_variables`, { var: { TOKEN: 't0ken', SECRET: null } }), 200, 'env');
    const domain = (await alice.get(`/v3/domains?names=${APPS_DOMAIN}`)).body.resources[0].guid;
    const route = await must(alice.post('/v3/routes', { host: 'web', relationships: { domain: { data: { guid: domain } }, space: { data: { guid: space.guid } } } }), 201, 'route');
    await must(alice.post(`/v3/routes/${route.guid}/destinations`, { destinations: [{ app: { guid: app.guid } }] }), 200, 'map');
    await must(alice.post(`/v3/apps/${app.guid}/actions/start`), 200, 'start');
    await must(dave.post(`/v3/apps/${app.guid}/processes/web/actions/scale`, { instances: 2 }), 202, 'scale');
    await must(dave.post(`/v3/apps/${app.guid}/actions/stop`), 200, 'stop');
    await must(alice.post(`/v3/apps/${app.guid}/actions/restart`, {}), 200, 'restart');

    const guids = Object.fromEntries(Object.entries(users).map(([k, v]) => [k, v.guid]));
    t.context = { nats, cc, stager, alice, dave, olga: users.olga!.api, bob: users.bob!.api, guids, org: org.guid, space: space.guid, app: app.guid, route: route.guid };
  });

  test.after.always(async (t) => {
    await t.context.cc?.kill();
    await t.context.stager?.close();
    await t.context.nats?.stop();
  });

  test.serial("the app's events: who did what, in order, secrets hidden", async (t) => {
    const { alice, app, space, org, guids } = t.context;
    const list = await events(alice, `target_guids=${app}`);
    t.deepEqual(
      list.map((e) => [e.type, e.actor.name]),
      [
        ['audit.app.create', 'alice'],
        ['audit.app.package.upload', 'alice'],
        ['audit.app.build.create', 'alice'],
        ['audit.app.update', 'alice'],
        ['audit.app.map-route', 'alice'],
        ['audit.app.start', 'alice'],
        ['audit.app.process.scale', 'dave'],
        ['audit.app.stop', 'dave'],
        ['audit.app.restart', 'alice'],
      ],
    );
    for (const e of list) {
      t.deepEqual(e.target, { guid: app, type: 'app', name: 'web' });
      t.deepEqual([e.space, e.organization], [{ guid: space }, { guid: org }]);
      t.is(e.actor.type, 'user');
    }
    t.is(list.find((e) => e.actor.name === 'dave')!.actor.guid, guids.dave!);
    t.deepEqual(list[0]!.data.request.environment_variables, { SECRET: '[PRIVATE DATA HIDDEN]' });
    t.deepEqual(list[3]!.data.request.environment_variables, { TOKEN: '[PRIVATE DATA HIDDEN]', SECRET: null });
    t.like(list[6]!.data, { process_type: 'web', request: { instances: 2 } });
    t.notRegex(JSON.stringify(list), /s3cret|t0ken/);
  });

  test.serial('filters: types, space, org, time; the org manager sees org-level events, a developer does not', async (t) => {
    const { alice, olga, cc, app, space, org, guids, route } = t.context;
    t.deepEqual((await events(alice, `types=audit.app.start,audit.app.stop&target_guids=${app}`)).map((e) => e.type), ['audit.app.start', 'audit.app.stop']);
    const routeEvents = await events(alice, `target_guids=${route}`);
    t.like(routeEvents[0], { type: 'audit.route.create', actor: { name: 'alice' }, target: { guid: route, type: 'route', name: `web.${APPS_DOMAIN}` } });

    const inSpace = await events(alice, `space_guids=${space}`);
    t.true(inSpace.length >= 10);
    const all = await events(cc.admin, `organization_guids=${org}`);
    const orgCreate = all.find((e) => e.type === 'audit.organization.create')!;
    t.like(orgCreate, { actor: { name: 'admin', type: 'user' }, target: { guid: org, type: 'organization', name: 'audit-org' }, space: null });
    t.like(all.find((e) => e.type === 'audit.space.create'), { target: { guid: space, type: 'space', name: 'audit-space' } });
    t.like(all.find((e) => e.type === 'audit.role.create' && e.target.guid === guids.olga!), { actor: { name: 'admin' }, target: { type: 'user', name: 'olga' }, data: { type: 'organization_manager' }, space: null });

    t.truthy((await events(olga, `organization_guids=${org}`)).find((e) => e.guid === orgCreate.guid), 'the manager sees the org-level events');
    t.falsy((await events(alice, `organization_guids=${org}`)).find((e) => e.space === null), 'a developer sees none of them');
    t.is((await alice.get(`/v3/audit_events/${orgCreate.guid}`)).status, 404);

    const later = await events(alice, `target_guids=${app}&created_ats[gt]=2999-01-01T00:00:00Z`);
    t.deepEqual(later, []);
    t.is((await events(alice, `target_guids=${app}&created_ats[lt]=2999-01-01T00:00:00Z`)).length, 9);
    t.is((await alice.get('/v3/audit_events?created_ats[gt]=yesterday')).status, 400);
  });

  test.serial('a user of another org sees none of them, asking any way', async (t) => {
    const { bob, alice, app, space, org } = t.context;
    const mine = (e: Event) => e.space?.guid === space || e.organization?.guid === org || e.target.guid === app;
    t.deepEqual((await events(bob, '')).filter(mine), []);
    t.deepEqual(await events(bob, `target_guids=${app}`), []);
    t.deepEqual(await events(bob, `space_guids=${space}`), []);
    t.deepEqual(await events(bob, `organization_guids=${org}`), []);
    const one = (await events(alice, `target_guids=${app}`))[0]!;
    t.is((await bob.get(`/v3/audit_events/${one.guid}`)).status, 404);
  });

  test.serial('ingot events APP prints the table, newest first; --json the events; then the deletes are recorded', async (t) => {
    const { cc, alice, app, route } = t.context;
    await ingot(t, ['api', cc.url]);
    await ingot(t, ['login', '-u', 'alice', '-p', 'alice-password', '-o', 'audit-org', '-s', 'audit-space']);
    const out = (await ingot(t, ['events', 'web'])).stdout.split('\n');
    t.regex(out[0]!, /Getting events for app web in space audit-org\/audit-space as alice\.\.\./);
    t.regex(out[2]!, /^time\s+event\s+actor\s+description$/);
    t.regex(out[3]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+audit\.app\.restart\s+alice\s+strategy: recreate$/);
    t.true(out.some((l) => /audit\.app\.process\.scale\s+dave\s+instances: 2$/.test(l)), out.join('\n'));
    t.regex(out.filter((l) => l.trim()).at(-1)!, /audit\.app\.create\s+alice\s+name: web, environment_variables\.SECRET: \[PRIVATE DATA HIDDEN\]$/);
    t.is(JSON.parse((await ingot(t, ['events', 'web', '--json'])).stdout).length, 9);
    await ingot(t, ['events', 'nope'], /app nope not found/);

    const dest = (await alice.get(`/v3/routes/${route}/destinations`)).body.destinations[0].guid;
    await must(alice.del(`/v3/routes/${route}/destinations/${dest}`), 204, 'unmap');
    await must(alice.del(`/v3/routes/${route}`), 204, 'delete route');
    await must(alice.del(`/v3/apps/${app}`), 204, 'delete app');
    t.deepEqual((await events(alice, `target_guids=${app}`)).slice(-2).map((e) => e.type), ['audit.app.unmap-route', 'audit.app.delete-request'], 'events outlive the app');
    t.deepEqual((await events(alice, `target_guids=${route}`)).map((e) => e.type), ['audit.route.create', 'audit.route.delete-request']);
  });
}

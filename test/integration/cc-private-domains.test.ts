// Private domains over real HTTP, on SQLite and on PostgreSQL (a private cluster started by the
// harness): a real controller process per database, users with real roles. Two orgs — acme
// (spaces dev and ops) and beta (space b1); olga manages acme, dave develops in acme/dev, aude
// audits acme, ursula develops in beta/b1, mia is in both orgs and develops in beta/b1 only.
// Who creates, sees, routes in and deletes acme's private domain, the 422s naming the bad
// field, and the names unique across shared and private domains.
import anyTest, { type TestFn } from 'ava';
import { APPS_DOMAIN, type ApiClient, type Controller, startController, sqliteDbUrl } from '../helpers/cc-controller.ts';
import { addUser, giveRole, must, orgWithSpace } from '../helpers/cc-tenants.ts';
import { NatsServer } from '../helpers/nats-server.ts';
import { PostgresCluster } from '../helpers/postgres.ts';

interface Tenants {
  cc: Controller;
  acme: string;
  beta: string;
  dev: string;
  ops: string;
  b1: string;
  olga: ApiClient;
  dave: ApiClient;
  aude: ApiClient;
  ursula: ApiClient;
  mia: ApiClient;
}

const test = anyTest as TestFn<{ nats: NatsServer; pg?: PostgresCluster; on: Record<string, Tenants> }>;

const DATABASES = ['sqlite', 'postgres'] as const;
const errorOf = (body: any) => body?.errors?.[0] as { title: string; detail: string } | undefined;
const privateBody = (name: string, org: string, extra: Record<string, unknown> = {}) => ({ name, relationships: { organization: { data: { guid: org } } }, ...extra });
const routeBody = (host: string, domain: string, space: string) => ({ host, relationships: { domain: { data: { guid: domain } }, space: { data: { guid: space } } } });
const names = async (api: ApiClient, query = '') => ((await api.get(`/v3/domains${query}`)).body.resources as Array<{ name: string }>).map((d) => d.name).sort();

async function tenants(cc: Controller): Promise<Tenants> {
  const { org: acme, space: dev } = await orgWithSpace(cc, 'acme', 'dev');
  const ops = await must(cc.admin.post('/v3/spaces', { name: 'ops', relationships: { organization: { data: { guid: acme.guid } } } }), 201, 'space ops');
  const { org: beta, space: b1 } = await orgWithSpace(cc, 'beta', 'b1');
  const users = Object.fromEntries(await Promise.all(['olga', 'dave', 'aude', 'ursula', 'mia'].map(async (n) => [n, await addUser(cc, n)] as const)));
  await giveRole(cc.admin, 'organization_manager', users.olga!.guid, { organization: acme.guid });
  await giveRole(cc.admin, 'organization_user', users.dave!.guid, { organization: acme.guid });
  await giveRole(cc.admin, 'space_developer', users.dave!.guid, { space: dev.guid });
  await giveRole(cc.admin, 'organization_auditor', users.aude!.guid, { organization: acme.guid });
  await giveRole(cc.admin, 'organization_user', users.ursula!.guid, { organization: beta.guid });
  await giveRole(cc.admin, 'space_developer', users.ursula!.guid, { space: b1.guid });
  await giveRole(cc.admin, 'organization_user', users.mia!.guid, { organization: acme.guid });
  await giveRole(cc.admin, 'organization_user', users.mia!.guid, { organization: beta.guid });
  await giveRole(cc.admin, 'space_developer', users.mia!.guid, { space: b1.guid });
  const api = (n: string) => users[n]!.api;
  return { cc, acme: acme.guid, beta: beta.guid, dev: dev.guid, ops: ops.guid, b1: b1.guid, olga: api('olga'), dave: api('dave'), aude: api('aude'), ursula: api('ursula'), mia: api('mia') };
}

test.before(async (t) => {
  const nats = await NatsServer.start();
  t.context = { nats, on: {} };
  const pg = await PostgresCluster.start();
  t.context.pg = pg;
  t.context.on.sqlite = await tenants(await startController(nats, { db: { url: await sqliteDbUrl() } }));
  t.context.on.postgres = await tenants(await startController(nats, { db: { url: await pg.createDatabase('cc_private_domains') } }));
});

test.after.always(async (t) => {
  for (const x of Object.values(t.context.on ?? {})) await x.cc.kill();
  await t.context.pg?.stop();
  await t.context.nats?.stop();
});

for (const db of DATABASES) {
  test.serial(`${db}: a bad body is a 422 naming the field; no token is a 401`, async (t) => {
    const { cc, acme, olga } = t.context.on[db]!;
    const cases: Array<[unknown, RegExp]> = [
      [{ name: 'bad.acme.test', relationships: { organization: { data: {} } } }, /relationships\.organization\.data\.guid/],
      [{ name: 'bad.acme.test', relationships: { organization: { guid: acme } } }, /relationships\.organization/],
      [{ name: 'bad.acme.test', relationships: { space: { data: { guid: acme } } } }, /relationships.*Unknown field.*'space'/],
      [privateBody('bad.acme.test', acme, { internal: true }), /internal: a private domain \(relationships\.organization\) cannot be internal/],
      [privateBody('Not_A_Domain', acme), /^name: must be a lower-case DNS name/],
    ];
    for (const [body, detail] of cases) {
      const res = await olga.post('/v3/domains', body);
      t.is(res.status, 422, JSON.stringify(body));
      t.regex(errorOf(res.body)!.detail, detail, JSON.stringify(body));
    }
    t.is((await cc.anonymous.post('/v3/domains', privateBody('anon.acme.test', acme))).status, 401);
    t.deepEqual(await names(cc.admin, '?names=bad.acme.test,anon.acme.test'), [], 'nothing was made');
  });

  test.serial(`${db}: an OrgManager creates a private domain for its org; other roles and other orgs cannot`, async (t) => {
    const { cc, acme, beta, olga, dave, aude, ursula } = t.context.on[db]!;
    const ursulas = await ursula.post('/v3/domains', privateBody('acme.test', acme));
    t.is(ursulas.status, 422, 'an org ursula is not in is no org for her');
    t.regex(errorOf(ursulas.body)!.detail, /Invalid organization/);
    t.is((await dave.post('/v3/domains', privateBody('acme.test', acme))).status, 403, 'an OrgUser');
    t.is((await aude.post('/v3/domains', privateBody('acme.test', acme))).status, 403, 'an OrgAuditor');
    t.is((await olga.post('/v3/domains', privateBody('acme.test', beta))).status, 422, "another org's");
    t.is((await olga.post('/v3/domains', { name: 'shared.acme.test' })).status, 403, 'a shared domain is for admins');

    const made = await olga.post('/v3/domains', privateBody('acme.test', acme));
    t.is(made.status, 201);
    t.like(made.body, { name: 'acme.test', internal: false, relationships: { organization: { data: { guid: acme } } } });
    const got = await cc.admin.get(`/v3/domains/${made.body.guid}`);
    t.deepEqual(got.body.relationships.organization, { data: { guid: acme } });
    t.deepEqual((await cc.admin.get(`/v3/domains?names=${APPS_DOMAIN}`)).body.resources[0].relationships.organization, { data: null }, 'a shared one has none');
    t.deepEqual(await names(cc.admin, `?organization_guids=${acme}`), ['acme.test']);
  });

  test.serial(`${db}: a private domain is seen by its org's members only; others get 404 and cannot route in it`, async (t) => {
    const { cc, acme, b1, dev, dave, aude, ursula, mia } = t.context.on[db]!;
    const domain = (await cc.admin.get('/v3/domains?names=acme.test')).body.resources[0].guid as string;
    for (const [who, api] of [['dave', dave], ['aude', aude], ['mia', mia]] as const) {
      t.true((await names(api)).includes('acme.test'), `${who} lists it`);
      t.is((await api.get(`/v3/domains/${domain}`)).status, 200, `${who} reads it`);
      t.deepEqual((await api.get(`/v3/domains/${domain}/route_reservations?host=www`)).body, { matching_route: false }, `${who} asks for a host`);
    }
    t.deepEqual(await names(ursula), [APPS_DOMAIN, 'sys.ingot.test'], 'ursula lists the shared domains only');
    t.deepEqual(await names(ursula, `?guids=${domain}`), []);
    t.deepEqual(await names(ursula, `?organization_guids=${acme}`), [], 'not even when asked by org');
    for (const res of [await ursula.get(`/v3/domains/${domain}`), await ursula.get(`/v3/domains/${domain}/route_reservations?host=www`), await ursula.del(`/v3/domains/${domain}`)]) {
      t.is(res.status, 404);
      t.is(errorOf(res.body)?.detail, 'Domain not found');
    }
    const intruder = await ursula.post('/v3/routes', routeBody('www', domain, b1));
    t.is(intruder.status, 422);
    t.regex(errorOf(intruder.body)!.detail, /^Invalid domain\. Ensure that the domain exists and you have access to it\.$/);
    t.is((await ursula.post('/v3/routes', routeBody('www', domain, dev))).status, 422, "nor in acme's space");
    t.is((await cc.admin.get('/v3/routes?hosts=www')).body.resources.length, 0);
  });

  test.serial(`${db}: routes in a private domain are made only in its org's spaces`, async (t) => {
    const { cc, b1, dev, ops, dave, ursula, mia, olga } = t.context.on[db]!;
    const domain = (await cc.admin.get('/v3/domains?names=acme.test')).body.resources[0].guid as string;
    const fromBeta = await mia.post('/v3/routes', routeBody('www', domain, b1));
    t.is(fromBeta.status, 422, 'mia sees the domain but routes from a beta space');
    t.is(errorOf(fromBeta.body)?.detail, "Invalid domain. Domain 'acme.test' is private to organization 'acme' and not available in organization 'beta'.");
    t.is((await cc.admin.post('/v3/routes', routeBody('www', domain, b1))).status, 422, 'not even an admin');

    const route = await must(dave.post('/v3/routes', routeBody('www', domain, dev)), 201, 'route');
    t.is(route.url, 'www.acme.test');
    t.is((await dave.post('/v3/routes', routeBody('www', domain, dev))).status, 422, 'the host is taken');
    t.deepEqual(
      ((await dave.get(`/v3/routes?domain_guids=${domain}`)).body.resources as Array<{ url: string }>).map((r) => r.url),
      ['www.acme.test'],
      'a push-less route listing shows it',
    );
    t.deepEqual((await olga.get(`/v3/routes?space_guids=${dev}`)).body.resources.map((r: { url: string }) => r.url), ['www.acme.test'], 'the org manager reads it');
    t.is((await ursula.get(`/v3/routes?domain_guids=${domain}`)).body.resources.length, 0);
    t.is((await ursula.get(`/v3/routes/${route.guid}`)).status, 404);
    t.deepEqual((await dave.get(`/v3/domains/${domain}/route_reservations?host=www`)).body, { matching_route: true });
    t.is((await dave.post('/v3/routes', routeBody('api', domain, ops))).status, 422, 'dave develops in dev only');
  });

  test.serial(`${db}: a private domain is deleted by its org's manager, once its routes are gone`, async (t) => {
    const { cc, dave, olga, aude } = t.context.on[db]!;
    const domain = (await cc.admin.get('/v3/domains?names=acme.test')).body.resources[0].guid as string;
    t.is((await dave.del(`/v3/domains/${domain}`)).status, 403, 'an OrgUser');
    t.is((await aude.del(`/v3/domains/${domain}`)).status, 403, 'an OrgAuditor');
    const busy = await olga.del(`/v3/domains/${domain}`);
    t.is(busy.status, 422);
    t.is(errorOf(busy.body)?.detail, 'Delete the routes of this domain first.');
    const route = (await dave.get(`/v3/routes?domain_guids=${domain}`)).body.resources[0].guid;
    t.is((await dave.del(`/v3/routes/${route}`)).status, 204);
    t.is((await olga.del(`/v3/domains/${domain}`)).status, 204);
    t.is((await cc.admin.get(`/v3/domains/${domain}`)).status, 404);
    t.is((await olga.del(`/v3/domains/${APPS_DOMAIN}`)).status, 404, 'an unknown guid');
    const shared = (await olga.get(`/v3/domains?names=${APPS_DOMAIN}`)).body.resources[0].guid;
    t.is((await olga.del(`/v3/domains/${shared}`)).status, 403, 'a shared domain is not hers');
  });

  test.serial(`${db}: a domain name is unique across shared and private domains; no private domain nests with another owner's`, async (t) => {
    const { cc, acme, beta, olga } = t.context.on[db]!;
    const taken = async (api: ApiClient, body: unknown) => {
      const res = await api.post('/v3/domains', body);
      t.is(res.status, 422, JSON.stringify(body));
      return errorOf(res.body)!;
    };
    t.like(await taken(olga, privateBody(APPS_DOMAIN, acme)), { title: 'CF-UniquenessError', detail: `The domain name "${APPS_DOMAIN}" is already in use` });
    await must(olga.post('/v3/domains', privateBody('only.acme.test', acme)), 201, 'private domain');
    t.like(await taken(cc.admin, { name: 'only.acme.test' }), { title: 'CF-UniquenessError' });
    t.like(await taken(cc.admin, privateBody('only.acme.test', beta)), { title: 'CF-UniquenessError' });
    t.is((await taken(olga, privateBody(`mine.${APPS_DOMAIN}`, acme))).detail, `The domain name "mine.${APPS_DOMAIN}" cannot be created because "${APPS_DOMAIN}" is already reserved by another domain`);
    t.regex((await taken(cc.admin, privateBody('x.only.acme.test', beta))).detail, /"only\.acme\.test" is already reserved/);
    t.regex((await taken(cc.admin, { name: 'acme.test' })).detail, /"only\.acme\.test" is already reserved/, 'nor a shared one around it');
    await must(olga.post('/v3/domains', privateBody('x.only.acme.test', acme)), 201, 'its own org nests its domains');
  });

  test.serial(`${db}: deleting an org deletes its private domains with it`, async (t) => {
    const { cc } = t.context.on[db]!;
    const org = await must(cc.admin.post('/v3/organizations', { name: 'short-lived' }), 201, 'org');
    const domain = await must(cc.admin.post('/v3/domains', privateBody('short-lived.test', org.guid)), 201, 'domain');
    const space = await must(cc.admin.post('/v3/spaces', { name: 's', relationships: { organization: { data: { guid: org.guid } } } }), 201, 'space');
    await must(cc.admin.post('/v3/routes', routeBody('www', domain.guid, space.guid)), 201, 'route');
    t.is((await cc.admin.del(`/v3/organizations/${org.guid}`)).status, 422, 'its spaces (and so the routes) go first');
    t.is((await cc.admin.get(`/v3/domains/${domain.guid}`)).status, 200);
    const route = (await cc.admin.get(`/v3/routes?space_guids=${space.guid}`)).body.resources[0].guid;
    t.is((await cc.admin.del(`/v3/routes/${route}`)).status, 204);
    t.is((await cc.admin.del(`/v3/spaces/${space.guid}`)).status, 204);
    t.is((await cc.admin.del(`/v3/organizations/${org.guid}`)).status, 204);
    t.is((await cc.admin.get(`/v3/domains/${domain.guid}`)).status, 404);
    await must(cc.admin.post('/v3/domains', { name: 'short-lived.test' }), 201, 'the name is free again');
  });
}

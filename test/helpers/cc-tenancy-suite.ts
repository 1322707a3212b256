// Tenancy over real HTTP, the controller a real process with a test stager on the bus: two
// orgs, a developer in each (alice in a1, bob in b1), an auditor beside alice (carol), an org
// manager (olga). Every route the controller serves to users is in one table saying what bob
// gets against alice's things (404, or 403/422 where CF says so) and what carol gets (reads
// 200, writes 403); a route missing from the table fails the test, so no future endpoint
// skips the check. Then lists, log streams, and who may give which role.
// One suite, run by cc-tenancy.test.ts on SQLite and by cc-tenancy-postgres.test.ts on PostgreSQL.
import type { TestFn } from 'ava';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { subjects, type Bus } from '../../kernel/bus/mod.ts';
import type { Deps } from '../../kernel/cloud-controller/api/deps.ts';
import { ApiServer, type AuthMode } from '../../kernel/cloud-controller/http/server.ts';
import { APPS_DOMAIN, ApiClient, multipart, startController, zipOf, type CcSuiteOptions, type Controller } from './cc-controller.ts';
import { Journal, TestStager, testBus } from './cc-peers.ts';
import { eventually } from './component-process.ts';
import { must } from './cc-tenants.ts';
import { TestOsbBroker, THIRD_PARTY } from './cc-services.ts';
import { NatsServer } from './nats-server.ts';

interface Ids {
  org: string;
  space: string;
  otherSpace: string;
  app: string;
  pkg: string;
  build: string;
  droplet: string;
  route: string;
  destination: string;
  event: string;
  role: string;
  alice: string;
  domain: string;
  orgQuota: string;
  spaceQuota: string;
  broker: string;
  offering: string;
  plan: string;
  instance: string;
  binding: string;
}

export interface CcTenancyContext {
  nats: NatsServer;
  cc: Controller;
  stager: TestStager;
  bus: Bus;
  osb: TestOsbBroker;
  alice: ApiClient;
  bob: ApiClient;
  carol: ApiClient;
  olga: ApiClient;
  ids: Ids;
  /** Users' guids by name. */
  users: Record<string, string>;
  zip: Buffer;
}

const errorOf = (body: any) => body?.errors?.[0] as { title: string; detail: string } | undefined;

/** Every route the controller serves: each api module's registrars, on a server that only records. */
async function servedRoutes(): Promise<Array<{ method: string; pattern: string; auth: AuthMode }>> {
  const server = new ApiServer(async () => ({ kind: 'anonymous' }), pino({ level: 'silent' }));
  const dir = fileURLToPath(new URL('../../kernel/cloud-controller/api/', import.meta.url));
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const mod = (await import(`${dir}${file}`)) as Record<string, unknown>;
    for (const [name, fn] of Object.entries(mod)) {
      if (/^register[A-Z]/.test(name) && typeof fn === 'function') fn(server, { store: {} } as unknown as Deps);
    }
  }
  const seen = new Set<string>();
  return server.routes().filter((r) => !seen.has(`${r.method} ${r.pattern}`) && seen.add(`${r.method} ${r.pattern}`));
}

type Body = unknown | ((c: CcTenancyContext) => { body: Buffer; contentType: string });
interface Case {
  path: (i: Ids) => string;
  body?: Body;
  /** What bob (another org's developer) gets against alice's resource. */
  bob: number;
  /** What carol (auditor in alice's space) gets. */
  carol: number;
  /** A live stream: only the status is read. */
  stream?: boolean;
}

const upload = (c: CcTenancyContext) => multipart({}, { field: 'bits', filename: 'app.zip', content: c.zip });
const READ = { bob: 404, carol: 200 };
const WRITE = { bob: 404, carol: 403 };
const ADMIN_ONLY = { bob: 403, carol: 403 };
const GLOBAL = { bob: 200, carol: 200 };

/** Every user-facing route: `METHOD pattern` → the request and what bob and carol get. */
const CASES: Record<string, Case> = {
  // users: a user reads and changes only itself; the list and the rest are the admin's.
  'GET /v3/users': { path: () => '/v3/users', ...ADMIN_ONLY },
  'POST /v3/users': { path: () => '/v3/users', body: { username: 'mallory', password: 'mallory-pw' }, ...ADMIN_ONLY },
  'GET /v3/users/:guid': { path: (i) => `/v3/users/${i.alice}`, bob: 404, carol: 404 },
  'PATCH /v3/users/:guid': { path: (i) => `/v3/users/${i.alice}`, body: { password: 'stolen-password' }, bob: 404, carol: 404 },
  'DELETE /v3/users/:guid': { path: (i) => `/v3/users/${i.alice}`, ...ADMIN_ONLY },
  // orgs and spaces
  'GET /v3/organizations': { path: () => '/v3/organizations', ...GLOBAL },
  'POST /v3/organizations': { path: () => '/v3/organizations', body: { name: 'mine' }, ...ADMIN_ONLY },
  'GET /v3/organizations/:guid': { path: (i) => `/v3/organizations/${i.org}`, ...READ },
  'DELETE /v3/organizations/:guid': { path: (i) => `/v3/organizations/${i.org}`, ...ADMIN_ONLY },
  'GET /v3/spaces': { path: () => '/v3/spaces', ...GLOBAL },
  'POST /v3/spaces': { path: () => '/v3/spaces', body: (c: CcTenancyContext) => ({ name: 'mine', relationships: { organization: { data: { guid: c.ids.org } } } }), bob: 422, carol: 403 },
  'GET /v3/spaces/:guid': { path: (i) => `/v3/spaces/${i.space}`, ...READ },
  'DELETE /v3/spaces/:guid': { path: (i) => `/v3/spaces/${i.space}`, ...WRITE },
  // roles
  'GET /v3/roles': { path: () => '/v3/roles', ...GLOBAL },
  'POST /v3/roles': {
    path: () => '/v3/roles',
    body: (c: CcTenancyContext) => ({ type: 'space_developer', relationships: { user: { data: { username: 'carol' } }, space: { data: { guid: c.ids.space } } } }),
    bob: 422,
    carol: 403,
  },
  'GET /v3/roles/:guid': { path: (i) => `/v3/roles/${i.role}`, ...READ },
  'DELETE /v3/roles/:guid': { path: (i) => `/v3/roles/${i.role}`, ...WRITE },
  // apps
  'GET /v3/apps': { path: () => '/v3/apps', ...GLOBAL },
  'POST /v3/apps': { path: () => '/v3/apps', body: (c: CcTenancyContext) => ({ name: 'intruder', relationships: { space: { data: { guid: c.ids.space } } } }), bob: 422, carol: 403 },
  'GET /v3/apps/:guid': { path: (i) => `/v3/apps/${i.app}`, ...READ },
  'PATCH /v3/apps/:guid': { path: (i) => `/v3/apps/${i.app}`, body: { name: 'stolen' }, ...WRITE },
  'DELETE /v3/apps/:guid': { path: (i) => `/v3/apps/${i.app}`, ...WRITE },
  'POST /v3/apps/:guid/actions/start': { path: (i) => `/v3/apps/${i.app}/actions/start`, ...WRITE },
  'POST /v3/apps/:guid/actions/stop': { path: (i) => `/v3/apps/${i.app}/actions/stop`, ...WRITE },
  'POST /v3/apps/:guid/actions/restart': { path: (i) => `/v3/apps/${i.app}/actions/restart`, body: {}, ...WRITE },
  'GET /v3/apps/:guid/environment_variables': { path: (i) => `/v3/apps/${i.app}/environment_variables`, ...WRITE },
  'PATCH /v3/apps/:guid/environment_variables': { path: (i) => `/v3/apps/${i.app}/environment_variables`, body: { var: { SECRET: null } }, ...WRITE },
  'GET /v3/apps/:guid/env': { path: (i) => `/v3/apps/${i.app}/env`, ...WRITE },
  'GET /v3/apps/:guid/relationships/current_droplet': { path: (i) => `/v3/apps/${i.app}/relationships/current_droplet`, ...READ },
  'PATCH /v3/apps/:guid/relationships/current_droplet': { path: (i) => `/v3/apps/${i.app}/relationships/current_droplet`, body: (c: CcTenancyContext) => ({ data: { guid: c.ids.droplet } }), ...WRITE },
  'GET /v3/apps/:guid/droplets/current': { path: (i) => `/v3/apps/${i.app}/droplets/current`, ...READ },
  'GET /v3/apps/:guid/packages': { path: (i) => `/v3/apps/${i.app}/packages`, ...READ },
  'GET /v3/apps/:guid/builds': { path: (i) => `/v3/apps/${i.app}/builds`, ...READ },
  'GET /v3/apps/:guid/droplets': { path: (i) => `/v3/apps/${i.app}/droplets`, ...READ },
  'GET /v3/apps/:guid/processes': { path: (i) => `/v3/apps/${i.app}/processes`, ...READ },
  'GET /v3/apps/:guid/routes': { path: (i) => `/v3/apps/${i.app}/routes`, ...READ },
  'GET /v3/apps/:guid/processes/:type': { path: (i) => `/v3/apps/${i.app}/processes/web`, ...READ },
  'PATCH /v3/apps/:guid/processes/:type': { path: (i) => `/v3/apps/${i.app}/processes/web`, body: { command: 'evil' }, ...WRITE },
  'POST /v3/apps/:guid/processes/:type/actions/scale': { path: (i) => `/v3/apps/${i.app}/processes/web/actions/scale`, body: { instances: 9 }, ...WRITE },
  'GET /v3/apps/:guid/processes/:type/stats': { path: (i) => `/v3/apps/${i.app}/processes/web/stats`, ...READ },
  'GET /v3/apps/:guid/logs/recent': { path: (i) => `/v3/apps/${i.app}/logs/recent`, ...READ },
  'GET /v3/apps/:guid/logs/stream': { path: (i) => `/v3/apps/${i.app}/logs/stream`, ...READ, stream: true },
  // processes
  'GET /v3/processes': { path: () => '/v3/processes', ...GLOBAL },
  'GET /v3/processes/:guid': { path: (i) => `/v3/processes/${i.app}`, ...READ },
  'PATCH /v3/processes/:guid': { path: (i) => `/v3/processes/${i.app}`, body: { command: 'evil' }, ...WRITE },
  'POST /v3/processes/:guid/actions/scale': { path: (i) => `/v3/processes/${i.app}/actions/scale`, body: { instances: 9 }, ...WRITE },
  'GET /v3/processes/:guid/stats': { path: (i) => `/v3/processes/${i.app}/stats`, ...READ },
  // packages: the bits are the developers' (CF: download is for space developers)
  'GET /v3/packages': { path: () => '/v3/packages', ...GLOBAL },
  'POST /v3/packages': { path: () => '/v3/packages', body: (c: CcTenancyContext) => ({ type: 'bits', relationships: { app: { data: { guid: c.ids.app } } } }), bob: 422, carol: 403 },
  'GET /v3/packages/:guid': { path: (i) => `/v3/packages/${i.pkg}`, ...READ },
  'DELETE /v3/packages/:guid': { path: (i) => `/v3/packages/${i.pkg}`, ...WRITE },
  'POST /v3/packages/:guid/upload': { path: (i) => `/v3/packages/${i.pkg}/upload`, body: upload, ...WRITE },
  'GET /v3/packages/:guid/download': { path: (i) => `/v3/packages/${i.pkg}/download`, ...WRITE },
  // Not space-scoped: it answers only which sha1s the blobstore holds.
  'POST /v3/resource_match': { path: () => '/v3/resource_match', body: { resources: [] }, ...GLOBAL },
  // builds and droplets
  'GET /v3/builds': { path: () => '/v3/builds', ...GLOBAL },
  'POST /v3/builds': { path: () => '/v3/builds', body: (c: CcTenancyContext) => ({ package: { guid: c.ids.pkg } }), bob: 422, carol: 403 },
  'GET /v3/builds/:guid': { path: (i) => `/v3/builds/${i.build}`, ...READ },
  'GET /v3/droplets': { path: () => '/v3/droplets', ...GLOBAL },
  'GET /v3/droplets/:guid': { path: (i) => `/v3/droplets/${i.droplet}`, ...READ },
  'DELETE /v3/droplets/:guid': { path: (i) => `/v3/droplets/${i.droplet}`, ...WRITE },
  'GET /v3/droplets/:guid/download': { path: (i) => `/v3/droplets/${i.droplet}/download`, ...WRITE },
  // domains are global: everyone reads them, admins change them
  'GET /v3/domains': { path: () => '/v3/domains', ...GLOBAL },
  'POST /v3/domains': { path: () => '/v3/domains', body: { name: 'mine.example.com' }, ...ADMIN_ONLY },
  'GET /v3/domains/:guid': { path: (i) => `/v3/domains/${i.domain}`, ...GLOBAL },
  'DELETE /v3/domains/:guid': { path: (i) => `/v3/domains/${i.domain}`, ...ADMIN_ONLY },
  'GET /v3/domains/:guid/route_reservations': { path: (i) => `/v3/domains/${i.domain}/route_reservations?host=alice`, ...GLOBAL },
  // routes
  'GET /v3/routes': { path: () => '/v3/routes', ...GLOBAL },
  'POST /v3/routes': { path: () => '/v3/routes', body: (c: CcTenancyContext) => ({ host: 'intruder', relationships: { domain: { data: { guid: c.ids.domain } }, space: { data: { guid: c.ids.space } } } }), bob: 422, carol: 403 },
  'GET /v3/routes/:guid': { path: (i) => `/v3/routes/${i.route}`, ...READ },
  'DELETE /v3/routes/:guid': { path: (i) => `/v3/routes/${i.route}`, ...WRITE },
  'GET /v3/routes/:guid/destinations': { path: (i) => `/v3/routes/${i.route}/destinations`, ...READ },
  'POST /v3/routes/:guid/destinations': { path: (i) => `/v3/routes/${i.route}/destinations`, body: (c: CcTenancyContext) => ({ destinations: [{ app: { guid: c.ids.app } }] }), ...WRITE },
  'PATCH /v3/routes/:guid/destinations': { path: (i) => `/v3/routes/${i.route}/destinations`, body: { destinations: [] }, ...WRITE },
  'DELETE /v3/routes/:guid/destinations/:dest': { path: (i) => `/v3/routes/${i.route}/destinations/${i.destination}`, ...WRITE },
  // quotas: org quotas are the admin's, space quotas the org managers'; readable with their org or space
  'GET /v3/organization_quotas': { path: () => '/v3/organization_quotas', ...GLOBAL },
  'POST /v3/organization_quotas': { path: () => '/v3/organization_quotas', body: { name: 'mine' }, ...ADMIN_ONLY },
  'GET /v3/organization_quotas/:guid': { path: (i) => `/v3/organization_quotas/${i.orgQuota}`, ...READ },
  'PATCH /v3/organization_quotas/:guid': { path: (i) => `/v3/organization_quotas/${i.orgQuota}`, body: { apps: { total_memory_in_mb: 1 } }, ...ADMIN_ONLY },
  'DELETE /v3/organization_quotas/:guid': { path: (i) => `/v3/organization_quotas/${i.orgQuota}`, ...ADMIN_ONLY },
  'POST /v3/organization_quotas/:guid/relationships/organizations': {
    path: (i) => `/v3/organization_quotas/${i.orgQuota}/relationships/organizations`,
    body: (c: CcTenancyContext) => ({ data: [{ guid: c.ids.org }] }),
    ...ADMIN_ONLY,
  },
  'GET /v3/space_quotas': { path: () => '/v3/space_quotas', ...GLOBAL },
  'POST /v3/space_quotas': { path: () => '/v3/space_quotas', body: (c: CcTenancyContext) => ({ name: 'mine', relationships: { organization: { data: { guid: c.ids.org } } } }), bob: 422, carol: 403 },
  'GET /v3/space_quotas/:guid': { path: (i) => `/v3/space_quotas/${i.spaceQuota}`, ...READ },
  'PATCH /v3/space_quotas/:guid': { path: (i) => `/v3/space_quotas/${i.spaceQuota}`, body: { apps: { total_instances: 0 } }, ...WRITE },
  'DELETE /v3/space_quotas/:guid': { path: (i) => `/v3/space_quotas/${i.spaceQuota}`, ...WRITE },
  'POST /v3/space_quotas/:guid/relationships/spaces': { path: (i) => `/v3/space_quotas/${i.spaceQuota}/relationships/spaces`, body: (c: CcTenancyContext) => ({ data: [{ guid: c.ids.space }] }), ...WRITE },
  'DELETE /v3/space_quotas/:guid/relationships/spaces/:space_guid': { path: (i) => `/v3/space_quotas/${i.spaceQuota}/relationships/spaces/${i.space}`, ...WRITE },
  // audit events: readable where they happened (org-level ones by the org's managers)
  'GET /v3/audit_events': { path: () => '/v3/audit_events', ...GLOBAL },
  'GET /v3/audit_events/:guid': { path: (i) => `/v3/audit_events/${i.event}`, ...READ },
  // the marketplace: brokers are the admins'; offerings and plans everyone's (no plan visibility)
  'GET /v3/service_brokers': { path: () => '/v3/service_brokers', ...ADMIN_ONLY },
  'POST /v3/service_brokers': { path: () => '/v3/service_brokers', body: { name: 'mine', url: 'http://127.0.0.1:1', authentication: { type: 'basic', credentials: { username: 'u', password: 'p' } } }, ...ADMIN_ONLY },
  'GET /v3/service_brokers/:guid': { path: (i) => `/v3/service_brokers/${i.broker}`, ...ADMIN_ONLY },
  'PATCH /v3/service_brokers/:guid': { path: (i) => `/v3/service_brokers/${i.broker}`, body: { name: 'stolen' }, ...ADMIN_ONLY },
  'DELETE /v3/service_brokers/:guid': { path: (i) => `/v3/service_brokers/${i.broker}`, ...ADMIN_ONLY },
  'GET /v3/service_offerings': { path: () => '/v3/service_offerings', ...GLOBAL },
  'GET /v3/service_offerings/:guid': { path: (i) => `/v3/service_offerings/${i.offering}`, ...GLOBAL },
  'GET /v3/service_plans': { path: () => '/v3/service_plans', ...GLOBAL },
  'GET /v3/service_plans/:guid': { path: (i) => `/v3/service_plans/${i.plan}`, ...GLOBAL },
  // service instances and bindings live in a space; credentials are for its developers
  'GET /v3/service_instances': { path: () => '/v3/service_instances', ...GLOBAL },
  'POST /v3/service_instances': { path: () => '/v3/service_instances', body: (c: CcTenancyContext) => ({ type: 'user-provided', name: 'intruder', relationships: { space: { data: { guid: c.ids.space } } } }), bob: 422, carol: 403 },
  'GET /v3/service_instances/:guid': { path: (i) => `/v3/service_instances/${i.instance}`, ...READ },
  'PATCH /v3/service_instances/:guid': { path: (i) => `/v3/service_instances/${i.instance}`, body: { name: 'stolen' }, ...WRITE },
  'DELETE /v3/service_instances/:guid': { path: (i) => `/v3/service_instances/${i.instance}`, ...WRITE },
  'GET /v3/service_instances/:guid/credentials': { path: (i) => `/v3/service_instances/${i.instance}/credentials`, ...WRITE },
  'GET /v3/service_credential_bindings': { path: () => '/v3/service_credential_bindings', ...GLOBAL },
  'POST /v3/service_credential_bindings': {
    path: () => '/v3/service_credential_bindings',
    body: (c: CcTenancyContext) => ({ type: 'key', name: 'stolen', relationships: { service_instance: { data: { guid: c.ids.instance } } } }),
    bob: 422,
    carol: 403,
  },
  'GET /v3/service_credential_bindings/:guid': { path: (i) => `/v3/service_credential_bindings/${i.binding}`, ...READ },
  'GET /v3/service_credential_bindings/:guid/details': { path: (i) => `/v3/service_credential_bindings/${i.binding}/details`, ...WRITE },
  'DELETE /v3/service_credential_bindings/:guid': { path: (i) => `/v3/service_credential_bindings/${i.binding}`, ...WRITE },
};

async function attempt(c: CcTenancyContext, api: ApiClient, method: string, kase: Case): Promise<{ status: number; body: any }> {
  const path = kase.path(c.ids);
  if (kase.stream) {
    const abort = new AbortController();
    const res = await fetch(`${api.baseUrl}${path}`, { headers: { authorization: `bearer ${api.token}` }, signal: abort.signal });
    const body = res.status === 200 ? undefined : await res.json();
    abort.abort();
    return { status: res.status, body };
  }
  const raw = typeof kase.body === 'function' ? (kase.body as (c: CcTenancyContext) => unknown)(c) : kase.body;
  const form = raw as { body?: unknown; contentType?: string } | undefined;
  if (form?.contentType && Buffer.isBuffer(form.body)) return api.request(method, path, form.body, { 'content-type': form.contentType });
  return api.request(method, path, raw ?? (method === 'GET' || method === 'DELETE' ? undefined : {}));
}

/** Registers the suite on `test`: its world before (the controller on `options.dbUrl()`), stopped after, and the cases. */
export function registerCcTenancySuite(test: TestFn<CcTenancyContext>, options: CcSuiteOptions): void {
  test.before(async (t) => {
    const nats = await NatsServer.start();
    const stager = await TestStager.start(nats, new Journal());
    const bus = await testBus(nats);
    const cc = await startController(nats, { db: { url: await options.dbUrl() } });
    const admin = cc.admin;
    const org = await must(admin.post('/v3/organizations', { name: 'org-a' }), 201, 'org A');
    const orgB = await must(admin.post('/v3/organizations', { name: 'org-b' }), 201, 'org B');
    const space = await must(admin.post('/v3/spaces', { name: 'a1', relationships: { organization: { data: { guid: org.guid } } } }), 201, 'space a1');
    const otherSpace = await must(admin.post('/v3/spaces', { name: 'b1', relationships: { organization: { data: { guid: orgB.guid } } } }), 201, 'space b1');
    const users: Record<string, ApiClient> = {};
    const guids: Record<string, string> = {};
    for (const name of ['alice', 'bob', 'carol', 'olga', 'erin']) {
      guids[name] = (await must(admin.post('/v3/users', { username: name, password: `${name}-password` }), 201, `user ${name}`)).guid;
      users[name] = cc.anonymous.withToken(await cc.anonymous.login(name, `${name}-password`));
    }
    const role = (type: string, user: string, target: { organization?: string; space?: string }) =>
      must(
        admin.post('/v3/roles', {
          type,
          relationships: { user: { data: { guid: guids[user] } }, ...(target.organization ? { organization: { data: { guid: target.organization } } } : { space: { data: { guid: target.space } } }) },
        }),
        201,
        `${type} for ${user}`,
      );
    await role('organization_user', 'alice', { organization: org.guid });
    const aliceRole = await role('space_developer', 'alice', { space: space.guid });
    await role('organization_user', 'bob', { organization: orgB.guid });
    await role('space_developer', 'bob', { space: otherSpace.guid });
    await role('organization_user', 'carol', { organization: org.guid });
    await role('space_auditor', 'carol', { space: space.guid });
    await role('organization_manager', 'olga', { organization: org.guid });

    // Alice's things: an app with a secret, its bits, a build and droplet, a route, a crash.
    const alice = users.alice!;
    const domain = (await alice.get(`/v3/domains?names=${APPS_DOMAIN}`)).body.resources[0].guid;
    const app = await must(alice.post('/v3/apps', { name: 'secret-app', relationships: { space: { data: { guid: space.guid } } }, environment_variables: { SECRET: 's3cret' } }), 201, 'app');
    const zip = await zipOf({ 'server.js': 'require("http").createServer().listen(process.env.PORT)' });
    const pkg = await must(alice.post('/v3/packages', { type: 'bits', relationships: { app: { data: { guid: app.guid } } } }), 201, 'package');
    const form = multipart({}, { field: 'bits', filename: 'app.zip', content: zip });
    await must(alice.post(`/v3/packages/${pkg.guid}/upload`, form.body, { 'content-type': form.contentType }), 200, 'upload');
    const build = await must(alice.post('/v3/builds', { package: { guid: pkg.guid } }), 201, 'build');
    const staged = await eventually(async () => {
      const b = (await alice.get(`/v3/builds/${build.guid}`)).body;
      return b.state === 'STAGED' ? b : undefined;
    }, 10_000, 'the build stages');
    await must(alice.patch(`/v3/apps/${app.guid}/relationships/current_droplet`, { data: { guid: staged.droplet.guid } }), 200, 'current droplet');
    const route = await must(alice.post('/v3/routes', { host: 'alice', relationships: { domain: { data: { guid: domain } }, space: { data: { guid: space.guid } } } }), 201, 'route');
    const dests = await must(alice.post(`/v3/routes/${route.guid}/destinations`, { destinations: [{ app: { guid: app.guid } }] }), 200, 'destination');
    bus.publish(subjects.dropletExited, { app_id: app.guid, version: app.guid, instance_id: 'i-1', index: 0, reason: 'CRASHED', exit_status: 1 });
    const event = await eventually(async () => (await alice.get(`/v3/audit_events?target_guids=${app.guid}`)).body.resources[0], 5000, 'the crash event');
    // Quotas on alice's org and space, unlimited: they are there to be seen, not to bite.
    const orgQuota = await must(admin.post('/v3/organization_quotas', { name: 'a-quota', relationships: { organizations: { data: [{ guid: org.guid }] } } }), 201, 'org quota');
    const spaceQuota = await must(
      admin.post('/v3/space_quotas', { name: 'a1-quota', relationships: { organization: { data: { guid: org.guid } }, spaces: { data: [{ guid: space.guid }] } } }),
      201,
      'space quota',
    );
    // A third-party broker for the marketplace routes; alice's user-provided instance, bound to her app.
    const osb = await TestOsbBroker.start();
    const broker = await must(
      admin.post('/v3/service_brokers', { name: 'tp', url: osb.url, authentication: { type: 'basic', credentials: { username: THIRD_PARTY.user, password: THIRD_PARTY.password } } }),
      201,
      'broker',
    );
    const offering = (await admin.get(`/v3/service_offerings?service_broker_guids=${broker.guid}`)).body.resources[0];
    const plan = (await admin.get(`/v3/service_plans?service_offering_guids=${offering.guid}`)).body.resources[0];
    const instance = await must(alice.post('/v3/service_instances', { type: 'user-provided', name: 'ups', credentials: { password: 's3cret' }, relationships: { space: { data: { guid: space.guid } } } }), 201, 'instance');
    const binding = await must(
      alice.post('/v3/service_credential_bindings', { type: 'app', relationships: { service_instance: { data: { guid: instance.guid } }, app: { data: { guid: app.guid } } } }),
      201,
      'binding',
    );

    t.context = {
      nats,
      cc,
      stager,
      bus,
      osb,
      alice,
      bob: users.bob!,
      carol: users.carol!,
      olga: users.olga!,
      zip,
      users: guids,
      ids: {
        org: org.guid,
        space: space.guid,
        otherSpace: otherSpace.guid,
        app: app.guid,
        pkg: pkg.guid,
        build: build.guid,
        droplet: staged.droplet.guid,
        route: route.guid,
        destination: dests.destinations[0].guid,
        event: event.guid,
        role: aliceRole.guid,
        alice: guids.alice!,
        domain,
        orgQuota: orgQuota.guid,
        spaceQuota: spaceQuota.guid,
        broker: broker.guid,
        offering: offering.guid,
        plan: plan.guid,
        instance: instance.guid,
        binding: binding.guid,
      },
    };
  });

  test.after.always(async (t) => {
    await t.context.cc?.kill();
    await t.context.stager?.close();
    await t.context.bus?.close();
    await t.context.osb?.close();
    await t.context.nats?.stop();
  });

  test.serial('every user-facing route is in the table, and the table has no route that is gone', async (t) => {
    const served = (await servedRoutes()).filter((r) => r.auth === 'user' || r.auth === 'admin').map((r) => `${r.method} ${r.pattern}`);
    const missing = served.filter((k) => !(k in CASES));
    t.deepEqual(missing, [], 'routes with no tenancy case: add them to CASES');
    t.deepEqual(Object.keys(CASES).filter((k) => !served.includes(k)), [], 'cases for routes the controller no longer serves');
    t.true(served.length > 60, `${served.length} routes found`);
  });

  for (const who of ['bob', 'carol'] as const) {
    test.serial(`${who} against alice's things: every route answers as the table says`, async (t) => {
      const c = t.context;
      const api = c[who];
      const wrong: string[] = [];
      for (const [key, kase] of Object.entries(CASES)) {
        const method = key.split(' ')[0]!;
        const res = await attempt(c, api, method, kase);
        if (res.status !== kase[who]) wrong.push(`${key}: ${res.status} (expected ${kase[who]}) ${JSON.stringify(res.body).slice(0, 200)}`);
        else if (res.status === 403) t.is(errorOf(res.body)?.title, 'CF-NotAuthorized', key);
        else if (res.status === 404) t.is(errorOf(res.body)?.title, 'CF-ResourceNotFound', key);
      }
      t.deepEqual(wrong, []);
      // Nothing of alice's changed.
      const app = (await c.alice.get(`/v3/apps/${c.ids.app}`)).body;
      t.is(app.name, 'secret-app');
      t.is(app.state, 'STOPPED');
      t.deepEqual((await c.alice.get(`/v3/apps/${c.ids.app}/environment_variables`)).body.var, { SECRET: 's3cret' });
      t.is((await c.alice.get(`/v3/packages/${c.ids.pkg}`)).body.state, 'READY');
      t.is((await c.alice.get(`/v3/apps/${c.ids.app}/processes/web`)).body.instances, 1);
      t.is((await c.alice.get(`/v3/routes/${c.ids.route}`)).body.destinations.length, 1);
      t.is((await c.alice.get(`/v3/roles/${c.ids.role}`)).status, 200);
      const quota = (await c.alice.get(`/v3/space_quotas/${c.ids.spaceQuota}`)).body;
      t.like(quota, { apps: { total_instances: null }, relationships: { spaces: { data: [{ guid: c.ids.space }] } } });
    });
  }

  test.serial("bob's lists show none of alice's things; carol's show them", async (t) => {
    const { bob, carol, ids } = t.context;
    const alices = new Set(Object.values(ids).filter((g) => g !== ids.domain && g !== ids.otherSpace));
    for (const list of ['apps', 'routes', 'packages', 'processes', 'builds', 'droplets', 'audit_events', 'spaces', 'organizations', 'roles', 'organization_quotas', 'space_quotas', 'service_instances', 'service_credential_bindings']) {
      const res = await bob.get(`/v3/${list}?per_page=5000`);
      t.is(res.status, 200, list);
      const leaked = res.body.resources.filter((r: any) => alices.has(r.guid) || r.relationships?.space?.data?.guid === ids.space || r.relationships?.organization?.data?.guid === ids.org);
      t.deepEqual(leaked, [], `bob's /v3/${list}`);
    }
    // Asking by guid or space is no way around it.
    t.is((await bob.get(`/v3/apps?guids=${ids.app}`)).body.pagination.total_results, 0);
    t.is((await bob.get(`/v3/apps?space_guids=${ids.space}`)).body.pagination.total_results, 0);
    t.is((await bob.get(`/v3/audit_events?target_guids=${ids.app}`)).body.pagination.total_results, 0);
    t.is((await bob.get(`/v3/routes?app_guids=${ids.app}`)).body.pagination.total_results, 0);
    t.true((await bob.get('/v3/spaces')).body.resources.some((s: any) => s.guid === ids.otherSpace), 'bob sees his own space');

    for (const [list, guid] of [['apps', ids.app], ['routes', ids.route], ['packages', ids.pkg], ['builds', ids.build], ['droplets', ids.droplet], ['audit_events', ids.event], ['spaces', ids.space], ['organizations', ids.org], ['roles', ids.role], ['organization_quotas', ids.orgQuota], ['space_quotas', ids.spaceQuota], ['service_instances', ids.instance], ['service_credential_bindings', ids.binding]] as const) {
      t.true((await carol.get(`/v3/${list}?per_page=5000`)).body.resources.some((r: any) => r.guid === guid), `carol's /v3/${list}`);
    }
    t.false((await carol.get('/v3/spaces')).body.resources.some((s: any) => s.guid === ids.otherSpace));
  });

  test.serial("bob cannot follow alice's logs, recent or live", async (t) => {
    const { bob, ids } = t.context;
    const recent = await bob.get(`/v3/apps/${ids.app}/logs/recent`);
    t.is(recent.status, 404);
    t.is(errorOf(recent.body)?.detail, 'App not found');
    const stream = await fetch(`${bob.baseUrl}/v3/apps/${ids.app}/logs/stream`, { headers: { authorization: `bearer ${bob.token}` } });
    t.is(stream.status, 404);
    t.regex(stream.headers.get('content-type') ?? '', /json/);
    await stream.text();
  });

  test.serial('roles: an org manager gives space roles in its org only; a space role needs an org role first', async (t) => {
    const { olga, carol, cc, ids, users } = t.context;
    const erin = users.erin!;
    const bobGuid = users.bob!;
    const give = (api: ApiClient, type: string, user: string, target: { organization?: string; space?: string }) =>
      api.post('/v3/roles', {
        type,
        relationships: { user: { data: { guid: user } }, ...(target.organization ? { organization: { data: { guid: target.organization } } } : { space: { data: { guid: target.space } } }) },
      });

    const noOrgRole = await give(olga, 'space_developer', erin, { space: ids.space });
    t.is(noOrgRole.status, 422);
    t.regex(errorOf(noOrgRole.body)!.detail, /do not have a role in that space's organization/);
    t.is((await give(olga, 'organization_user', erin, { organization: ids.org })).status, 201, 'the org manager adds a user to its org');
    const given = await give(olga, 'space_auditor', erin, { space: ids.space });
    t.is(given.status, 201);
    t.like(given.body, { type: 'space_auditor', relationships: { user: { data: { guid: erin } }, space: { data: { guid: ids.space } }, organization: { data: null } } });
    const dup = await give(olga, 'space_auditor', erin, { space: ids.space });
    t.is(dup.status, 422);
    t.is(errorOf(dup.body)?.title, 'CF-UniquenessError');

    const elsewhere = await give(olga, 'space_developer', bobGuid, { space: ids.otherSpace });
    t.is(elsewhere.status, 422, "a space of another org does not exist for olga");
    t.is((await give(olga, 'organization_manager', erin, { organization: (await cc.admin.get('/v3/organizations?names=org-b')).body.resources[0].guid })).status, 422);
    t.is((await give(carol, 'space_auditor', erin, { space: ids.space })).status, 403, 'an auditor gives no roles');

    // Olga sees the spaces of her org and creates and deletes one; erin now reads a1.
    const erinApi = cc.anonymous.withToken(await cc.anonymous.login('erin', 'erin-password'));
    t.is((await erinApi.get(`/v3/apps/${ids.app}`)).status, 200);
    t.is((await erinApi.patch(`/v3/apps/${ids.app}`, { name: 'x' })).status, 403);
    t.true((await olga.get('/v3/spaces')).body.resources.some((s: any) => s.guid === ids.space));
    const made = await olga.post('/v3/spaces', { name: 'a2', relationships: { organization: { data: { guid: ids.org } } } });
    t.is(made.status, 201);
    t.is((await olga.del(`/v3/spaces/${made.body.guid}`)).status, 204);

    // The org role stays while space roles in the org remain; then both go.
    const orgRole = (await olga.get(`/v3/roles?types=organization_user&user_guids=${erin}&organization_guids=${ids.org}&include=user`)).body;
    t.is(orgRole.included.users[0].username, 'erin');
    t.is((await olga.del(`/v3/roles/${orgRole.resources[0].guid}`)).status, 422);
    t.is((await olga.del(`/v3/roles/${given.body.guid}`)).status, 204);
    t.is((await olga.del(`/v3/roles/${orgRole.resources[0].guid}`)).status, 204);
    t.is((await erinApi.get(`/v3/apps/${ids.app}`)).status, 404, 'without the role, the app is gone for erin');
  });
}

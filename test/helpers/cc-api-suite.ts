// The cloud controller's REST API over real HTTP, the controller started as a real process
// against a real nats-server: authentication and tokens, users, apps (filters, paging,
// env), routes (taken and reserved hosts), packages (uploads, unsafe zips, size limit),
// resource matching, the bulk endpoint's own credential, and the v3 error envelope for
// every bad input. No DEA or stager here (cc-push.test.ts drives those). One suite, run by
// cc-api.test.ts on SQLite and by cc-api-postgres.test.ts on PostgreSQL.
import type { TestFn } from 'ava';
import { SignJWT } from 'jose';
import { createHash } from 'node:crypto';
import yauzl from 'yauzl';
import { ISSUER } from '../../kernel/cloud-controller/auth/tokens.ts';
import { ADMIN, APPS_DOMAIN, ApiClient, BULK, multipart, renameInZip, startController, SYSTEM_DOMAIN, zipOf, type Controller } from './cc-controller.ts';
import { eventually } from './component-process.ts';
import { NatsServer } from './nats-server.ts';

export interface CcApiContext {
  nats: NatsServer;
  cc: Controller;
  appsDomain: string;
  systemDomain: string;
}

export interface CcApiSuiteOptions {
  /** The controller's `db.url`: an empty database, made when the suite starts. */
  dbUrl: () => Promise<string>;
}

const sha1 = (s: string | Buffer) => createHash('sha1').update(s).digest('hex');
const errorOf = (body: any) => body?.errors?.[0] as { code: number; title: string; detail: string } | undefined;

async function createApp(api: ApiClient, name: string, extra: Record<string, unknown> = {}): Promise<any> {
  const res = await api.post('/v3/apps', { name, ...extra });
  if (res.status !== 201) throw new Error(`create app ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function uploadZip(api: ApiClient, appGuid: string, zip: Buffer | undefined, resources?: unknown[]): Promise<{ pkg: any; res: any }> {
  const pkg = (await api.post('/v3/packages', { type: 'bits', relationships: { app: { data: { guid: appGuid } } } })).body;
  const form = multipart(resources ? { resources: JSON.stringify(resources) } : {}, zip ? { field: 'bits', filename: 'app.zip', content: zip } : undefined);
  const res = await api.post(`/v3/packages/${pkg.guid}/upload`, form.body, { 'content-type': form.contentType });
  return { pkg, res };
}

async function zipNames(buf: Buffer): Promise<Record<string, string>> {
  const zip = await yauzl.fromBufferPromise(buf, { lazyEntries: false });
  const out: Record<string, string> = {};
  for await (const e of zip.eachEntry()) {
    const chunks: Buffer[] = [];
    for await (const c of (await zip.openReadStreamPromise(e)) as AsyncIterable<Buffer>) chunks.push(c);
    out[e.fileName] = Buffer.concat(chunks).toString();
  }
  return out;
}

/** Registers the API suite on `test`: a controller before, killed after, and the cases. */
export function registerCcApiSuite(test: TestFn<CcApiContext>, options: CcApiSuiteOptions): void {
  test.before(async (t) => {
    const nats = await NatsServer.start();
    const cc = await startController(nats, { max_upload_mb: 1, staging: { timeout_s: 5 }, db: { url: await options.dbUrl() } });
    const domains = (await cc.admin.get('/v3/domains')).body.resources as Array<{ guid: string; name: string }>;
    t.context = {
      nats,
      cc,
      appsDomain: domains.find((d) => d.name === APPS_DOMAIN)!.guid,
      systemDomain: domains.find((d) => d.name === SYSTEM_DOMAIN)!.guid,
    };
  });

  test.after.always(async (t) => {
    await t.context.cc?.kill();
    await t.context.nats?.stop();
  });

  test('the root, /v3 and /v3/info answer without a token', async (t) => {
    const { cc } = t.context;
    const root = await cc.anonymous.get('/');
    t.is(root.status, 200);
    t.is(root.body.links.cloud_controller_v3.href, `${cc.url}/v3`);
    t.is(root.body.links.token.href, `${cc.url}/oauth/token`);
    const v3 = await cc.anonymous.get('/v3');
    t.is(v3.body.links.apps.href, `${cc.url}/v3/apps`);
    const info = await cc.anonymous.get('/v3/info');
    t.is(info.body.name, 'ingot');
    t.deepEqual(info.body.custom, { system_domain: SYSTEM_DOMAIN, apps_domain: APPS_DOMAIN, default_stack: 'bookworm', max_upload_mb: 1 });
  });

  test('tokens: password and refresh grants; missing, bad and expired tokens are 401', async (t) => {
    const { cc } = t.context;
    const form = (o: Record<string, string>) => [new URLSearchParams(o).toString(), { 'content-type': 'application/x-www-form-urlencoded' }] as const;
    const good = await cc.anonymous.post('/oauth/token', ...form({ grant_type: 'password', username: ADMIN.user, password: ADMIN.password }));
    t.is(good.status, 200);
    t.is(good.body.token_type, 'bearer');
    t.true(good.body.expires_in > 0);
    t.regex(good.body.scope, /cloud_controller\.admin/);
    const bad = await cc.anonymous.post('/oauth/token', ...form({ grant_type: 'password', username: ADMIN.user, password: 'wrong-password' }));
    t.is(bad.status, 401);
    t.is(bad.body.error, 'unauthorized');
    t.is(errorOf(bad.body)?.title, 'CF-NotAuthenticated');
    const refreshed = await cc.anonymous.post('/oauth/token', { grant_type: 'refresh_token', refresh_token: good.body.refresh_token });
    t.is(refreshed.status, 200);
    t.is((await cc.anonymous.withToken(refreshed.body.access_token).get('/v3/apps')).status, 200);
    t.is((await cc.anonymous.post('/oauth/token', { grant_type: 'refresh_token', refresh_token: good.body.access_token })).status, 401, 'an access token is no refresh token');
    t.is((await cc.anonymous.post('/oauth/token', { grant_type: 'magic' })).status, 422);

    const none = await cc.anonymous.get('/v3/apps');
    t.is(none.status, 401);
    t.is(errorOf(none.body)?.title, 'CF-NotAuthenticated');
    t.regex(none.headers.get('www-authenticate') ?? '', /Bearer/);
    const garbage = await cc.anonymous.withToken('not-a-jwt').get('/v3/apps');
    t.is(garbage.status, 401);
    t.is(errorOf(garbage.body)?.title, 'CF-InvalidAuthToken');
    const adminGuid = (await cc.admin.get(`/v3/users?usernames=${ADMIN.user}`)).body.resources[0].guid;
    const expired = await new SignJWT({ typ: 'access', user_name: ADMIN.user, scope: ['cloud_controller.admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(adminGuid)
      .setIssuer(ISSUER)
      .setIssuedAt(Math.floor(Date.now() / 1000) - 3600)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(cc.jwtSecret));
    const old = await cc.anonymous.withToken(expired).get('/v3/apps');
    t.is(old.status, 401);
    t.regex(errorOf(old.body)!.detail, /expired/);
  });

  test('users: the admin creates users; others may not; bad bodies name the field', async (t) => {
    const { cc } = t.context;
    const created = await cc.admin.post('/v3/users', { username: 'dev1', password: 'dev1-password' });
    t.is(created.status, 201);
    t.is(created.body.username, 'dev1');
    t.false(created.body.admin);
    t.false('password_hash' in created.body);
    const dup = await cc.admin.post('/v3/users', { username: 'dev1', password: 'dev1-password' });
    t.is(dup.status, 422);
    t.is(errorOf(dup.body)?.title, 'CF-UniquenessError');
    const short = await cc.admin.post('/v3/users', { username: 'dev2', password: 'short' });
    t.is(short.status, 422);
    t.regex(errorOf(short.body)!.detail, /^password: /);
    const dev = cc.anonymous.withToken(await cc.anonymous.login('dev1', 'dev1-password'));
    const forbidden = await dev.post('/v3/users', { username: 'dev3', password: 'dev3-password' });
    t.is(forbidden.status, 403);
    t.is(errorOf(forbidden.body)?.title, 'CF-NotAuthorized');
    t.is((await dev.get('/v3/users')).status, 403);
    t.is((await dev.get(`/v3/users/${created.body.guid}`)).status, 200, 'a user reads itself');
    t.is((await dev.post('/v3/domains', { name: 'x.example.com' })).status, 403);
    t.is((await dev.post('/v3/apps', { name: 'devs-app' })).status, 422, 'a user without a role sees no space to push into');
    const space = (await cc.admin.get('/v3/spaces')).body.resources[0];
    const user = { data: { guid: created.body.guid } };
    t.is((await cc.admin.post('/v3/roles', { type: 'organization_user', relationships: { user, organization: { data: { guid: space.relationships.organization.data.guid } } } })).status, 201);
    t.is((await cc.admin.post('/v3/roles', { type: 'space_developer', relationships: { user, space: { data: { guid: space.guid } } } })).status, 201);
    t.is((await dev.post('/v3/apps', { name: 'devs-app' })).status, 201, 'a space developer pushes apps');
    t.is((await cc.admin.del(`/v3/users/${created.body.guid}`)).status, 204);
    t.is((await dev.get('/v3/apps')).status, 401, 'a deleted user is locked out at once');
  });

  test('apps: create, get, filter, page, update, delete — and the errors on the way', async (t) => {
    const { cc } = t.context;
    const api = cc.admin;
    const a = await createApp(api, 'page-a', { environment_variables: { GREETING: 'hi', N: 3 } });
    await createApp(api, 'page-b');
    await createApp(api, 'page-c');
    t.is(a.state, 'STOPPED');
    t.is(a.lifecycle.data.stack, 'bookworm');
    t.is(a.links.self.href, `${cc.url}/v3/apps/${a.guid}`);
    t.truthy(a.relationships.space.data.guid, 'apps land in the default space');

    const bad = await api.post('/v3/apps', { name: '', lifecycle: { type: 'docker' }, instances: 2 });
    t.is(bad.status, 422);
    t.is(errorOf(bad.body)?.title, 'CF-UnprocessableEntity');
    t.regex(errorOf(bad.body)!.detail, /name: /);
    t.regex(errorOf(bad.body)!.detail, /lifecycle\.type: /);
    t.regex(errorOf(bad.body)!.detail, /Unknown field\(s\): 'instances'/);
    t.is((await api.post('/v3/apps', '{"name": ', { 'content-type': 'application/json' })).status, 400, 'JSON that does not parse');
    const dup = await api.post('/v3/apps', { name: 'page-a' });
    t.is(dup.status, 422);
    t.regex(errorOf(dup.body)!.detail, /already exists/);
    t.is((await api.post('/v3/apps', { name: 'x', relationships: { space: { data: { guid: 'nope' } } } })).status, 422);

    const missing = await api.get('/v3/apps/00000000-0000-0000-0000-000000000000');
    t.is(missing.status, 404);
    t.deepEqual(missing.body, { errors: [{ code: 10010, title: 'CF-ResourceNotFound', detail: 'App not found' }] });
    t.is((await api.post('/v3/apps/nope/actions/start')).status, 404);

    const byName = await api.get('/v3/apps?names=page-a,page-c&order_by=name');
    t.deepEqual(byName.body.resources.map((r: any) => r.name), ['page-a', 'page-c']);
    const bySpace = await api.get(`/v3/apps?space_guids=${a.relationships.space.data.guid}&names=page-b`);
    t.is(bySpace.body.pagination.total_results, 1);
    t.is((await api.get('/v3/apps?space_guids=nope')).body.pagination.total_results, 0);
    const page1 = await api.get('/v3/apps?names=page-a,page-b,page-c&per_page=2&order_by=-name');
    t.is(page1.body.pagination.total_results, 3);
    t.is(page1.body.pagination.total_pages, 2);
    t.deepEqual(page1.body.resources.map((r: any) => r.name), ['page-c', 'page-b']);
    const page2 = await api.get(page1.body.pagination.next.href);
    t.deepEqual(page2.body.resources.map((r: any) => r.name), ['page-a']);
    t.is(page2.body.pagination.next, null);
    const badQuery = await api.get('/v3/apps?colour=blue');
    t.is(badQuery.status, 400);
    t.is(errorOf(badQuery.body)?.title, 'CF-BadQueryParameter');

    const renamed = await api.patch(`/v3/apps/${a.guid}`, { name: 'page-a2', metadata: { labels: { tier: 'web' } } });
    t.is(renamed.body.name, 'page-a2');
    t.deepEqual(renamed.body.metadata.labels, { tier: 'web' });
    t.is((await api.patch(`/v3/apps/${a.guid}`, { state: 'STARTED' })).status, 422);

    t.deepEqual((await api.get(`/v3/apps/${a.guid}/environment_variables`)).body.var, { GREETING: 'hi', N: '3' });
    const env = await api.patch(`/v3/apps/${a.guid}/environment_variables`, { var: { GREETING: null, COLOR: 'blue' } });
    t.deepEqual(env.body.var, { N: '3', COLOR: 'blue' });
    const badEnv = await api.patch(`/v3/apps/${a.guid}/environment_variables`, { var: { VCAP_X: '1' } });
    t.is(badEnv.status, 422);
    t.regex(errorOf(badEnv.body)!.detail, /VCAP_/);
    const full = await api.get(`/v3/apps/${a.guid}/env`);
    t.deepEqual(full.body.environment_variables, { N: '3', COLOR: 'blue' });
    t.is(full.body.application_env_json.VCAP_APPLICATION.application_name, 'page-a2');
    t.is(full.body.application_env_json.VCAP_APPLICATION.space_name, 'default');

    const proc = await api.get(`/v3/apps/${a.guid}/processes/web`);
    t.like(proc.body, { guid: a.guid, type: 'web', instances: 1, memory_in_mb: 256, disk_in_mb: 1024, health_check: { type: 'port' } });
    const patched = await api.patch(`/v3/processes/${a.guid}`, { command: 'node app.js', health_check: { type: 'http', data: { endpoint: '/health', timeout: 30 } } });
    t.like(patched.body, { command: 'node app.js', health_check: { type: 'http', data: { endpoint: '/health', timeout: 30 } } });
    const scaled = await api.post(`/v3/processes/${a.guid}/actions/scale`, { instances: 4, memory_in_mb: 512 });
    t.is(scaled.status, 202);
    t.like(scaled.body, { instances: 4, memory_in_mb: 512 });
    const badScale = await api.post(`/v3/processes/${a.guid}/actions/scale`, { instances: -1 });
    t.is(badScale.status, 422);
    t.regex(errorOf(badScale.body)!.detail, /^instances: /);
    const stats = await api.get(`/v3/processes/${a.guid}/stats`);
    t.deepEqual(stats.body.resources.map((r: any) => r.state), ['DOWN', 'DOWN', 'DOWN', 'DOWN'], 'a stopped app: every instance down');

    const noDroplet = await api.post(`/v3/apps/${a.guid}/actions/start`);
    t.is(noDroplet.status, 422);
    t.regex(errorOf(noDroplet.body)!.detail, /droplet/);

    t.is((await api.del(`/v3/apps/${a.guid}`)).status, 204);
    t.is((await api.get(`/v3/apps/${a.guid}`)).status, 404);
    t.is((await api.get(`/v3/processes/${a.guid}`)).status, 404);
  });

  test('unknown paths are 404 and wrong methods 405, in the v3 envelope', async (t) => {
    const { cc } = t.context;
    const nf = await cc.admin.get('/v3/nothing-here');
    t.is(nf.status, 404);
    t.is(errorOf(nf.body)?.title, 'CF-NotFound');
    const na = await cc.admin.request('PUT', '/v3/apps');
    t.is(na.status, 405);
  });

  test('routes: a host taken in its domain and the system domain’s api host are refused', async (t) => {
    const { cc, appsDomain, systemDomain } = t.context;
    const api = cc.admin;
    const app = await createApp(api, 'routed');
    const route = await api.post('/v3/routes', { host: 'shop', relationships: { domain: { data: { guid: appsDomain } } } });
    t.is(route.status, 201);
    t.is(route.body.url, `shop.${APPS_DOMAIN}`);
    const taken = await api.post('/v3/routes', { host: 'shop', relationships: { domain: { data: { guid: appsDomain } } } });
    t.is(taken.status, 422);
    t.is(errorOf(taken.body)?.title, 'CF-RouteHostTaken');
    t.regex(errorOf(taken.body)!.detail, /shop.*taken/);
    t.is((await api.post('/v3/routes', { host: 'shop', path: '/v2', relationships: { domain: { data: { guid: appsDomain } } } })).status, 201, 'another path of the host');
    const reserved = await api.post('/v3/routes', { host: 'api', relationships: { domain: { data: { guid: systemDomain } } } });
    t.is(reserved.status, 422);
    t.is(errorOf(reserved.body)?.title, 'CF-RouteHostTaken');
    t.regex(errorOf(reserved.body)!.detail, /reserved/);
    t.is((await api.post('/v3/routes', { host: 'api', relationships: { domain: { data: { guid: appsDomain } } } })).status, 201, 'api is free in the apps domain');
    const badHost = await api.post('/v3/routes', { host: 'Bad_Host', relationships: { domain: { data: { guid: appsDomain } } } });
    t.is(badHost.status, 422);
    t.regex(errorOf(badHost.body)!.detail, /host/);
    t.is((await api.post('/v3/routes', { host: 'x', relationships: { domain: { data: { guid: 'nope' } } } })).status, 422);
    t.is((await api.post('/v3/routes', { host: 'x' })).status, 422);
    t.true((await api.get(`/v3/domains/${appsDomain}/route_reservations?host=shop`)).body.matching_route);
    t.false((await api.get(`/v3/domains/${appsDomain}/route_reservations?host=free`)).body.matching_route);

    const dest = await api.post(`/v3/routes/${route.body.guid}/destinations`, { destinations: [{ app: { guid: app.guid } }] });
    t.is(dest.status, 200);
    t.is(dest.body.destinations.length, 1);
    t.is(dest.body.destinations[0].app.guid, app.guid);
    const again = await api.post(`/v3/routes/${route.body.guid}/destinations`, { destinations: [{ app: { guid: app.guid } }] });
    t.is(again.body.destinations.length, 1, 'mapping twice is one mapping');
    t.is((await api.post(`/v3/routes/${route.body.guid}/destinations`, { destinations: [{ app: { guid: 'nope' } }] })).status, 422);
    const appRoutes = await api.get(`/v3/apps/${app.guid}/routes`);
    t.deepEqual(appRoutes.body.resources.map((r: any) => r.url), [`shop.${APPS_DOMAIN}`]);
    t.is((await api.get(`/v3/routes?app_guids=${app.guid}`)).body.pagination.total_results, 1);
    t.is((await api.get(`/v3/routes?hosts=shop`)).body.pagination.total_results, 2);
    t.is((await api.del(`/v3/routes/${route.body.guid}/destinations/${dest.body.destinations[0].guid}`)).status, 204);
    t.is((await api.get(`/v3/routes/${route.body.guid}/destinations`)).body.destinations.length, 0);
    t.is((await api.del(`/v3/routes/${route.body.guid}`)).status, 204);
    t.is((await api.post('/v3/routes', { host: 'shop', relationships: { domain: { data: { guid: appsDomain } } } })).status, 201, 'free again once deleted');
  });

  test('packages: a zip upload becomes READY; unsafe zips are 422; an oversized upload is 413', async (t) => {
    const { cc } = t.context;
    const api = cc.admin;
    const app = await createApp(api, 'bits');
    const zip = await zipOf({ 'server.js': 'require("http")', 'package.json': '{}' });
    const { pkg, res } = await uploadZip(api, app.guid, zip);
    t.is(pkg.state, 'AWAITING_UPLOAD');
    t.is(res.status, 200);
    t.is(res.body.state, 'READY');
    t.is(res.body.data.checksum.value, createHash('sha256').update(zip).digest('hex'), 'a whole zip is stored as it came, by sha256');
    t.is((await api.post(`/v3/packages/${pkg.guid}/upload`, zip, { 'content-type': 'application/zip' })).status, 422, 'READY bits are not replaced');
    const download = await fetch(`${cc.url}/v3/packages/${pkg.guid}/download`, { headers: { authorization: `bearer ${api.token}` } });
    t.deepEqual(Buffer.from(await download.arrayBuffer()), zip);
    t.is((await api.get(`/v3/apps/${app.guid}/packages`)).body.resources[0].guid, pkg.guid);

    // Raw body (no multipart).
    const raw = (await api.post('/v3/packages', { type: 'bits', relationships: { app: { data: { guid: app.guid } } } })).body;
    const rawRes = await api.post(`/v3/packages/${raw.guid}/upload`, zip, { 'content-type': 'application/zip' });
    t.is(rawRes.body.state, 'READY');

    const unsafe: Array<[string, Buffer, RegExp]> = [
      ['traversal', renameInZip(await zipOf({ 'xx/evil.txt': 'x' }), 'xx/evil', '../evil'), /unsafe path|leaving/],
      ['absolute', renameInZip(await zipOf({ 'xetc/passwd': 'x' }), 'xetc/passwd', '/etc/passwd'), /absolute/],
      ['symlink', await zipOf({ 'ok.txt': 'ok', 'lib/escape': { symlink: '../../../../etc/shadow' } }), /outside the app/],
      ['not a zip', Buffer.from('this is not a zip'), /not a valid zip/],
    ];
    for (const [what, body, detail] of unsafe) {
      const r = await uploadZip(api, app.guid, body);
      t.is(r.res.status, 422, what);
      t.is(errorOf(r.res.body)?.title, 'CF-AppPackageInvalid', what);
      t.regex(errorOf(r.res.body)!.detail, detail, what);
      t.is((await api.get(`/v3/packages/${r.pkg.guid}`)).body.state, 'FAILED', what);
    }
    const withNoBits = await uploadZip(api, app.guid, undefined);
    t.is(withNoBits.res.status, 422);

    // max_upload_mb is 1 here: 1.5 MB of random bytes (incompressible) is refused, the package stays uploadable.
    const huge = await zipOf({ 'blob.bin': Buffer.from(Array.from({ length: 1536 * 1024 }, () => Math.floor(Math.random() * 256))) });
    const over = await uploadZip(api, app.guid, huge);
    t.is(over.res.status, 413);
    t.is(errorOf(over.res.body)?.title, 'CF-PayloadTooLarge');
    t.is((await api.get(`/v3/packages/${over.pkg.guid}`)).body.state, 'AWAITING_UPLOAD');
    // Without a Content-Length (chunked), the limit holds while streaming.
    const chunked = await fetch(`${cc.url}/v3/packages/${over.pkg.guid}/upload`, {
      method: 'POST',
      headers: { authorization: `bearer ${api.token}`, 'content-type': 'application/zip' },
      body: new Blob([huge]).stream(),
      duplex: 'half',
    } as RequestInit).catch((err: Error) => err);
    if (chunked instanceof Response) t.is(chunked.status, 413);
    else t.pass('the controller closed the connection past the limit');
    t.is((await api.get(`/v3/packages/${over.pkg.guid}`)).body.state, 'AWAITING_UPLOAD');

    const badPkg = await api.post('/v3/packages', { type: 'docker', relationships: { app: { data: { guid: app.guid } } } });
    t.is(badPkg.status, 422);
    t.regex(errorOf(badPkg.body)!.detail, /^type: /);
    t.is((await api.post('/v3/packages', { type: 'bits', relationships: { app: { data: { guid: 'nope' } } } })).status, 422);
    t.is((await api.post('/v3/packages/nope/upload', zip, { 'content-type': 'application/zip' })).status, 404);
  });


  test('resource matching: files held from any app are never uploaded twice', async (t) => {
    const { cc } = t.context;
    const api = cc.admin;
    const files = { 'index.js': 'console.log("v1")', 'lib/util.js': 'module.exports = 42', 'README.md': '# app' };
    const describe = (name: keyof typeof files) => ({ checksum: { value: sha1(files[name]) }, size_in_bytes: Buffer.byteLength(files[name]), path: name, mode: '0644' });

    const before = await api.post('/v3/resource_match', { resources: [describe('index.js')] });
    t.is(before.status, 200);
    t.deepEqual(before.body.resources, [], 'nothing is held yet');

    const first = await createApp(api, 'match-one');
    t.is((await uploadZip(api, first.guid, await zipOf(files))).res.body.state, 'READY');

    // A different app pushing the same files plus one new file.
    const second = await createApp(api, 'match-two');
    const all = [describe('index.js'), describe('lib/util.js'), describe('README.md'), { checksum: { value: sha1('new') }, size_in_bytes: 3, path: 'new.txt', mode: '0644' }];
    const matched = await api.post('/v3/resource_match', { resources: all });
    t.deepEqual(matched.body.resources.map((r: any) => r.path).sort(), ['README.md', 'index.js', 'lib/util.js']);
    const short = await api.post('/v3/resource_match', { resources: [{ sha1: sha1(files['README.md']), size: 5, path: 'README.md', mode: '644' }] });
    t.is(short.body.resources.length, 1, 'the short {sha1, size, path, mode} form is accepted too');
    t.is((await api.post('/v3/resource_match', { resources: [{ sha1: sha1(files['README.md']), size: 6 }] })).body.resources.length, 0, 'a size mismatch is no match');
    const badMatch = await api.post('/v3/resource_match', { resources: [{ checksum: { value: 'xyz' }, size_in_bytes: 1 }] });
    t.is(badMatch.status, 422);

    // Only the new file is uploaded; the matched ones come from the cache.
    const up = await uploadZip(api, second.guid, await zipOf({ 'new.txt': 'new' }), matched.body.resources);
    t.is(up.res.status, 200);
    t.is(up.res.body.state, 'READY');
    const got = await fetch(`${cc.url}/v3/packages/${up.pkg.guid}/download`, { headers: { authorization: `bearer ${api.token}` } });
    t.deepEqual(await zipNames(Buffer.from(await got.arrayBuffer())), { 'new.txt': 'new', ...files });

    // Nothing changed at all: no bits, only resources.
    const unchanged = await uploadZip(api, second.guid, undefined, [describe('index.js'), describe('lib/util.js'), describe('README.md')]);
    t.is(unchanged.res.body.state, 'READY');
    const bits = await fetch(`${cc.url}/v3/packages/${unchanged.pkg.guid}/download`, { headers: { authorization: `bearer ${api.token}` } });
    t.deepEqual(await zipNames(Buffer.from(await bits.arrayBuffer())), files);

    const unknown = await uploadZip(api, second.guid, undefined, [{ checksum: { value: sha1('never uploaded') }, size_in_bytes: 14, path: 'x.txt' }]);
    t.is(unknown.res.status, 422);
    t.regex(errorOf(unknown.res.body)!.detail, /not in the resource cache/);
  });

  test('builds: an unready package is refused; with no stager the build FAILS with the reason', async (t) => {
    const { cc } = t.context;
    const api = cc.admin;
    const app = await createApp(api, 'no-stager');
    const pending = (await api.post('/v3/packages', { type: 'bits', relationships: { app: { data: { guid: app.guid } } } })).body;
    const refused = await api.post('/v3/builds', { package: { guid: pending.guid } });
    t.is(refused.status, 422);
    t.regex(errorOf(refused.body)!.detail, /AWAITING_UPLOAD/);
    t.is((await api.post('/v3/builds', { package: {} })).status, 422);
    const { pkg } = await uploadZip(api, app.guid, await zipOf({ 'a.txt': 'a' }));
    const build = await api.post('/v3/builds', { package: { guid: pkg.guid } });
    t.is(build.status, 201);
    t.is(build.body.state, 'STAGING');
    const failed = await eventually(async () => {
      const b = (await api.get(`/v3/builds/${build.body.guid}`)).body;
      return b.state === 'FAILED' && b;
    }, 10_000, 'build FAILED');
    t.regex(failed.error, /No stager/);
    t.is(failed.droplet, null);
    const droplets = await api.get(`/v3/apps/${app.guid}/droplets`);
    t.is(droplets.body.resources[0].state, 'FAILED');
    t.is((await api.patch(`/v3/apps/${app.guid}/relationships/current_droplet`, { data: { guid: droplets.body.resources[0].guid } })).status, 422);
    const bulk = await fetch(`${cc.url}/bulk/apps/${app.guid}`, { headers: { authorization: `Basic ${Buffer.from(`${BULK.user}:${BULK.password}`).toString('base64')}` } });
    t.is(((await bulk.json()) as any).package_state, 'FAILED');
  });

  test('signed blob URLs refuse a missing, forged or expired signature', async (t) => {
    const { cc } = t.context;
    t.is((await fetch(`${cc.url}/internal/v3/packages/x/download`)).status, 401);
    t.is((await fetch(`${cc.url}/internal/v3/packages/x/download?expires=9999999999&signature=${'0'.repeat(64)}`)).status, 403);
    t.is((await fetch(`${cc.url}/internal/v3/droplets/x/upload?expires=1&signature=${'0'.repeat(64)}`, { method: 'PUT', body: 'x' })).status, 403);
  });

  test('the bulk endpoint answers only to the health managers’ credential', async (t) => {
    const { cc } = t.context;
    const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
    t.is((await fetch(`${cc.url}/bulk/apps`)).status, 401);
    t.is((await fetch(`${cc.url}/bulk/apps`, { headers: basic(BULK.user, 'wrong') })).status, 401);
    t.is((await fetch(`${cc.url}/bulk/apps`, { headers: { authorization: `bearer ${cc.admin.token}` } })).status, 401, 'a user token is no bulk credential');
    t.is((await fetch(`${cc.url}/bulk/apps`, { headers: basic(ADMIN.user, ADMIN.password) })).status, 401);
    const ok = await fetch(`${cc.url}/bulk/apps?batch_size=10`, { headers: basic(BULK.user, BULK.password) });
    t.is(ok.status, 200);
    t.deepEqual(((await ok.json()) as any).results, {}, 'no app is started here');
    t.is((await fetch(`${cc.url}/bulk/apps?bulk_token=notjson`, { headers: basic(BULK.user, BULK.password) })).status, 400);
  });

  test('organizations and spaces: a default of each; admins create more', async (t) => {
    const { cc } = t.context;
    const orgs = (await cc.admin.get('/v3/organizations?names=default')).body.resources;
    t.is(orgs.length, 1);
    const spaces = (await cc.admin.get(`/v3/spaces?organization_guids=${orgs[0].guid}`)).body.resources;
    t.deepEqual(spaces.map((s: any) => s.name), ['default']);
    const org = await cc.admin.post('/v3/organizations', { name: 'acme' });
    t.is(org.status, 201);
    const space = await cc.admin.post('/v3/spaces', { name: 'dev', relationships: { organization: { data: { guid: org.body.guid } } } });
    t.is(space.status, 201);
    const app = await createApp(cc.admin, 'in-dev', { relationships: { space: { data: { guid: space.body.guid } } } });
    t.is(app.relationships.space.data.guid, space.body.guid);
    t.is((await cc.admin.get(`/v3/apps?organization_guids=${org.body.guid}`)).body.resources[0].name, 'in-dev');
    t.is((await cc.admin.post('/v3/spaces', { name: 'dev', relationships: { organization: { data: { guid: org.body.guid } } } })).status, 422);
    t.is((await cc.admin.del(`/v3/spaces/${space.body.guid}`)).status, 422, 'a space with apps stays');
  });

  test('quotas and audit events on this database: a route past a space quota is 422; an org manager sees its org-level events', async (t) => {
    const { cc, appsDomain } = t.context;
    const org = (await cc.admin.post('/v3/organizations', { name: 'quota-db' })).body;
    const space = (await cc.admin.post('/v3/spaces', { name: 'q', relationships: { organization: { data: { guid: org.guid } } } })).body;
    const quota = await cc.admin.post('/v3/space_quotas', { name: 'no-routes', routes: { total_routes: 0 }, relationships: { organization: { data: { guid: org.guid } }, spaces: { data: [{ guid: space.guid }] } } });
    t.is(quota.status, 201);
    const route = await cc.admin.post('/v3/routes', { host: 'quota-db', relationships: { domain: { data: { guid: appsDomain } }, space: { data: { guid: space.guid } } } });
    t.is(route.status, 422);
    t.regex(errorOf(route.body)!.detail, /route quota exceeded: space quota 'no-routes' allows 0 routes/);

    const user = (await cc.admin.post('/v3/users', { username: 'quota-db-mgr', password: 'quota-db-password' })).body;
    t.is((await cc.admin.post('/v3/roles', { type: 'organization_manager', relationships: { user: { data: { guid: user.guid } }, organization: { data: { guid: org.guid } } } })).status, 201);
    const mgr = cc.anonymous.withToken(await cc.anonymous.login('quota-db-mgr', 'quota-db-password'));
    const seen = (await mgr.get('/v3/audit_events?per_page=5000')).body.resources as Array<{ type: string; organization: { guid: string } | null }>;
    t.deepEqual([...new Set(seen.map((e) => e.type))].sort(), ['audit.organization.create', 'audit.role.create', 'audit.space.create']);
    t.true(seen.every((e) => e.organization?.guid === org.guid), 'only its org');
  });
}

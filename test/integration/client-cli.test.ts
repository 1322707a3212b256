// The `ingot` app commands as a user runs them: the real CLI (a child process) against a real
// cloud controller process, with a test stager and DEA on the bus (test/helpers/cc-peers.ts)
// — api, login (and refreshing an expired token), logout, target, create-user, push, apps,
// app, env, set-env, routes, map-route, and the one-line errors of every kind of mistake.
import anyTest, { type TestFn } from 'ava';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { ISSUER, USER_SCOPES, ADMIN_SCOPE } from '../../kernel/cloud-controller/auth/tokens.ts';
import { ADMIN, APPS_DOMAIN, startController, type Controller } from '../helpers/cc-controller.ts';
import { Journal, TestDea, TestStager } from '../helpers/cc-peers.ts';
import { cliChecks } from '../helpers/cli-checks.ts';
import { runCli } from '../helpers/component-process.ts';
import { NatsServer } from '../helpers/nats-server.ts';
import { scratchDir } from '../helpers/tmp.ts';

interface Ctx {
  nats: NatsServer;
  cc: Controller;
  stager: TestStager;
  dea: TestDea;
  home: string;
  appDir: string;
}
const test = anyTest as TestFn<Ctx>;

// runCli inherits this process's environment: every CLI run of this file keeps its config here.
const HOME = scratchDir('client-home');
process.env.INGOT_HOME = HOME;
delete process.env.INGOT_USERNAME;
delete process.env.INGOT_PASSWORD;

const cli = (...args: string[]) => runCli(args, { timeoutMs: 30_000 });
const { ok, refused } = cliChecks(cli);
const config = (): any => JSON.parse(readFileSync(join(HOME, 'config.json'), 'utf8'));
const saveConfig = (c: unknown): void => writeFileSync(join(HOME, 'config.json'), JSON.stringify(c));

/** Fails with the CLI's output when it did not exit 0. */

test.before(async (t) => {
  const nats = await NatsServer.start();
  const journal = new Journal();
  const stager = await TestStager.start(nats, journal);
  const dea = await TestDea.start(nats, 'dea-cli', journal, { runAfterMs: 100 });
  const cc = await startController(nats);
  const appDir = scratchDir('client-app');
  writeFileSync(join(appDir, 'server.js'), 'require("http").createServer((q, s) => s.end("hi")).listen(process.env.PORT)\n');
  writeFileSync(join(appDir, 'package.json'), '{"name":"web","scripts":{"start":"node server.js"}}\n');
  mkdirSync(join(appDir, 'logs'));
  writeFileSync(join(appDir, 'logs', 'debug.log'), 'never uploaded\n');
  writeFileSync(join(appDir, '.cfignore'), 'logs/\n');
  t.context = { nats, cc, stager, dea, home: HOME, appDir };
});

test.after.always(async (t) => {
  await t.context.cc?.kill();
  await t.context.dea?.close();
  await t.context.stager?.close();
  await t.context.nats?.stop();
});

test.serial('without an API or a login, commands say what to do first', async (t) => {
  await refused(t, /no API is set; run ingot api URL first/, 'apps');
  await refused(t, /no API is set/, 'login', '-u', 'admin', '-p', 'x');
  await refused(t, /cannot reach http:\/\/127\.0\.0\.1:1: connection refused/, 'api', 'http://127.0.0.1:1');
  await refused(t, /"http:\/\/exa mple" is not a URL/, 'api', 'http://exa mple');
});

test.serial('api sets the target and reads the platform info; login takes a password grant and targets the default space', async (t) => {
  const { cc } = t.context;
  const set = await ok(t, 'api', cc.url);
  t.regex(set.stdout, new RegExp(`Setting API endpoint to ${cc.url}\\.\\.\\. OK`));
  t.regex(set.stdout, new RegExp(`apps domain: ${APPS_DOMAIN}`));
  t.deepEqual(JSON.parse((await ok(t, 'api', '--json')).stdout), { url: cc.url, system_domain: 'sys.ingot.test', apps_domain: APPS_DOMAIN });
  await refused(t, /not logged in to .*; run ingot login/, 'apps');

  await refused(t, /^ingot: login as admin failed: Bad credentials$/, 'login', '-u', 'admin', '-p', 'wrong-password');
  await refused(t, /give -u USER and -p PASSWORD/, 'login', '-u', 'admin');
  const login = await ok(t, 'login', '-u', ADMIN.user, '-p', ADMIN.password);
  t.regex(login.stdout, /Authenticated as admin/);
  t.regex(login.stdout, /Targeted org default, space default\./);
  const stored = config().api;
  t.is(stored.user, 'admin');
  t.truthy(stored.access_token);
  t.truthy(stored.refresh_token);
  t.true(stored.expires_at > Date.now());
  t.deepEqual(JSON.parse((await ok(t, 'target', '--json')).stdout), { api: cc.url, user: 'admin', organization: 'default', space: 'default' });
  t.is((await import('node:fs')).statSync(join(HOME, 'config.json')).mode & 0o777, 0o600);
});

test.serial('target switches organization and space by name; unknown names are refused', async (t) => {
  const { cc } = t.context;
  const org = (await cc.admin.post('/v3/organizations', { name: 'acme' })).body;
  await cc.admin.post('/v3/spaces', { name: 'dev', relationships: { organization: { data: { guid: org.guid } } } });
  await cc.admin.post('/v3/spaces', { name: 'prod', relationships: { organization: { data: { guid: org.guid } } } });
  await refused(t, /organization nope not found/, 'target', '-o', 'nope');
  const acme = await ok(t, 'target', '-o', 'acme');
  t.regex(acme.stdout, /org:\s+acme/);
  t.regex(acme.stdout, /space:\s+\(none/, 'two spaces: none is picked');
  await refused(t, /no space is targeted; run ingot target -o ORG -s SPACE/, 'apps');
  await refused(t, /space qa not found in organization acme/, 'target', '-s', 'qa');
  t.regex((await ok(t, 'target', '-s', 'dev')).stdout, /space:\s+dev/);
  t.regex((await ok(t, 'apps')).stdout, /No apps found/);
  await ok(t, 'target', '-o', 'default', '-s', 'default');
});

test.serial('push: creates the app, maps its default route, uploads only what is new, stages, starts and waits', async (t) => {
  const { appDir, stager } = t.context;
  const first = await ok(t, 'push', 'web', '-p', appDir, '-m', '128M', '-i', '2');
  t.regex(first.stdout, /Creating app web in space default\/default/);
  t.regex(first.stdout, new RegExp(`Mapping route web\\.${APPS_DOMAIN.replace(/\./g, '\\.')}`));
  t.regex(first.stdout, /Matched 2 files \(\d+ bytes, 2 ignored\): 0 already on the platform, 0 bytes skipped/);
  t.regex(first.stdout, /Uploaded \d+ bytes \(2 files, zipped\)/);
  t.regex(first.stdout, /Staging app and tracing logs/);
  t.regex(first.stdout, /2 of 2 instances running/);
  t.regex(first.stdout, /requested state:\s+started/);
  t.regex(first.stdout, /memory usage:\s+128M/);
  t.regex(first.stdout, /#1\s+running/);
  t.notRegex(first.stdout, /\x1b\[/, 'no terminal codes when not a TTY');
  // .cfignore'd files never reach the package.
  const zipped = stager.requests.at(-1)!;
  t.truthy(zipped);

  const again = await ok(t, 'push', 'web', '-p', appDir);
  t.regex(again.stdout, /Updating app web/);
  t.regex(again.stdout, /Matched 2 files .*: 2 already on the platform, \d+ bytes skipped/);
  t.regex(again.stdout, /Uploaded 0 bytes/);
  t.regex(again.stdout, /Stopping app/);
  t.regex(again.stdout, /2 of 2 instances running/);
  t.notRegex(again.stdout, /Mapping route/, 'an app with a route keeps it');

  const apps = JSON.parse((await ok(t, 'apps', '--json')).stdout);
  t.like(apps[0], { name: 'web', state: 'STARTED', instances: 2, running: 2, memory_in_mb: 128, routes: [`web.${APPS_DOMAIN}`] });
  const table = (await ok(t, 'apps')).stdout;
  t.regex(table, /web\s+started\s+2\/2\s+128M\s+1G\s+web\.apps\.ingot\.test/);
  const app = JSON.parse((await ok(t, 'app', 'web', '--json')).stdout);
  t.like(app, { name: 'web', state: 'STARTED', instances: 2, memory_in_mb: 128, command: 'node server.js', droplet: { buildpacks: ['test-buildpack'] } });
  t.is(app.stats.length, 2);
  t.like(app.stats[0], { state: 'RUNNING', usage: { cpu: 0.125 } });
  t.regex((await ok(t, 'app', 'web')).stdout, /#0\s+running\s+\S+Z\s+12\.5%\s+50M of 256M\s+10M of 1G/);
});

test.serial('push from a manifest; a bad manifest names file, line and key', async (t) => {
  const { appDir } = t.context;
  const dir = scratchDir('client-manifest');
  writeFileSync(
    join(dir, 'manifest.yml'),
    ['applications:', '- name: api-svc', `  path: ${appDir}`, '  memory: 64M', '  instances: 1', '  env:', '    MODE: manifest', '  routes:', `  - route: api-svc.${APPS_DOMAIN}/v1`].join('\n') + '\n',
  );
  const r = await ok(t, 'push', '-f', join(dir, 'manifest.yml'));
  t.regex(r.stdout, /Creating app api-svc/);
  t.regex(r.stdout, new RegExp(`Mapping route api-svc\\.apps\\.ingot\\.test/v1`));
  t.regex(r.stdout, /1 of 1 instance running/);
  const env = JSON.parse((await ok(t, 'env', 'api-svc', '--json')).stdout);
  t.deepEqual(env.environment_variables, { MODE: 'manifest' });

  writeFileSync(join(dir, 'bad.yml'), ['applications:', '- name: broken', '  memory: 12XB', '  instances: -1', '  colour: blue'].join('\n') + '\n');
  const bad = await refused(t, /3 problems in .*bad\.yml/, 'push', '-f', join(dir, 'bad.yml'));
  t.regex(bad.stderr, /bad\.yml:3 applications\[0\]\.memory: "12XB" is not a size/);
  t.regex(bad.stderr, /bad\.yml:4 applications\[0\]\.instances:/);
  t.regex(bad.stderr, /bad\.yml:5 applications\[0\]: unknown key \(colour\)/);
  writeFileSync(join(dir, 'syntax.yml'), 'applications:\n- name: [unclosed\n');
  await refused(t, /syntax\.yml:\d+ /, 'push', '-f', join(dir, 'syntax.yml'));
  await refused(t, /cannot read the manifest/, 'push', '-f', join(dir, 'missing.yml'));
});

test.serial('env, set-env and unset-env', async (t) => {
  t.regex((await ok(t, 'set-env', 'web', 'GREETING', 'hello world')).stdout, /Set GREETING of app web\.\n.*ingot restart web/);
  const env = JSON.parse((await ok(t, 'env', 'web', '--json')).stdout);
  t.is(env.environment_variables.GREETING, 'hello world');
  t.is(env.application_env_json.VCAP_APPLICATION.application_name, 'web');
  const text = (await ok(t, 'env', 'web')).stdout;
  t.regex(text, /User-Provided:\nGREETING: hello world/);
  t.regex(text, /VCAP_APPLICATION:/);
  await refused(t, /VCAP_X is set by the platform/, 'set-env', 'web', 'VCAP_X', '1');
  await refused(t, /1BAD: an environment variable name/, 'set-env', 'web', '1BAD', '1');
  t.regex((await ok(t, 'unset-env', 'web', 'GREETING')).stdout, /Removed GREETING/);
  t.deepEqual(JSON.parse((await ok(t, 'env', 'web', '--json')).stdout).environment_variables, {});
});

test.serial('routes, map-route and unmap-route', async (t) => {
  const mapped = await ok(t, 'map-route', 'web', APPS_DOMAIN, '--hostname', 'www', '--path', '/shop');
  t.regex(mapped.stdout, /Mapped route www\.apps\.ingot\.test\/shop to app web/);
  const routes = JSON.parse((await ok(t, 'routes', '--json')).stdout);
  t.like(routes.find((r: any) => r.url === `www.${APPS_DOMAIN}/shop`), { host: 'www', domain: APPS_DOMAIN, path: '/shop', apps: ['web'] });
  t.regex((await ok(t, 'routes')).stdout, /www\s+apps\.ingot\.test\s+\/shop\s+web/);
  t.deepEqual(JSON.parse((await ok(t, 'app', 'web', '--json')).stdout).routes, [`web.${APPS_DOMAIN}`, `www.${APPS_DOMAIN}/shop`]);
  t.regex((await ok(t, 'unmap-route', 'web', APPS_DOMAIN, '--hostname', 'www', '--path', '/shop')).stdout, /Unmapped route/);
  t.deepEqual(JSON.parse((await ok(t, 'routes', '--json')).stdout).find((r: any) => r.url === `www.${APPS_DOMAIN}/shop`).apps, []);
  await refused(t, /domain nope\.example not found/, 'map-route', 'web', 'nope.example', '--hostname', 'x');
  await refused(t, /route ghost\.apps\.ingot\.test not found/, 'unmap-route', 'web', APPS_DOMAIN, '--hostname', 'ghost');
  await refused(t, /reserved for the platform/, 'map-route', 'web', 'sys.ingot.test', '--hostname', 'api');
});

test.serial('mistakes print one line: unknown app, bad sizes and counts, bad flags', async (t) => {
  await refused(t, /^ingot: app nope not found in space default\/default$/, 'app', 'nope');
  await refused(t, /app nope not found/, 'scale', 'nope', '-i', '2');
  await refused(t, /app nope not found/, 'logs', 'nope', '--recent');
  await refused(t, /^ingot: -m 12XB: "12XB" is not a size; expected a whole number with M or G/, 'scale', 'web', '-m', '12XB');
  await refused(t, /-k 0: "0" must be more than 0/, 'push', 'web', '-k', '0');
  await refused(t, /-i -1: expected a whole number from 0 to 1000/, 'scale', 'web', '-i', '-1');
  await refused(t, /Unknown argument: bogus/, 'apps', '--bogus');
  await refused(t, /name the app: ingot push NAME/, 'push');
  await refused(t, /cannot read the app at \/nonexistent/, 'push', 'ghost', '-p', '/nonexistent');
  await refused(t, /give -f to delete web without a terminal/, 'delete', 'web');
  t.regex((await ok(t, 'delete', 'never-was', '-f')).stdout, /App never-was does not exist/);
});

test.serial('scale, stop, start, restart and delete act and wait', async (t) => {
  const { cc } = t.context;
  const up = await ok(t, 'scale', 'web', '-i', '3');
  t.regex(up.stdout, /3 of 3 instances running/);
  t.deepEqual(JSON.parse((await ok(t, 'scale', 'web', '--json')).stdout), { instances: 3, memory_in_mb: 128, disk_in_mb: 1024 });
  t.regex((await ok(t, 'stop', 'web')).stdout, /Stopped app web/);
  t.regex((await ok(t, 'app', 'web')).stdout, /requested state:\s+stopped/);
  t.regex((await ok(t, 'start', 'web')).stdout, /3 of 3 instances running/);
  t.regex((await ok(t, 'restart', 'web', '--strategy', 'rolling')).stdout, /3 of 3 instances updated and running/);
  t.regex((await ok(t, 'restage', 'web')).stdout, /Staged\.[\s\S]*3 of 3 instances running/);
  const del = await ok(t, 'delete', 'api-svc', '-f', '-r');
  t.regex(del.stdout, /Deleted app api-svc and its routes \(api-svc\.apps\.ingot\.test\/v1\)/);
  t.is((await cc.admin.get('/v3/routes?hosts=api-svc')).body.resources.length, 0);
});

test.serial('push --strategy rolling replaces running instances one at a time; recent logs', async (t) => {
  const { appDir } = t.context;
  await refused(t, /web: a new memory or disk limit replaces every instance at once/, 'push', 'web', '-p', appDir, '--strategy', 'rolling', '-m', '512M');
  const r = await ok(t, 'push', 'web', '-p', appDir, '--strategy', 'rolling');
  t.regex(r.stdout, /Restarting 3 instances one at a time/);
  t.regex(r.stdout, /3 of 3 instances updated and running/);
  t.notRegex(r.stdout, /Stopping app/);
  const recent = (await ok(t, 'logs', 'web', '--recent')).stdout;
  t.regex(recent, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d\d[+-]\d{4} \[API\] OUT Restarting app web, one instance at a time$/m);
  const lines = (await ok(t, 'logs', 'web', '--recent', '--json')).stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.true(lines.some((l) => l.source === 'API' && /Staging package/.test(l.line)));
});

async function forgeAccessToken(cc: Controller, expSecondsFromNow: number): Promise<string> {
  const me = (await cc.admin.get('/v3/users?usernames=admin')).body.resources[0];
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ user_name: 'admin', scope: [ADMIN_SCOPE, ...USER_SCOPES], typ: 'access' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(me.guid)
    .setIssuer(ISSUER)
    .setIssuedAt(now - 3600)
    .setExpirationTime(now + expSecondsFromNow)
    .sign(new TextEncoder().encode(cc.jwtSecret));
}

test.serial('an expired access token is refreshed with the refresh token, before a call or after a 401', async (t) => {
  const { cc } = t.context;
  const expired = await forgeAccessToken(cc, -60);
  // The clock says it expired: refreshed before the call.
  saveConfig({ ...config(), api: { ...config().api, access_token: expired, expires_at: Date.now() - 1000 } });
  await ok(t, 'apps');
  const afterProactive = config().api;
  t.not(afterProactive.access_token, expired);
  t.true(afterProactive.expires_at > Date.now());
  // The clock thinks it is valid, the controller says "expired": refreshed after the 401.
  saveConfig({ ...config(), api: { ...config().api, access_token: expired, expires_at: Date.now() + 3600_000 } });
  t.regex((await ok(t, 'apps')).stdout, /web/);
  t.not(config().api.access_token, expired);
  // A refresh token the controller refuses: log in again.
  saveConfig({ ...config(), api: { ...config().api, access_token: expired, refresh_token: 'not-a-token', expires_at: 0 } });
  await refused(t, /the session has expired \(Invalid refresh token\); log in again with ingot login/, 'apps');
  await ok(t, 'login', '-u', ADMIN.user, '-p', ADMIN.password);
});

test.serial('create-user needs an admin; logout forgets the tokens', async (t) => {
  t.regex((await ok(t, 'create-user', 'dev', 'dev-password-1')).stdout, /Created user dev\./);
  // A new user has no role: the admin makes it a developer of the space the others push to.
  await ok(t, 'set-org-role', 'dev', 'default', 'OrgUser');
  await ok(t, 'set-space-role', 'dev', 'default', 'default', 'SpaceDeveloper');
  await refused(t, /User 'dev' already exists/, 'create-user', 'dev', 'dev-password-1');
  await refused(t, /at least 8 characters/, 'create-user', 'dev2', 'short');
  const dev = await ok(t, 'login', '-u', 'dev', '-p', 'dev-password-1');
  t.regex(dev.stdout, /Authenticated as dev/);
  await refused(t, /Creating user eve: You are not authorized to perform the requested action/, 'create-user', 'eve', 'eve-password-1');
  t.regex((await ok(t, 'apps')).stdout, /web/, 'a user sees the apps of its space');
  t.regex((await ok(t, 'logout')).stdout, /Logged out of/);
  t.is(config().api.access_token, undefined);
  t.is(config().api.url, t.context.cc.url);
  await refused(t, /not logged in to .*; run ingot login/, 'apps');
});

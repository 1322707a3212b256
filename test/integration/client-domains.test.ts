// The domain and route commands and `rename` as a user runs them: the real CLI (a child
// process) against a real cloud controller process, with a test stager and DEA on the bus —
// rename, domains, create-/delete-shared-domain, create-/delete-private-domain,
// create-/delete-route, and the one-line refusals of bad arguments, of non-admins and of what
// the controller will not do.
import anyTest, { type TestFn } from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN, APPS_DOMAIN, SYSTEM_DOMAIN, startController, type Controller } from '../helpers/cc-controller.ts';
import { Journal, TestDea, TestStager } from '../helpers/cc-peers.ts';
import { ingot, useCliHome } from '../helpers/cc-tenants.ts';
import { NatsServer } from '../helpers/nats-server.ts';
import { scratchDir } from '../helpers/tmp.ts';

const test = anyTest as TestFn<{ nats: NatsServer; cc: Controller; stager: TestStager; dea: TestDea; appDir: string }>;

useCliHome('client-domains-home');

/** Each test runs up to twenty CLI processes (about half a second each, far more on a busy machine) and one push. */
const CLI_TEST_TIMEOUT_MS = 180_000;

test.before(async (t) => {
  const nats = await NatsServer.start();
  const journal = new Journal();
  const stager = await TestStager.start(nats, journal);
  const dea = await TestDea.start(nats, 'dea-domains', journal, { runAfterMs: 100 });
  const cc = await startController(nats);
  const appDir = scratchDir('client-domains-app');
  writeFileSync(join(appDir, 'server.js'), 'require("http").createServer((q, s) => s.end("hi")).listen(process.env.PORT)\n');
  writeFileSync(join(appDir, 'package.json'), '{"name":"web","scripts":{"start":"node server.js"}}\n');
  t.context = { nats, cc, stager, dea, appDir };
});

test.after.always(async (t) => {
  await t.context.cc?.kill();
  await t.context.dea?.close();
  await t.context.stager?.close();
  await t.context.nats?.stop();
});

const routeUrls = async (t: Parameters<typeof ingot>[0]): Promise<string[]> => JSON.parse((await ingot(t, ['routes', '--json'])).stdout).map((r: { url: string }) => r.url);

test.serial('every new command has help; bad arguments are refused in one line naming them, before any login', async (t) => {
  t.timeout(CLI_TEST_TIMEOUT_MS);
  for (const [command, says] of [
    ['rename', /Rename an app/],
    ['domains', /List the domains/],
    ['create-shared-domain', /Create a domain every organization/],
    ['delete-shared-domain', /Delete a shared domain[^]*--force/],
    ['create-private-domain', /Create a domain only the organization can make routes in/],
    ['delete-private-domain', /Delete a private domain[^]*--force/],
    ['create-route', /Create a route in the targeted space[^]*--hostname[^]*--path/],
    ['delete-route', /Delete a route[^]*--hostname[^]*--path[^]*--force/],
  ] as const) {
    t.regex((await ingot(t, [command, '--help'])).stdout, says, command);
  }
  await ingot(t, ['rename', 'web', ''], /^ingot: new-name "": an app name cannot be empty$/m);
  await ingot(t, ['rename', 'web', 'a/b'], /^ingot: new-name a\/b: an app name cannot contain \/$/m);
  await ingot(t, ['rename', 'web'], /Not enough non-option arguments/);
  await ingot(t, ['create-shared-domain', 'localhost'], /^ingot: domain localhost: a domain needs at least two labels/);
  await ingot(t, ['delete-shared-domain', 'bad_name.com'], /^ingot: domain bad_name\.com: each label of a domain/);
  await ingot(t, ['create-private-domain', 'acme', 'localhost'], /^ingot: domain localhost: a domain needs at least two labels/);
  await ingot(t, ['create-private-domain', 'acme'], /Not enough non-option arguments/);
  await ingot(t, ['delete-private-domain', 'x_y.com'], /^ingot: domain x_y\.com: each label of a domain/);
  await ingot(t, ['create-route', 'example.com', '--path', 'shop'], /^ingot: --path shop: path must begin with \/$/m);
  await ingot(t, ['create-route', 'example.com', '--hostname', 'a.b'], /^ingot: --hostname a\.b: host must be lower-case letters/);
  await ingot(t, ['delete-route', 'example.com', '--path', '/a/../b'], /^ingot: --path \/a\/\.\.\/b: path cannot contain \. or \.\. segments$/m);
  await ingot(t, ['create-route'], /Not enough non-option arguments/);
  await ingot(t, ['rename', 'web', 'shop'], /no API is set/);
});

test.serial('rename: the app keeps its guid, routes and running instances; a name taken in the space is refused', async (t) => {
  t.timeout(CLI_TEST_TIMEOUT_MS);
  const { cc, dea, appDir } = t.context;
  await ingot(t, ['api', cc.url]);
  await ingot(t, ['login', '-u', ADMIN.user, '-p', ADMIN.password]);
  await ingot(t, ['push', 'web', '-p', appDir, '-m', '64M', '-i', '2']);
  const before = JSON.parse((await ingot(t, ['app', 'web', '--json'])).stdout);
  const instancesBefore = [...dea.instances.values()].filter((i) => i.app_id === before.guid && i.state === 'RUNNING').map((i) => i.instance_id).sort();
  t.is(instancesBefore.length, 2);

  const renamed = await ingot(t, ['rename', 'web', 'shop']);
  t.is(renamed.stdout, `Renaming app web to shop in org default / space default...\nRenamed app web to shop.\n`);
  const after = JSON.parse((await ingot(t, ['app', 'shop', '--json'])).stdout);
  t.like(after, { guid: before.guid, name: 'shop', state: 'STARTED' });
  t.deepEqual(after.routes, [`web.${APPS_DOMAIN}`]);
  t.deepEqual([...dea.instances.values()].filter((i) => i.app_id === before.guid && i.state === 'RUNNING').map((i) => i.instance_id).sort(), instancesBefore, 'no instance was replaced');
  t.deepEqual(JSON.parse((await ingot(t, ['routes', '--json'])).stdout).find((r: { url: string }) => r.url === `web.${APPS_DOMAIN}`).apps, ['shop']);
  await ingot(t, ['app', 'web'], /app web not found in space default\/default/);

  t.is((await cc.admin.post('/v3/apps', { name: 'other' })).status, 201);
  await ingot(t, ['rename', 'shop', 'other'], /^ingot: Renaming app shop to other: App with the name 'other' already exists\.$/m);
  await ingot(t, ['rename', 'ghost', 'spirit'], /^ingot: app ghost not found in space default\/default$/m);
  t.deepEqual(JSON.parse((await ingot(t, ['apps', '--json'])).stdout).map((a: { name: string }) => a.name), ['other', 'shop']);
});

test.serial('domains lists the platform domains; an admin creates and deletes a shared domain', async (t) => {
  t.timeout(CLI_TEST_TIMEOUT_MS);
  const listed = await ingot(t, ['domains']);
  t.regex(listed.stdout, /^Getting domains in org default as admin\.\.\.$/m);
  t.regex(listed.stdout, /^name\s+availability\s+internal$/m);
  t.regex(listed.stdout, new RegExp(`^${APPS_DOMAIN.replace(/\./g, '\\.')}\\s+shared$`, 'm'));
  const json = () => ingot(t, ['domains', '--json']).then((r) => JSON.parse(r.stdout) as Array<{ name: string; availability: string; internal: boolean; guid: string }>);
  t.deepEqual(
    (await json()).map(({ name, availability, internal }) => ({ name, availability, internal })),
    [
      { name: APPS_DOMAIN, availability: 'shared', internal: false },
      { name: SYSTEM_DOMAIN, availability: 'shared', internal: false },
    ],
  );

  t.is((await ingot(t, ['create-shared-domain', 'Example.COM'])).stdout, 'Created shared domain example.com.\n');
  await ingot(t, ['create-shared-domain', 'example.com'], /^ingot: Creating shared domain example\.com: The domain name "example\.com" is already in use$/m);
  t.true((await json()).some((d) => d.name === 'example.com' && d.availability === 'shared'));

  await ingot(t, ['delete-shared-domain', 'example.com'], /^ingot: give -f to delete the domain example\.com without a terminal to confirm on$/m);
  await ingot(t, ['delete-shared-domain', APPS_DOMAIN, '-f'], /is a domain of the platform's config and cannot be deleted/);
  t.is((await ingot(t, ['delete-shared-domain', 'example.com', '-f'])).stdout, 'Deleted domain example.com.\n');
  t.false((await json()).some((d) => d.name === 'example.com'));
  t.is((await ingot(t, ['delete-shared-domain', 'example.com', '-f'])).stdout, 'Domain example.com does not exist.\n');
});

test.serial('create-route and delete-route in the targeted space; a domain with routes is not deleted', async (t) => {
  t.timeout(CLI_TEST_TIMEOUT_MS);
  await ingot(t, ['create-shared-domain', 'example.org']);
  const made = await ingot(t, ['create-route', 'example.org', '--hostname', 'WWW', '--path', '/shop']);
  t.is(made.stdout, 'Created route www.example.org/shop in org default / space default.\n');
  t.is((await ingot(t, ['create-route', 'example.org', '-n', 'www', '--path', '/shop'])).stdout, 'Route www.example.org/shop already exists.\n');
  t.is((await ingot(t, ['create-route', 'example.org'])).stdout, 'Created route example.org in org default / space default.\n');
  t.deepEqual((await routeUrls(t)).filter((u) => u.includes('example.org')).sort(), ['example.org', 'www.example.org/shop']);
  t.regex((await ingot(t, ['routes'])).stdout, /^www\s+example\.org\s+\/shop$/m);
  await ingot(t, ['create-route', SYSTEM_DOMAIN, '--hostname', 'api'], /^ingot: Creating route api\.sys\.ingot\.test: The host 'api' is reserved for the platform/);
  await ingot(t, ['create-route', 'nope.example', '--hostname', 'x'], /^ingot: domain nope\.example not found$/m);

  await ingot(t, ['delete-shared-domain', 'example.org', '-f'], /^ingot: Deleting domain example\.org: Delete the routes of this domain first\.$/m);
  await ingot(t, ['delete-route', 'example.org', '--hostname', 'www', '--path', '/shop'], /^ingot: give -f to delete the route www\.example\.org\/shop without a terminal to confirm on$/m);
  t.is((await ingot(t, ['delete-route', 'example.org', '--hostname', 'www', '--path', '/shop', '-f'])).stdout, 'Deleted route www.example.org/shop.\n');
  t.is((await ingot(t, ['delete-route', 'example.org', '--hostname', 'www', '--path', '/shop', '-f'])).stdout, 'Route www.example.org/shop does not exist.\n');
  t.is((await ingot(t, ['delete-route', 'example.org', '-f'])).stdout, 'Deleted route example.org.\n');
  t.false((await routeUrls(t)).some((u) => u.includes('example.org')));
  await ingot(t, ['delete-shared-domain', 'example.org', '-f']);
});

test.serial("delete-route deletes a mapped route, and the app loses it; another space's route is not touched", async (t) => {
  t.timeout(CLI_TEST_TIMEOUT_MS);
  const { cc } = t.context;
  await ingot(t, ['map-route', 'shop', APPS_DOMAIN, '--hostname', 'store']);
  t.is((await ingot(t, ['delete-route', APPS_DOMAIN, '--hostname', 'store', '-f'])).stdout, `Deleted route store.${APPS_DOMAIN}.\n`);
  t.deepEqual(JSON.parse((await ingot(t, ['app', 'shop', '--json'])).stdout).routes, [`web.${APPS_DOMAIN}`]);

  await ingot(t, ['create-org', 'acme']);
  await ingot(t, ['create-space', 'dev', '-o', 'acme']);
  await ingot(t, ['target', '-o', 'acme', '-s', 'dev']);
  await ingot(t, ['create-route', APPS_DOMAIN, '--hostname', 'elsewhere']);
  await ingot(t, ['target', '-o', 'default', '-s', 'default']);
  await ingot(t, ['delete-route', APPS_DOMAIN, '--hostname', 'elsewhere', '-f'], /^ingot: the route elsewhere\.apps\.ingot\.test belongs to another space$/m);
  await ingot(t, ['create-route', APPS_DOMAIN, '--hostname', 'elsewhere'], /^ingot: Creating route elsewhere\.apps\.ingot\.test: the route elsewhere\.apps\.ingot\.test belongs to another space$/m);
  t.is((await cc.admin.get('/v3/routes?hosts=elsewhere')).body.resources.length, 1);
});

test.serial("a user who is not an admin reads the domains but cannot change them: the controller's refusal, one line", async (t) => {
  t.timeout(CLI_TEST_TIMEOUT_MS);
  await ingot(t, ['create-user', 'dana', 'dana-password']);
  await ingot(t, ['create-shared-domain', 'kept.example']);
  await ingot(t, ['set-org-role', 'dana', 'default', 'OrgUser']);
  await ingot(t, ['login', '-u', 'dana', '-p', 'dana-password', '-o', 'default']);
  t.true(JSON.parse((await ingot(t, ['domains', '--json'])).stdout).some((d: { name: string }) => d.name === 'kept.example'));
  await ingot(t, ['create-shared-domain', 'mine.example'], /^ingot: Creating shared domain mine\.example: You are not authorized to perform the requested action$/m);
  await ingot(t, ['delete-shared-domain', 'kept.example', '-f'], /^ingot: Deleting domain kept\.example: You are not authorized to perform the requested action$/m);
  await ingot(t, ['login', '-u', ADMIN.user, '-p', ADMIN.password]);
  t.true(JSON.parse((await ingot(t, ['domains', '--json'])).stdout).some((d: { name: string }) => d.name === 'kept.example'), 'still there');
});

test.serial("private domains: an org's manager makes one, its developers route in it, other orgs never see it", async (t) => {
  t.timeout(CLI_TEST_TIMEOUT_MS);
  const { cc } = t.context;
  const json = () => ingot(t, ['domains', '--json']).then((r) => JSON.parse(r.stdout) as Array<{ name: string; availability: string }>);
  await ingot(t, ['create-org', 'widgets']);
  await ingot(t, ['create-space', 'web', '-o', 'widgets']);
  for (const user of ['wanda', 'walt']) await ingot(t, ['create-user', user, `${user}-password`]);
  await ingot(t, ['set-org-role', 'wanda', 'widgets', 'OrgManager']);
  await ingot(t, ['set-org-role', 'walt', 'widgets', 'OrgUser']);
  await ingot(t, ['set-space-role', 'walt', 'widgets', 'web', 'SpaceDeveloper']);
  await ingot(t, ['set-space-role', 'dana', 'default', 'default', 'SpaceDeveloper']);

  // wanda, widgets' manager, makes a private domain; not in an org she does not see.
  await ingot(t, ['login', '-u', 'wanda', '-p', 'wanda-password', '-o', 'widgets']);
  t.is((await ingot(t, ['create-private-domain', 'widgets', 'Widgets.Example'])).stdout, 'Created private domain widgets.example for org widgets.\n');
  t.regex((await ingot(t, ['domains'])).stdout, /^widgets\.example\s+private$/m);
  await ingot(t, ['create-private-domain', 'default', 'mine.example'], /^ingot: organization default not found$/m);
  await ingot(t, ['create-private-domain', 'widgets', APPS_DOMAIN], new RegExp(`^ingot: Creating private domain ${APPS_DOMAIN.replace(/\./g, '\\.')} for org widgets: The domain name "${APPS_DOMAIN.replace(/\./g, '\\.')}" is already in use$`, 'm'));
  await ingot(t, ['create-shared-domain', 'shared.example'], /^ingot: Creating shared domain shared\.example: You are not authorized to perform the requested action$/m);

  // dana, a developer in the default org only: the domain does not exist for her.
  await ingot(t, ['login', '-u', 'dana', '-p', 'dana-password', '-o', 'default', '-s', 'default']);
  t.false((await json()).some((d) => d.name === 'widgets.example'));
  await ingot(t, ['create-route', 'widgets.example', '--hostname', 'www'], /^ingot: domain widgets\.example not found$/m);
  t.is((await ingot(t, ['delete-private-domain', 'widgets.example', '-f'])).stdout, 'Domain widgets.example does not exist.\n');

  // walt, a SpaceDeveloper of widgets/web, routes in it; he cannot delete it.
  await ingot(t, ['login', '-u', 'walt', '-p', 'walt-password', '-o', 'widgets', '-s', 'web']);
  t.is((await ingot(t, ['create-route', 'widgets.example', '--hostname', 'www'])).stdout, 'Created route www.widgets.example in org widgets / space web.\n');
  t.deepEqual(await routeUrls(t), ['www.widgets.example']);
  t.regex((await ingot(t, ['routes'])).stdout, /^www\s+widgets\.example\s*$/m);
  await ingot(t, ['delete-private-domain', 'widgets.example', '-f'], /^ingot: Deleting domain widgets\.example: You are not authorized to perform the requested action$/m);

  // The admin sees every org's private domains, but the default org's list shows only its own and the shared ones.
  await ingot(t, ['login', '-u', ADMIN.user, '-p', ADMIN.password, '-o', 'default', '-s', 'default']);
  t.false((await json()).some((d) => d.name === 'widgets.example'));
  t.is((await cc.admin.get('/v3/domains?names=widgets.example')).body.resources.length, 1);
  await ingot(
    t,
    ['create-route', 'widgets.example', '--hostname', 'x'],
    /^ingot: Creating route x\.widgets\.example: Invalid domain\. Domain 'widgets\.example' is private to organization 'widgets' and not available in organization 'default'\.$/m,
  );
  await ingot(t, ['create-shared-domain', 'widgets.example'], /^ingot: Creating shared domain widgets\.example: The domain name "widgets\.example" is already in use$/m);
  await ingot(t, ['delete-shared-domain', 'widgets.example', '-f'], /^ingot: domain widgets\.example is a private domain; delete it with ingot delete-private-domain$/m);
  await ingot(t, ['delete-private-domain', 'kept.example', '-f'], /^ingot: domain kept\.example is a shared domain; delete it with ingot delete-shared-domain$/m);

  // wanda deletes it once walt's route is gone.
  await ingot(t, ['login', '-u', 'wanda', '-p', 'wanda-password', '-o', 'widgets']);
  await ingot(t, ['delete-private-domain', 'widgets.example'], /^ingot: give -f to delete the domain widgets\.example without a terminal to confirm on$/m);
  await ingot(t, ['delete-private-domain', 'widgets.example', '-f'], /^ingot: Deleting domain widgets\.example: Delete the routes of this domain first\.$/m);
  await ingot(t, ['login', '-u', 'walt', '-p', 'walt-password', '-o', 'widgets', '-s', 'web']);
  t.is((await ingot(t, ['delete-route', 'widgets.example', '--hostname', 'www', '-f'])).stdout, 'Deleted route www.widgets.example.\n');
  await ingot(t, ['login', '-u', 'wanda', '-p', 'wanda-password', '-o', 'widgets']);
  t.is((await ingot(t, ['delete-private-domain', 'widgets.example', '-f'])).stdout, 'Deleted domain widgets.example.\n');
  t.false((await json()).some((d) => d.name === 'widgets.example'));
  t.is((await cc.admin.get('/v3/domains?names=widgets.example')).body.resources.length, 0);
  await ingot(t, ['login', '-u', ADMIN.user, '-p', ADMIN.password]);
});

// The service commands as a user runs them: the real CLI (a child process) against a real
// controller, a real Redis gateway and node, and a third-party OSB broker in the test process —
// create-service-broker, service-brokers, marketplace, create-service (waiting for an
// asynchronous one), services, service, bind-service, unbind-service, service keys (waiting
// for asynchronous bindings),
// update-service (a plan change; refusals), create-user-provided-service, delete-service, and `services:` in a manifest binding at push.
import anyTest, { type TestFn } from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN } from '../helpers/cc-controller.ts';
import { startServicesWorld, THIRD_PARTY, type ServicesWorld } from '../helpers/cc-services.ts';
import { ingot, stagedApp, TINY_APP, useCliHome } from '../helpers/cc-tenants.ts';
import { redisAs, type RedisCredentials } from '../helpers/services-redis.ts';
import { scratchDir } from '../helpers/tmp.ts';

const test = anyTest as TestFn<ServicesWorld & { space: string }>;

useCliHome('client-services-home');

test.before(async (t) => {
  const world = await startServicesWorld('cli');
  const space = (await world.cc.admin.get('/v3/spaces?names=default')).body.resources[0].guid as string;
  t.context = { ...world, space };
});

test.after.always(async (t) => {
  await t.context.stop?.();
});

/** Each CLI run is a process of its own (about a second each, more on a busy machine). */
const CLI_TEST_TIMEOUT_MS = 180_000;

test.serial('brokers and the marketplace', async (t) => {
  t.timeout(CLI_TEST_TIMEOUT_MS);
  const { cc, tp, redis } = t.context;
  await ingot(t, ['api', cc.url]);
  await ingot(t, ['login', '-u', ADMIN.user, '-p', ADMIN.password]);
  await ingot(t, ['create-service-broker', 'tp', THIRD_PARTY.user, 'wrong', tp.url], /Creating service broker tp: .*HTTP 401/);
  t.regex((await ingot(t, ['create-service-broker', 'tp', THIRD_PARTY.user, THIRD_PARTY.password, tp.url])).stdout, /Created service broker tp at .*, offering tp-db\./);
  const brokers = await ingot(t, ['service-brokers']);
  t.regex(brokers.stdout, new RegExp(`${redis.brokerName}\\s+${redis.gateway.broker.url}\\s+gateway announce`));
  t.regex(brokers.stdout, /^tp\s+http:\S+\s+admin$/m);
  t.false(brokers.stdout.includes(THIRD_PARTY.password));
  const market = await ingot(t, ['marketplace']);
  t.regex(market.stdout, /^redis\s+async, default, large\s+Redis, one server per instance\s+redis-cli$/m);
  t.regex(market.stdout, /^tp-db\s+slow, small/m);
  t.regex((await ingot(t, ['marketplace', '-e', 'tp-db'])).stdout, /^slow\s+Provisioned asynchronously\s+free$/m);
  t.deepEqual(JSON.parse((await ingot(t, ['marketplace', '--json'])).stdout).map((o: { name: string }) => o.name), ['redis', 'tp-db']);
  await ingot(t, ['marketplace', '-e', 'nope'], /service offering nope not found/);
});

test.serial('create-service, bind-service, service keys, unbind, delete', async (t) => {
  t.timeout(CLI_TEST_TIMEOUT_MS);
  const { cc, space } = t.context;
  await ingot(t, ['target', '-o', 'default', '-s', 'default']);
  await ingot(t, ['create-service', 'redis', 'nope', 'c1'], /plan nope not found for service offering redis/);
  await ingot(t, ['create-service', 'redis', 'default', 'c1', '-c', '{bad'], /-c: invalid JSON/);
  t.regex((await ingot(t, ['create-service', 'redis', 'default', 'cache', '-t', 'a,b'])).stdout, /Service instance cache created\./);
  await ingot(t, ['create-service', 'redis', 'default', 'cache'], /Creating service instance cache: The service instance name is taken: cache/);
  const slow = await ingot(t, ['create-service', 'tp-db', 'slow', 'slow-db']);
  t.regex(slow.stdout, /create in progress/, 'progress while it is provisioned');
  t.regex(slow.stdout, /Service instance slow-db created\./);

  const { app } = await stagedApp(cc.admin, 'web', space);
  t.regex((await ingot(t, ['bind-service', 'web', 'cache'])).stdout, /OK\n\nTIP: Use 'ingot restart web'/);
  t.regex((await ingot(t, ['bind-service', 'web', 'cache'])).stdout, /App web is already bound to service instance cache\./);
  const services = await ingot(t, ['services']);
  t.regex(services.stdout, /^cache\s+redis\s+default\s+web\s+create succeeded$/m);
  t.regex(services.stdout, /^slow-db\s+tp-db\s+slow\s+create succeeded$/m);
  const shown = JSON.parse((await ingot(t, ['service', 'cache', '--json'])).stdout);
  t.like(shown, { name: 'cache', offering: 'redis', plan: 'default', bound_apps: ['web'], tags: ['a', 'b'] });
  const env = (await cc.admin.get(`/v3/apps/${app.guid}/env`)).body.system_env_json.VCAP_SERVICES;
  t.is(env.redis[0].name, 'cache');
  t.is(await redisAs(env.redis[0].credentials as RedisCredentials, 'PING'), 'PONG');

  await ingot(t, ['update-service', 'cache'], /nothing to update: give -p PLAN, -c PARAMETERS or -t TAGS/);
  await ingot(t, ['update-service', 'cache', '-p', 'nope'], /plan nope not found for service offering redis/);
  await ingot(t, ['update-service', 'slow-db', '-p', 'small'], /Updating service instance slow-db: Cannot update service instance slow-db: service offering tp-db does not support changing plans/);
  t.regex((await ingot(t, ['update-service', 'cache', '-p', 'large', '-c', '{"note":"bigger"}'])).stdout, /Service instance cache updated to plan large\./);
  t.regex((await ingot(t, ['services'])).stdout, /^cache\s+redis\s+large\s+web\s+update succeeded$/m);

  t.regex((await ingot(t, ['create-service-key', 'cache', 'ops'])).stdout, /Created service key ops for service instance cache\./);
  t.regex((await ingot(t, ['service-keys', 'cache'])).stdout, /^ops\s+create succeeded$/m);
  const key = JSON.parse((await ingot(t, ['service-key', 'cache', 'ops', '--json'])).stdout) as RedisCredentials;
  t.is(await redisAs(key, 'PING'), 'PONG');
  await ingot(t, ['delete-service', 'cache', '-f'], /Deleting service instance cache: Cannot delete service instance cache: it has bindings and keys: app web, service key ops/);
  t.regex((await ingot(t, ['delete-service-key', 'cache', 'ops', '-f'])).stdout, /Deleted service key ops/);
  await t.throwsAsync(redisAs(key, 'PING'));
  t.regex((await ingot(t, ['unbind-service', 'web', 'cache'])).stdout, /Unbound service instance cache from app web\./);
  t.regex((await ingot(t, ['unbind-service', 'web', 'cache'])).stdout, /did not exist/);
  t.regex((await ingot(t, ['delete-service', 'cache', '-f'])).stdout, /Deleted service instance cache\./);
  t.regex((await ingot(t, ['delete-service', 'cache', '-f'])).stdout, /does not exist/);
  await ingot(t, ['delete-service', 'slow-db', '-f']);
});

test.serial('asynchronous bindings: bind-service, unbind-service and the service-key commands wait for the broker; a failed bind is one line', async (t) => {
  t.timeout(CLI_TEST_TIMEOUT_MS);
  const { cc, space, tp } = t.context;
  tp.asyncBindings = true;
  tp.bindingPolls = 5;
  try {
    await ingot(t, ['create-service', 'tp-db', 'small', 'abind']);
    await stagedApp(cc.admin, 'abind-app', space);
    const atBroker = () => [...tp.bindings.values()].filter((b) => tp.instances.has(b.instance_id));
    const bound = await ingot(t, ['bind-service', 'abind-app', 'abind']);
    t.regex(bound.stdout, /create in progress/, 'progress while the broker binds');
    t.regex(bound.stdout, /OK\n/);
    t.is(atBroker().filter((b) => !b.operation).length, 1, 'made at the broker by the time the command returned');
    t.regex((await ingot(t, ['services'])).stdout, /^abind\s+tp-db\s+small\s+abind-app\s+create succeeded$/m);

    t.regex((await ingot(t, ['create-service-key', 'abind', 'k'])).stdout, /Created service key k for service instance abind\./);
    t.regex((await ingot(t, ['service-key', 'abind', 'k'])).stdout, /"uri": "tp:\/\//);
    t.regex((await ingot(t, ['delete-service-key', 'abind', 'k', '-f'])).stdout, /delete in progress[\s\S]*Deleted service key k/);
    const unbound = await ingot(t, ['unbind-service', 'abind-app', 'abind']);
    t.regex(unbound.stdout, /delete in progress[\s\S]*Unbound service instance abind from app abind-app\./);
    t.deepEqual(atBroker(), [], 'nothing left at the broker');

    await ingot(t, ['bind-service', 'abind-app', 'abind', '-c', '{"fail":true}'], /Binding service instance abind to app abind-app: create failed: the broker could not make the binding/);
    t.regex((await ingot(t, ['unbind-service', 'abind-app', 'abind'])).stdout, /Unbound service instance abind from app abind-app\./, 'a failed binding is removed');
    await ingot(t, ['delete-service', 'abind', '-f']);
  } finally {
    tp.asyncBindings = false;
    tp.bindingPolls = 3;
  }
});

test.serial('a user-provided service, and services: in a manifest bound at push (a missing one stops the push first)', async (t) => {
  t.timeout(CLI_TEST_TIMEOUT_MS);
  const { cc, journal } = t.context;
  await ingot(t, ['create-user-provided-service', 'ext', '-p', '{"uri":"smtp://mail.example.com"}']);
  const dir = join(scratchDir('client-services-app'), 'app');
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(TINY_APP)) writeFileSync(join(dir, name), content);
  writeFileSync(join(dir, 'package.json'), '{"name":"app","scripts":{"start":"node server.js"}}');
  writeFileSync(join(dir, 'manifest.yml'), 'applications:\n- name: mailer\n  services: [ext, missing-one]\n');
  await ingot(t, ['push', '-p', dir, '-f', join(dir, 'manifest.yml')], /mailer: service instance missing-one not found in space default\/default; create it first/);
  t.is((await cc.admin.get('/v3/apps?names=mailer')).body.resources.length, 0, 'nothing was created');

  writeFileSync(join(dir, 'manifest.yml'), 'applications:\n- name: mailer\n  services: [ext]\n');
  const pushed = await ingot(t, ['push', '-p', dir, '-f', join(dir, 'manifest.yml')]);
  t.regex(pushed.stdout, /Binding service instance ext/);
  const app = (await cc.admin.get('/v3/apps?names=mailer')).body.resources[0];
  const start = journal.starts(app.guid).at(-1)!;
  t.deepEqual(start.msg.services.map((s) => [s.name, s.label, s.credentials]), [['ext', 'user-provided', { uri: 'smtp://mail.example.com' }]]);
  t.regex((await ingot(t, ['push', '-p', dir, '-f', join(dir, 'manifest.yml')])).stdout, /Binding service instance ext \(already bound\)/);
});

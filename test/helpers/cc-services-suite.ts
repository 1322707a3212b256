// Services through the controller, every part real: a Redis node making real redis-servers, its
// gateway announcing itself on the bus, the controller (a process) registering it; a
// third-party OSB broker in the test process registered by URL. Apps are staged by a test
// stager and started on a test DEA, whose dea.start messages are the VCAP_SERVICES the app
// would get; the credentials are then tried against Redis itself.
// One suite, run by cc-services.test.ts on SQLite and by cc-services-postgres.test.ts on PostgreSQL.
import type { TestFn } from 'ava';
import type { ApiClient, CcSuiteOptions } from './cc-controller.ts';
import { startServicesWorld, THIRD_PARTY, type ServicesWorld } from './cc-services.ts';
import { addUser, giveRole, must, orgWithSpace, stagedApp } from './cc-tenants.ts';
import { eventually } from './component-process.ts';
import { BROKER, redisAs, redisConfigOf, redisPidsUnder, type RedisCredentials } from './services-redis.ts';

export interface CcServicesContext extends ServicesWorld {
  alice: ApiClient;
  bob: ApiClient;
  space: string;
  bobSpace: string;
  /** Plan guids by `offering/plan`. */
  plans: Record<string, string>;
}

const errorOf = (body: any) => body?.errors?.[0] as { title: string; detail: string } | undefined;

async function planGuid(c: CcServicesContext, offering: string, plan: string): Promise<string> {
  const key = `${offering}/${plan}`;
  if (!c.plans[key]) {
    const plans = (await c.alice.get(`/v3/service_plans?service_offering_names=${offering}&names=${plan}`)).body.resources;
    if (plans.length !== 1) throw new Error(`plan ${key}: ${JSON.stringify(plans)}`);
    c.plans[key] = plans[0].guid;
  }
  return c.plans[key]!;
}

async function createManaged(c: CcServicesContext, name: string, offering = 'redis', plan = 'default', api = c.alice, space = c.space) {
  return api.post('/v3/service_instances', { type: 'managed', name, relationships: { space: { data: { guid: space } }, service_plan: { data: { guid: await planGuid(c, offering, plan) } } } });
}

const bindApp = (api: ApiClient, instance: string, app: string) => api.post('/v3/service_credential_bindings', { type: 'app', relationships: { service_instance: { data: { guid: instance } }, app: { data: { guid: app } } } });
const details = async (api: ApiClient, binding: string) => (await must(api.get(`/v3/service_credential_bindings/${binding}/details`), 200, 'binding details')).credentials;

/** Registers the suite on `test`: its world before (the controller on `options.dbUrl()`), stopped after, and the cases. */
export function registerCcServicesSuite(test: TestFn<CcServicesContext>, options: CcSuiteOptions): void {
  test.before(async (t) => {
    const world = await startServicesWorld('cc', { dbUrl: await options.dbUrl() });
    const { cc } = world;
    const a = await orgWithSpace(cc, 'org-a', 'a1');
    const b = await orgWithSpace(cc, 'org-b', 'b1');
    const alice = await addUser(cc, 'alice');
    const bob = await addUser(cc, 'bob');
    await giveRole(cc.admin, 'organization_user', alice.guid, { organization: a.org.guid });
    await giveRole(cc.admin, 'space_developer', alice.guid, { space: a.space.guid });
    await giveRole(cc.admin, 'organization_user', bob.guid, { organization: b.org.guid });
    await giveRole(cc.admin, 'space_developer', bob.guid, { space: b.space.guid });
    t.context = { ...world, alice: alice.api, bob: bob.api, space: a.space.guid, bobSpace: b.space.guid, plans: {} };
  });

  test.after.always(async (t) => {
    await t.context.stop?.();
  });

  test.serial('the gateway announced itself: its broker is registered, its offering and plans are listed, its credential never shown', async (t) => {
    const { cc, alice, redis } = t.context;
    const broker = (await cc.admin.get(`/v3/service_brokers?names=${redis.brokerName}`)).body.resources[0];
    t.like(broker, { name: redis.brokerName, url: redis.gateway.broker.url, source: 'announce' });
    t.false(JSON.stringify(broker).includes(BROKER.password));
    const offering = (await alice.get('/v3/service_offerings?names=redis')).body.resources[0];
    t.like(offering, { name: 'redis', relationships: { service_broker: { data: { guid: broker.guid } } }, broker_catalog: { features: { bindable: true, plan_updateable: true } } });
    const plans = (await alice.get(`/v3/service_plans?service_offering_guids=${offering.guid}`)).body.resources.map((p: any) => p.name).sort();
    t.deepEqual(plans, ['async', 'default', 'large']);
    t.is((await alice.get('/v3/service_brokers')).status, 403, 'brokers are for admins');
  });

  test.serial('an admin registers a third-party broker by URL; its offering appears; a wrong credential is refused', async (t) => {
    const { cc, alice, tp } = t.context;
    const body = (password: string) => ({ name: 'third-party', url: tp.url, authentication: { type: 'basic', credentials: { username: THIRD_PARTY.user, password } } });
    const bad = await cc.admin.post('/v3/service_brokers', body('wrong'));
    t.is(bad.status, 422);
    t.regex(errorOf(bad.body)!.detail, /third-party.*HTTP 401/);
    t.is((await alice.post('/v3/service_brokers', body(THIRD_PARTY.password))).status, 403);
    const broker = await must(cc.admin.post('/v3/service_brokers', body(THIRD_PARTY.password)), 201, 'register');
    t.false(JSON.stringify(broker).includes(THIRD_PARTY.password));
    t.is((await cc.admin.post('/v3/service_brokers', body(THIRD_PARTY.password))).status, 422, 'the name is taken');
    const offerings = (await alice.get(`/v3/service_offerings?service_broker_guids=${broker.guid}`)).body.resources;
    t.deepEqual(offerings.map((o: any) => o.name), ['tp-db']);
    const events = (await cc.admin.get(`/v3/audit_events?types=audit.service_broker.create&target_guids=${broker.guid}`)).body.resources;
    t.is(events.length, 1);
  });

  test.serial('create, bind, VCAP_SERVICES at the next start, credentials work; unbind revokes them; delete deprovisions', async (t) => {
    const c = t.context;
    const { alice, journal, redis } = c;
    const before = (await redisPidsUnder(redis.node.baseDir)).length;
    const instance = await must(createManaged(c, 'cache'), 201, 'create-service');
    t.like(instance, { name: 'cache', type: 'managed', last_operation: { type: 'create', state: 'succeeded' } });
    t.is((await createManaged(c, 'cache')).status, 422, 'names are unique in a space');
    const { app } = await stagedApp(alice, 'web', c.space);
    const binding = await must(bindApp(alice, instance.guid, app.guid), 201, 'bind');
    t.is(binding.type, 'app');
    t.false('credentials' in binding);
    const creds = (await details(alice, binding.guid)) as RedisCredentials;
    t.regex(creds.uri, /^redis:\/\//);

    const env = await must(alice.get(`/v3/apps/${app.guid}/env`), 200, 'env');
    const [entry] = env.system_env_json.VCAP_SERVICES.redis;
    t.like(entry, { name: 'cache', label: 'redis', plan: 'default', instance_name: 'cache', binding_guid: binding.guid, credentials: creds });
    t.true(entry.tags.includes('redis'));

    const seen = journal.starts(app.guid).length;
    await must(alice.post(`/v3/apps/${app.guid}/actions/start`), 200, 'start');
    const start = await eventually(() => journal.starts(app.guid)[seen], 10_000, 'dea.start');
    t.deepEqual(start.msg.services.map((s) => [s.name, s.label, s.plan, s.credentials]), [['cache', 'redis', 'default', creds]]);

    t.is(await redisAs(creds, 'SET', 'greeting', 'hello'), 'OK');
    t.is(await redisAs(creds, 'GET', 'greeting'), 'hello');

    const refused = await alice.del(`/v3/service_instances/${instance.guid}`);
    t.is(refused.status, 422);
    t.regex(errorOf(refused.body)!.detail, /app web/);

    t.is((await alice.del(`/v3/service_credential_bindings/${binding.guid}`)).status, 204);
    await t.throwsAsync(redisAs(creds, 'PING'), undefined, 'an unbound credential is refused');
    t.deepEqual((await alice.get(`/v3/apps/${app.guid}/env`)).body.system_env_json.VCAP_SERVICES, {});

    t.is((await redisPidsUnder(redis.node.baseDir)).length, before + 1);
    t.is((await alice.del(`/v3/service_instances/${instance.guid}`)).status, 204);
    await eventually(async () => (await redisPidsUnder(redis.node.baseDir)).length === before, 10_000, 'the redis-server deprovisioned');
    t.is((await alice.get(`/v3/service_instances/${instance.guid}`)).status, 404);

    const types = (await alice.get(`/v3/audit_events?types=audit.service_instance.create,audit.service_binding.create,audit.service_binding.delete,audit.service_instance.delete`)).body.resources.map((e: any) => e.type);
    t.deepEqual(types, ['audit.service_instance.create', 'audit.service_binding.create', 'audit.service_binding.delete', 'audit.service_instance.delete']);
  });

  test.serial('a user-provided instance: bound, its credentials are in VCAP_SERVICES; never in the instance itself', async (t) => {
    const { alice, space } = t.context;
    const ups = await must(
      alice.post('/v3/service_instances', { type: 'user-provided', name: 'ext-db', credentials: { uri: 'postgres://u:p@db.example.com/x' }, tags: ['pg'], relationships: { space: { data: { guid: space } } } }),
      201,
      'cups',
    );
    t.false(JSON.stringify(ups).includes('db.example.com'));
    t.deepEqual(await must(alice.get(`/v3/service_instances/${ups.guid}/credentials`), 200, 'credentials'), { uri: 'postgres://u:p@db.example.com/x' });
    const app = await must(alice.post('/v3/apps', { name: 'ups-user', relationships: { space: { data: { guid: space } } } }), 201, 'app');
    await must(bindApp(alice, ups.guid, app.guid), 201, 'bind');
    const vcap = (await alice.get(`/v3/apps/${app.guid}/env`)).body.system_env_json.VCAP_SERVICES;
    t.like(vcap['user-provided'][0], { name: 'ext-db', label: 'user-provided', tags: ['pg'], credentials: { uri: 'postgres://u:p@db.example.com/x' } });
    t.is((await alice.del(`/v3/apps/${app.guid}`)).status, 204, 'deleting the app takes its bindings');
    t.is((await alice.del(`/v3/service_instances/${ups.guid}`)).status, 204);
  });

  test.serial('service keys: credentials of their own, listed by name, revoked on delete', async (t) => {
    const c = t.context;
    const { alice } = c;
    const instance = await must(createManaged(c, 'keyed'), 201, 'create');
    const key = await must(alice.post('/v3/service_credential_bindings', { type: 'key', name: 'ops', relationships: { service_instance: { data: { guid: instance.guid } } } }), 201, 'key');
    t.is((await alice.post('/v3/service_credential_bindings', { type: 'key', name: 'ops', relationships: { service_instance: { data: { guid: instance.guid } } } })).status, 422);
    const creds = (await details(alice, key.guid)) as RedisCredentials;
    t.is(await redisAs(creds, 'PING'), 'PONG');
    const keys = (await alice.get(`/v3/service_credential_bindings?type=key&service_instance_guids=${instance.guid}`)).body.resources;
    t.deepEqual(keys.map((k: any) => k.name), ['ops']);
    t.regex(errorOf((await alice.del(`/v3/service_instances/${instance.guid}`)).body)!.detail, /service key ops/);
    t.is((await alice.del(`/v3/service_credential_bindings/${key.guid}`)).status, 204);
    await t.throwsAsync(redisAs(creds, 'PING'));
    t.is((await alice.del(`/v3/service_instances/${instance.guid}`)).status, 204);
  });

  test.serial('a space quota on service instances refuses the one too many, naming the quota', async (t) => {
    const c = t.context;
    const { cc, alice, space } = c;
    const org = (await alice.get(`/v3/spaces/${space}`)).body.relationships.organization.data.guid;
    const quota = await must(cc.admin.post('/v3/space_quotas', { name: 'one-service', services: { total_service_instances: 1 }, relationships: { organization: { data: { guid: org } }, spaces: { data: [{ guid: space }] } } }), 201, 'quota');
    const first = await must(alice.post('/v3/service_instances', { type: 'user-provided', name: 'only', relationships: { space: { data: { guid: space } } } }), 201, 'first');
    const second = await createManaged(c, 'too-many');
    t.is(second.status, 422);
    t.is(errorOf(second.body)!.detail, "service instance quota exceeded: space quota 'one-service' allows 1 service instance, the space would use 2 service instances (ServiceInstanceSpaceQuotaExceeded)");
    t.is((await alice.get('/v3/service_instances?names=too-many')).body.resources.length, 0, 'nothing kept, nothing provisioned');
    await must(alice.del(`/v3/service_instances/${first.guid}`), 204, 'delete');
    await must(cc.admin.del(`/v3/space_quotas/${quota.guid}/relationships/spaces/${space}`), 204, 'unapply');
  });

  test.serial('an asynchronous plan answers 202 and the controller polls last_operation to success', async (t) => {
    const c = t.context;
    const { alice, tp } = c;
    const res = await createManaged(c, 'slow-db', 'tp-db', 'slow');
    t.is(res.status, 202);
    t.like(res.body, { last_operation: { type: 'create', state: 'in progress' } });
    t.is(res.headers.get('location'), res.body.links.self.href);
    const done = await eventually(async () => {
      const i = (await alice.get(`/v3/service_instances/${res.body.guid}`)).body;
      return i.last_operation.state === 'succeeded' ? i : undefined;
    }, 10_000, 'the async create to succeed');
    t.is(done.last_operation.description, 'ready');
    t.true(tp.calls.filter((x) => x.endsWith('/last_operation')).length >= tp.pollsBeforeDone);
    const key = await must(alice.post('/v3/service_credential_bindings', { type: 'key', name: 'k', relationships: { service_instance: { data: { guid: done.guid } } } }), 201, 'key');
    t.regex(String((await details(alice, key.guid)).uri), /^tp:\/\//);
    await must(alice.del(`/v3/service_credential_bindings/${key.guid}`), 204, 'delete key');
    await must(alice.del(`/v3/service_instances/${done.guid}`), 204, 'delete');
    t.false(tp.instances.has(done.guid));
  });

  test.serial('a 410 while a create is polled is not the end (OSB): the controller polls on until the broker says succeeded', async (t) => {
    const c = t.context;
    const { alice, tp } = c;
    tp.unknownPolls = 2;
    try {
      const res = await createManaged(c, 'not-yet-known', 'tp-db', 'slow');
      t.is(res.status, 202);
      const done = await eventually(async () => {
        const i = (await alice.get(`/v3/service_instances/${res.body.guid}`)).body;
        return i.last_operation.state !== 'in progress' ? i : undefined;
      }, 10_000, 'the async create to end');
      t.like(done.last_operation, { type: 'create', state: 'succeeded' });
      t.is(tp.unknownPolls, 0, 'both 410s were polled through');
      await must(alice.del(`/v3/service_instances/${done.guid}`), 204, 'delete');
    } finally {
      tp.unknownPolls = 0;
    }
  });

  test.serial('the gateway’s asynchronous plan provisions through the controller too', async (t) => {
    const c = t.context;
    const res = await createManaged(c, 'async-cache', 'redis', 'async');
    t.is(res.status, 202);
    await eventually(async () => (await c.alice.get(`/v3/service_instances/${res.body.guid}`)).body.last_operation.state === 'succeeded', 20_000, 'async redis');
    await must(c.alice.del(`/v3/service_instances/${res.body.guid}`), 204, 'delete');
  });

  test.serial('another tenant neither sees nor binds an instance', async (t) => {
    const c = t.context;
    const { alice, bob } = c;
    const instance = await must(createManaged(c, 'private'), 201, 'create');
    const key = await must(alice.post('/v3/service_credential_bindings', { type: 'key', name: 'mine', relationships: { service_instance: { data: { guid: instance.guid } } } }), 201, 'key');
    t.is((await bob.get(`/v3/service_instances/${instance.guid}`)).status, 404);
    t.is((await bob.get(`/v3/service_credential_bindings/${key.guid}/details`)).status, 404);
    t.deepEqual((await bob.get('/v3/service_instances')).body.resources, []);
    t.deepEqual((await bob.get('/v3/service_credential_bindings')).body.resources, []);
    const bobApp = await must(bob.post('/v3/apps', { name: 'thief', relationships: { space: { data: { guid: c.bobSpace } } } }), 201, 'app');
    const steal = await bindApp(bob, instance.guid, bobApp.guid);
    t.is(steal.status, 422);
    t.regex(errorOf(steal.body)!.detail, /could not be found/);
    t.is((await createManaged(c, 'intruder', 'redis', 'default', bob, c.space)).status, 422, 'nor create in alice’s space');
    await must(alice.del(`/v3/service_credential_bindings/${key.guid}`), 204, 'delete key');
    await must(alice.del(`/v3/service_instances/${instance.guid}`), 204, 'delete');
  });

  test.serial('update-service: a plan change is applied by the node to the instance’s own redis-server, and shown; bindings keep working', async (t) => {
    const c = t.context;
    const { alice, cc, redis } = c;
    const instance = await must(createManaged(c, 'growing'), 201, 'create');
    const key = await must(alice.post('/v3/service_credential_bindings', { type: 'key', name: 'k', relationships: { service_instance: { data: { guid: instance.guid } } } }), 201, 'key');
    t.is(await redisConfigOf(redis.node.baseDir, instance.guid, 'maxmemory'), String(2 * 1024 * 1024));
    const large = await planGuid(c, 'redis', 'large');
    const updated = await must(alice.patch(`/v3/service_instances/${instance.guid}`, { relationships: { service_plan: { data: { guid: large } } }, parameters: { note: 'bigger' } }), 200, 'update');
    t.like(updated, { relationships: { service_plan: { data: { guid: large } } }, last_operation: { type: 'update', state: 'succeeded' } });
    t.is(await redisConfigOf(redis.node.baseDir, instance.guid, 'maxmemory'), String(4 * 1024 * 1024));
    t.is(await redisConfigOf(redis.node.baseDir, instance.guid, 'maxclients'), '30');
    t.is((await alice.get(`/v3/service_instances/${instance.guid}`)).body.relationships.service_plan.data.guid, large);
    t.is(await redisAs((await details(alice, key.guid)) as RedisCredentials, 'PING'), 'PONG', 'the binding still works');

    const bad = await alice.patch(`/v3/service_instances/${instance.guid}`, { relationships: { service_plan: { data: { guid: 'no-such-plan' } } } });
    t.is(bad.status, 422);
    t.regex(errorOf(bad.body)!.detail, /growing: invalid service plan/);
    const foreign = await alice.patch(`/v3/service_instances/${instance.guid}`, { relationships: { service_plan: { data: { guid: await planGuid(c, 'tp-db', 'small') } } } });
    t.is(foreign.status, 422);
    t.regex(errorOf(foreign.body)!.detail, /plan small is a plan of service offering tp-db, not of redis/);
    t.is((await alice.patch(`/v3/service_instances/${instance.guid}`, { credentials: { a: 1 } })).status, 422, 'credentials are a user-provided instance’s');
    t.is((await alice.get(`/v3/service_instances/${instance.guid}`)).body.relationships.service_plan.data.guid, large, 'a refusal keeps the plan');

    const events = (await cc.admin.get(`/v3/audit_events?types=audit.service_instance.update&target_guids=${instance.guid}`)).body.resources;
    t.is(events.length, 1);
    t.like(events[0].data.request, { service_plan_guid: large, parameters: '[PRIVATE DATA HIDDEN]' });
    await must(alice.del(`/v3/service_credential_bindings/${key.guid}`), 204, 'delete key');
    await must(alice.del(`/v3/service_instances/${instance.guid}`), 204, 'delete');
  });

  test.serial('update-service: an offering that is not plan_updateable refuses a plan change with 422 naming it', async (t) => {
    const c = t.context;
    const { alice, tp } = c;
    const instance = await must(createManaged(c, 'fixed-db', 'tp-db', 'small'), 201, 'create');
    const res = await alice.patch(`/v3/service_instances/${instance.guid}`, { relationships: { service_plan: { data: { guid: await planGuid(c, 'tp-db', 'slow') } } } });
    t.is(res.status, 422);
    t.regex(errorOf(res.body)!.detail, /^Cannot update service instance fixed-db: service offering tp-db does not support changing plans/);
    t.false(tp.calls.some((x) => x.startsWith('PATCH')), 'the broker was not asked');
    const renamed = await must(alice.patch(`/v3/service_instances/${instance.guid}`, { name: 'fixed-db-2', tags: ['x'] }), 200, 'rename needs no broker');
    t.like(renamed, { name: 'fixed-db-2', tags: ['x'] });
    await must(alice.del(`/v3/service_instances/${instance.guid}`), 204, 'delete');
  });

  test.serial('update-service at a plan_updateable third-party broker: a 202 polled to success records the new plan; a refusal keeps the old one', async (t) => {
    const c = t.context;
    const { cc, alice, tp } = c;
    const refetch = async (updateable: boolean) => {
      tp.planUpdateable = updateable;
      const broker = (await cc.admin.get('/v3/service_brokers?names=third-party')).body.resources[0];
      await must(cc.admin.patch(`/v3/service_brokers/${broker.guid}`, {}), 200, 'fetch the catalog again');
      const offering = (await alice.get('/v3/service_offerings?names=tp-db')).body.resources[0];
      t.is(offering.broker_catalog.features.plan_updateable, updateable);
    };
    await refetch(true);
    try {
      const [small, slow] = [await planGuid(c, 'tp-db', 'small'), await planGuid(c, 'tp-db', 'slow')];
      const instance = await must(createManaged(c, 'flex-db', 'tp-db', 'small'), 201, 'create');
      const refused = await alice.patch(`/v3/service_instances/${instance.guid}`, { relationships: { service_plan: { data: { guid: slow } } }, parameters: { fail: true } });
      t.is(refused.status, 422);
      t.regex(errorOf(refused.body)!.detail, /Updating at service broker third-party: HTTP 422 ImpossibleChange: the broker cannot make that change/);
      t.is((await alice.get(`/v3/service_instances/${instance.guid}`)).body.relationships.service_plan.data.guid, small, 'the old plan kept');

      const res = await alice.patch(`/v3/service_instances/${instance.guid}`, { relationships: { service_plan: { data: { guid: slow } } } });
      t.is(res.status, 202);
      t.is(res.headers.get('location'), res.body.links.self.href);
      t.like(res.body, { last_operation: { type: 'update', state: 'in progress' }, relationships: { service_plan: { data: { guid: small } } } });
      t.like(tp.updates.at(-1), { service_id: THIRD_PARTY.serviceId, plan_id: 'tp-async', previous_values: { service_id: THIRD_PARTY.serviceId, plan_id: 'tp-sync' } });
      const done = await eventually(async () => {
        const i = (await alice.get(`/v3/service_instances/${instance.guid}`)).body;
        return i.last_operation.state === 'succeeded' ? i : undefined;
      }, 10_000, 'the async update to succeed');
      t.is(done.relationships.service_plan.data.guid, slow);
      t.is(tp.instances.get(instance.guid)?.plan_id, 'tp-async');
      await must(alice.del(`/v3/service_instances/${instance.guid}`), 204, 'delete');
    } finally {
      await refetch(false);
    }
  });
  test.serial('asynchronous bindings at a third-party broker: 202s polled to their end, credentials only once made, a failed bind shown and deleted, a restarted controller finishes what it polled', async (t) => {
    const c = t.context;
    const { cc, alice, tp } = c;
    tp.asyncBindings = true;
    // Polled every 0.2 s: each operation stays in progress for about 3 s.
    tp.bindingPolls = 15;
    try {
      const instance = await must(createManaged(c, 'async-binds', 'tp-db', 'small'), 201, 'create');
      const { app } = await stagedApp(alice, 'async-bound', c.space);
      const vcap = async () => (await must(alice.get(`/v3/apps/${app.guid}/env`), 200, 'env')).system_env_json.VCAP_SERVICES;
      const binding = async (guid: string) => (await alice.get(`/v3/service_credential_bindings/${guid}`)).body;
      const settled = (guid: string, what: string) =>
        eventually(async () => {
          const b = await binding(guid);
          return b.last_operation?.state !== 'in progress' ? b : undefined;
        }, 20_000, what);

      const res = await bindApp(alice, instance.guid, app.guid);
      t.is(res.status, 202);
      t.is(res.headers.get('location'), res.body.links.self.href);
      t.like(res.body, { last_operation: { type: 'create', state: 'in progress' } });
      const early = await alice.get(`/v3/service_credential_bindings/${res.body.guid}/details`);
      t.is(early.status, 422, 'no credentials while the bind is in progress');
      t.deepEqual(await vcap(), {}, 'nor in the app’s environment');
      t.like(await settled(res.body.guid, 'the bind to end'), { last_operation: { type: 'create', state: 'succeeded' } });
      const creds = await details(alice, res.body.guid);
      t.deepEqual(creds, tp.bindings.get(res.body.guid)?.credentials, 'fetched from the broker once made');
      t.deepEqual((await vcap())['tp-db'].map((e: any) => e.credentials), [creds]);

      const unbound = await alice.del(`/v3/service_credential_bindings/${res.body.guid}`);
      t.is(unbound.status, 202);
      t.like(unbound.body, { last_operation: { type: 'delete', state: 'in progress' } });
      await eventually(async () => (await alice.get(`/v3/service_credential_bindings/${res.body.guid}`)).status === 404, 20_000, 'the unbind to end');
      t.false(tp.bindings.has(res.body.guid));

      const failing = await alice.post('/v3/service_credential_bindings', { type: 'app', relationships: { service_instance: { data: { guid: instance.guid } }, app: { data: { guid: app.guid } } }, parameters: { fail: true } });
      t.is(failing.status, 202);
      t.like(await settled(failing.body.guid, 'the failing bind to end'), { last_operation: { type: 'create', state: 'failed', description: 'the broker could not make the binding' } });
      t.deepEqual(await vcap(), {});
      t.is((await alice.del(`/v3/service_credential_bindings/${failing.body.guid}`)).status, 204, 'a failed binding is deleted at once');

      const key = await alice.post('/v3/service_credential_bindings', { type: 'key', name: 'k-async', relationships: { service_instance: { data: { guid: instance.guid } } } });
      t.is(key.status, 202);
      await cc.kill();
      t.truthy(tp.bindings.get(key.body.guid)?.operation, 'the bind was still in progress at the kill');
      await cc.start();
      t.like(await settled(key.body.guid, 'the restarted controller to finish the bind'), { last_operation: { state: 'succeeded' } });
      t.regex(String((await details(alice, key.body.guid)).uri), /^tp:\/\//);
      t.is((await alice.del(`/v3/service_credential_bindings/${key.body.guid}`)).status, 202);
      await eventually(async () => (await alice.get(`/v3/service_credential_bindings/${key.body.guid}`)).status === 404, 20_000, 'the key gone');
      await must(alice.del(`/v3/service_instances/${instance.guid}`), 204, 'delete');
    } finally {
      tp.asyncBindings = false;
      tp.bindingPolls = 3;
    }
  });
}

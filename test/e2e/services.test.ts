// Services end to end, as a developer uses them, against one local kernel with the four
// services (a real node and gateway per service, the gateways registered with the controller
// by their announcements): examples/services-demo — a Node app that reads VCAP_SERVICES with
// cfenv and talks to each bound service with its usual npm client (redis, pg, mysql2,
// amqplib) — stores and reads values, and publishes and consumes a message, with its own
// credentials; two apps cannot reach each other's data; plan limits hold, and update-service
// raises them on the running instances; unbind revokes; a node restart keeps the data; two
// gateways of one service both provision (as two brokers, or as one broker whose URL follows
// the live gateway); a full node refuses clearly; a third-party broker registered by URL
// provisions. Serial; times are logged, bounds are generous (about 10× what each step takes
// here).
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { MysqlClient, MysqlError } from '../../kernel/services/nodes/mysql/mysql-wire.ts';
import { ADMIN } from '../helpers/cc-controller.ts';
import { TestOsbBroker, THIRD_PARTY } from '../helpers/cc-services.ts';
import { eventually } from '../helpers/component-process.ts';
import { startPlatform, type CliResult, type Platform } from '../helpers/platform.ts';
import { send, type Reply } from '../helpers/router-process.ts';
import { AmqpClosed, AmqpConnection } from '../helpers/services-amqp.ts';
import { SERVICE_LABELS, type ServiceLabel } from '../helpers/services-deployment.ts';
import type { RabbitCredentials } from '../helpers/services-rabbitmq.ts';
import { redisAs, varzOf, type RedisCredentials } from '../helpers/services-redis.ts';
import type { SqlCredentials } from '../helpers/services-sql.ts';

const test = anyTest as TestFn;
const DEMO = fileURLToPath(new URL('../../examples/services-demo', import.meta.url));

// Module-level, so the after hook cleans up whatever a failing test left.
let p: Platform | undefined;
let tp: TestOsbBroker | undefined;
const timings: Record<string, number> = {};

function platform(): Platform {
  if (!p) throw new Error('the platform is not up');
  return p;
}

test.before(async (t) => {
  t.timeout(600_000);
  const started = Date.now();
  // MySQL's node holds two instances: the third is refused.
  p = await startPlatform({ label: 'e2e-svc', services: [...SERVICE_LABELS], serviceCapacity: { mysql: 2 } });
  timings.platform_up_ms = Date.now() - started;
  for (const args of [['api', p.apiUrl], ['login', '-u', ADMIN.user, '-p', ADMIN.password]]) {
    const r = await p.cli(args);
    if (r.code !== 0) throw new Error(`ingot ${args[0]}: ${r.stderr}`);
  }
});

test.after.always(async (t) => {
  t.timeout(180_000);
  const started = Date.now();
  await tp?.close();
  await p?.stop();
  t.log(JSON.stringify({ ...timings, teardown_ms: Date.now() - started }));
});

/** Runs the CLI; `refusal`, when given, is what its one-line error must say. */
async function ingot(t: ExecutionContext, args: string[], refusal?: RegExp, timeoutMs = 180_000): Promise<CliResult> {
  const r = await platform().cli(args, timeoutMs);
  if (!refusal) {
    if (r.code !== 0) t.log(`ingot ${args.join(' ')} → ${r.code}\n${r.stdout}\n${r.stderr}`);
    t.is(r.code, 0, `ingot ${args.join(' ')}: ${r.stderr.trim()}`);
    return r;
  }
  t.is(r.code, 1, `ingot ${args.join(' ')} should fail: ${r.stdout}`);
  t.regex(r.stderr.trim(), refusal);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.notRegex(r.stderr, /\n\s+at /, 'no stack');
  return r;
}

/** A request to the app through the router. */
function app(name: string, method: 'GET' | 'PUT', path: string, body?: string): Promise<Reply> {
  const pl = platform();
  return send({ port: pl.router.port, host: pl.appHost(name), method, path, body, timeoutMs: 30_000 });
}

/** The credentials of each of the app's bindings, by service label (the app's VCAP_SERVICES). */
async function vcapOf(name: string): Promise<Record<string, Array<{ name: string; credentials: any }>>> {
  const admin = platform().cc.admin;
  const guid = (await admin.get(`/v3/apps?names=${name}`)).body.resources[0].guid as string;
  return (await admin.get(`/v3/apps/${guid}/env`)).body.system_env_json.VCAP_SERVICES ?? {};
}

async function timed<T>(key: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await work();
  } finally {
    timings[key] = Date.now() - started;
  }
}

const pgConnect = async (c: SqlCredentials, database = c.name): Promise<pg.Client> => {
  const client = new pg.Client({ host: c.host, port: c.port, user: c.username, password: c.password, database, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  return client;
};
const mysqlConnect = (c: SqlCredentials) => MysqlClient.connect({ host: c.host, port: c.port, user: c.username, password: c.password, database: c.name });
const amqpOpen = (c: RabbitCredentials) => AmqpConnection.open({ host: c.host, port: c.port, username: c.username, password: c.password, vhost: c.vhost });

test.serial('the marketplace lists the four services, plans default and large; the demo app pushes with its npm clients', async (t) => {
  t.timeout(600_000);
  const pl = platform();
  const market = await ingot(t, ['marketplace']);
  for (const label of SERVICE_LABELS) t.regex(market.stdout, new RegExp(`^${label}\\s+default, large\\s+.*${label}-gw$`, 'm'));
  // Both apps at once: each stages with npm install from the loopback registry.
  const pushes = await timed('push_two_apps_ms', () => Promise.all(['svc-a', 'svc-b'].map((name) => ingot(t, ['push', name, '-p', DEMO, '-m', '128M']))));
  for (const r of pushes) t.regex(r.stdout, /1 of 1 instance running/);
  for (const pkg of ['cfenv', 'redis', 'pg', 'mysql2', 'amqplib']) t.true(pl.registry.tarballsServed.some((x) => x.startsWith(`${pkg}@`)), `${pkg} came from the loopback registry`);
  t.deepEqual(JSON.parse((await app('svc-a', 'GET', '/')).body), []);
  const unbound = await app('svc-a', 'GET', '/redis/greeting');
  t.is(unbound.status, 404);
  t.regex(unbound.body, /no redis service is bound/);
});

test.serial('create-service, bind-service, restart: the app stores and reads with its own credentials in redis, postgresql and mysql, and publishes and consumes in rabbitmq', async (t) => {
  t.timeout(600_000);
  await timed('create_services_ms', () =>
    Promise.all([
      ...SERVICE_LABELS.map((label) => ingot(t, ['create-service', label, 'default', `a-${label}`])),
      ingot(t, ['create-service', 'redis', 'default', 'b-redis']),
      ingot(t, ['create-service', 'postgresql', 'default', 'b-postgresql']),
    ]),
  );
  await timed('bind_services_ms', async () => {
    // One bind at a time per app: each changes the app's bindings.
    for (const label of SERVICE_LABELS) t.regex((await ingot(t, ['bind-service', 'svc-a', `a-${label}`])).stdout, /TIP: Use 'ingot restart svc-a'/);
    for (const label of ['redis', 'postgresql']) await ingot(t, ['bind-service', 'svc-b', `b-${label}`]);
  });
  t.deepEqual(JSON.parse((await app('svc-a', 'GET', '/')).body), [], 'VCAP_SERVICES changes only at the next start');
  await timed('restart_two_apps_ms', () => Promise.all(['svc-a', 'svc-b'].map((name) => ingot(t, ['restart', name]))));
  const bound = JSON.parse((await app('svc-a', 'GET', '/')).body) as Array<{ name: string; label: string }>;
  t.deepEqual(bound.map((s) => s.label).sort(), [...SERVICE_LABELS].sort());

  await timed('store_and_read_ms', async () => {
    for (const label of ['redis', 'postgresql', 'mysql'] as const) {
      const put = await app('svc-a', 'PUT', `/${label}/greeting`, `hello from a (${label})`);
      t.is(put.status, 200, `PUT /${label}/greeting: ${put.body}`);
      const got = await app('svc-a', 'GET', `/${label}/greeting`);
      t.deepEqual([got.status, got.body], [200, `hello from a (${label})`], label);
    }
    const pub = await app('svc-a', 'PUT', '/rabbitmq/jobs', 'job 1');
    t.deepEqual([pub.status, pub.body], [200, 'published'], pub.body);
    const got = await app('svc-a', 'GET', '/rabbitmq/jobs');
    t.deepEqual([got.status, got.body], [200, 'job 1'], 'the message, consumed');
    t.is((await app('svc-a', 'GET', '/rabbitmq/jobs')).status, 404, 'consumed once');
  });
  // Four clients loaded in 128M (the heap is 75 % of MEMORY_LIMIT): the instance's usage.
  t.log((await ingot(t, ['app', 'svc-a'])).stdout.match(/^#0\s.*$/m)?.[0] ?? 'no instance row');

  // The values are in the instances the app's own bindings name.
  const vcap = await vcapOf('svc-a');
  t.is(await redisAs(vcap.redis![0]!.credentials as RedisCredentials, 'GET', 'greeting'), 'hello from a (redis)');
  const session = await pgConnect(vcap.postgresql![0]!.credentials as SqlCredentials);
  t.deepEqual((await session.query("SELECT v FROM kv WHERE k = 'greeting'")).rows, [{ v: 'hello from a (postgresql)' }]);
  await session.end();
  const my = await mysqlConnect(vcap.mysql![0]!.credentials as SqlCredentials);
  t.deepEqual((await my.query("SELECT v FROM kv WHERE k = 'greeting'")).rows, [{ v: 'hello from a (mysql)' }]);
  my.close();
});

test.serial('two bound apps cannot read each other’s data, nor reach each other’s instances with their own credentials', async (t) => {
  t.timeout(300_000);
  for (const label of ['redis', 'postgresql'] as const) {
    t.is((await app('svc-b', 'GET', `/${label}/greeting`)).status, 404, `B does not see A's ${label} data`);
    t.is((await app('svc-b', 'PUT', `/${label}/greeting`, 'from b')).status, 200);
    t.is((await app('svc-a', 'GET', `/${label}/greeting`)).body, `hello from a (${label})`, `A's ${label} data is A's`);
    t.is((await app('svc-b', 'GET', `/${label}/greeting`)).body, 'from b');
  }
  const [a, b] = [await vcapOf('svc-a'), await vcapOf('svc-b')];
  const aRedis = a.redis![0]!.credentials as RedisCredentials;
  const bRedis = b.redis![0]!.credentials as RedisCredentials;
  t.not(aRedis.port, bRedis.port, 'a server of its own per instance');
  await t.throwsAsync(redisAs({ ...aRedis, username: bRedis.username, password: bRedis.password }, 'GET', 'greeting'), { message: /WRONGPASS/ }, "B's credentials at A's server");
  const aPg = a.postgresql![0]!.credentials as SqlCredentials;
  const bPg = b.postgresql![0]!.credentials as SqlCredentials;
  t.is(aPg.port, bPg.port, 'one cluster, a database each');
  await t.throwsAsync(pgConnect(bPg, aPg.name), { message: /permission denied for database/ }, "B's credentials at A's database");
});

test.serial('plan limits hold: a full Redis refuses writes (2 MB), a PostgreSQL binding gets 3 sessions', async (t) => {
  t.timeout(300_000);
  const chunk = 'x'.repeat(256 * 1024);
  let refusal = '';
  for (let i = 0; i < 40 && !refusal; i++) {
    const r = await app('svc-b', 'PUT', `/redis/big-${i}`, chunk);
    if (r.status !== 200) refusal = r.body;
  }
  t.regex(refusal, /OOM command not allowed/, 'maxmemory with noeviction');
  t.is((await app('svc-b', 'GET', '/redis/greeting')).body, 'from b', 'nothing was evicted');

  const creds = (await vcapOf('svc-a')).postgresql![0]!.credentials as SqlCredentials;
  const sessions = [await pgConnect(creds), await pgConnect(creds), await pgConnect(creds)];
  await t.throwsAsync(pgConnect(creds), { message: /too many connections/ });
  await Promise.all(sessions.map((s) => s.end()));
});

test.serial('update-service -p large: each running instance takes the larger limits in place, its data and bindings kept; an unknown plan is named', async (t) => {
  t.timeout(300_000);
  const chunk = 'x'.repeat(256 * 1024);
  t.regex((await app('svc-b', 'PUT', '/redis/after-update', chunk)).body, /OOM command not allowed/, 'b-redis is full at 2 MB');
  await ingot(t, ['update-service', 'b-redis', '-p', 'nosuchplan'], /plan nosuchplan not found for service offering redis\b/);
  await timed('update_services_ms', async () => {
    for (const name of ['b-redis', 'a-postgresql', 'a-mysql', 'a-rabbitmq']) {
      t.regex((await ingot(t, ['update-service', name, '-p', 'large'])).stdout, new RegExp(`Service instance ${name} updated to plan large\\.`));
    }
  });
  t.regex((await ingot(t, ['service', 'b-redis'])).stdout, /^plan:\s+large$/m);
  t.regex((await ingot(t, ['services'])).stdout, /^a-postgresql\s+postgresql\s+large\s/m);

  // Redis, 4 MB now: the write refused at 2 MB is taken; nothing was lost.
  const put = await app('svc-b', 'PUT', '/redis/after-update', chunk);
  t.is(put.status, 200, put.body);
  t.is((await app('svc-b', 'GET', '/redis/greeting')).body, 'from b');
  // PostgreSQL and MySQL, 6 sessions per binding now (3 before); the data is there.
  const vcap = await vcapOf('svc-a');
  const pgCreds = vcap.postgresql![0]!.credentials as SqlCredentials;
  const pgSessions = [];
  for (let i = 0; i < 6; i++) pgSessions.push(await pgConnect(pgCreds));
  await t.throwsAsync(pgConnect(pgCreds), { message: /too many connections/ });
  t.deepEqual((await pgSessions[0]!.query("SELECT v FROM kv WHERE k = 'greeting'")).rows, [{ v: 'hello from a (postgresql)' }]);
  await Promise.all(pgSessions.map((c) => c.end()));
  const myCreds = vcap.mysql![0]!.credentials as SqlCredentials;
  const mySessions = [];
  for (let i = 0; i < 6; i++) mySessions.push(await mysqlConnect(myCreds));
  t.is((await t.throwsAsync(mysqlConnect(myCreds), { instanceOf: MysqlError }))?.errno, 1226, 'max_user_connections');
  t.deepEqual((await mySessions[0]!.query("SELECT v FROM kv WHERE k = 'greeting'")).rows, [{ v: 'hello from a (mysql)' }]);
  for (const s of mySessions) s.close();
  // RabbitMQ, 4 connections now (2 before).
  const rabbitCreds = vcap.rabbitmq![0]!.credentials as RabbitCredentials;
  const conns = [];
  for (let i = 0; i < 4; i++) conns.push(await amqpOpen(rabbitCreds));
  t.regex((await t.throwsAsync(amqpOpen(rabbitCreds), { instanceOf: AmqpClosed }))!.text, /connection limit \(4\)/);
  for (const c of conns) c.close();
  // And the app goes on with its own bindings.
  t.is((await app('svc-a', 'GET', '/postgresql/greeting')).body, 'hello from a (postgresql)');
});

test.serial('a node restart keeps the data of every service', async (t) => {
  t.timeout(600_000);
  const pl = platform();
  t.is((await app('svc-a', 'PUT', '/rabbitmq/kept', 'persistent')).body, 'published');
  await timed('node_restarts_ms', () => Promise.all(SERVICE_LABELS.map((label) => pl.services.restartNode(label, 'SIGKILL'))));
  for (const label of ['redis', 'postgresql', 'mysql'] as const) {
    const got = await eventually(async () => {
      const r = await app('svc-a', 'GET', `/${label}/greeting`);
      return r.status === 200 && r;
    }, 60_000, `${label} answering after its node restarted`);
    t.is(got.body, `hello from a (${label})`);
  }
  const msg = await eventually(async () => {
    const r = await app('svc-a', 'GET', '/rabbitmq/kept');
    return r.status !== 502 && r;
  }, 60_000, 'rabbitmq answering after its node restarted');
  t.deepEqual([msg.status, msg.body], [200, 'persistent']);
});

test.serial('after unbind-service the old credentials stop working', async (t) => {
  t.timeout(300_000);
  const old = await vcapOf('svc-a');
  for (const label of SERVICE_LABELS) t.regex((await ingot(t, ['unbind-service', 'svc-a', `a-${label}`])).stdout, new RegExp(`Unbound service instance a-${label} from app svc-a`));
  // The running app still holds them (until its next start): every service refuses it now.
  for (const label of SERVICE_LABELS) {
    const r = await app('svc-a', 'PUT', `/${label}/after-unbind`, 'no');
    t.is(r.status, 502, `${label}: ${r.body}`);
  }
  await t.throwsAsync(redisAs(old.redis![0]!.credentials as RedisCredentials, 'PING'), { message: /WRONGPASS/ });
  await t.throwsAsync(pgConnect(old.postgresql![0]!.credentials as SqlCredentials), { message: /password authentication failed|does not exist/ });
  await t.throwsAsync(mysqlConnect(old.mysql![0]!.credentials as SqlCredentials), { instanceOf: MysqlError, message: /Access denied/ });
  await t.throwsAsync(amqpOpen(old.rabbitmq![0]!.credentials as RabbitCredentials), { instanceOf: AmqpClosed });
  await ingot(t, ['restart', 'svc-a']);
  t.deepEqual(JSON.parse((await app('svc-a', 'GET', '/')).body), [], 'no service after the next start');
});

test.serial('exhausted capacity: create-service says no node has room', async (t) => {
  t.timeout(300_000);
  // The MySQL node holds 2 instances; a-mysql takes one.
  await ingot(t, ['create-service', 'mysql', 'default', 'm2']);
  const r = await ingot(t, ['create-service', 'mysql', 'default', 'm3'], /m3.*no node of service mysql has capacity for plan default/);
  t.log(r.stderr.trim());
  t.notRegex((await ingot(t, ['services'])).stdout, /^m3\s/m, 'no instance left behind');
  await ingot(t, ['delete-service', 'm2', '-f']);
  await ingot(t, ['create-service', 'mysql', 'default', 'm3']);
});

test.serial('two gateways of one service: both registered, each provisions', async (t) => {
  t.timeout(300_000);
  const pl = platform();
  const redis = pl.services.byLabel.redis!;
  const second = await pl.services.startGateway('redis', 'gw2');
  await eventually(async () => /^redis-gw2\s/m.test((await ingot(t, ['service-brokers'])).stdout), 30_000, 'the second gateway registered');
  const brokers = (await ingot(t, ['service-brokers'])).stdout;
  t.regex(brokers, new RegExp(`^redis-gw\\s+${redis.gateway.broker.url}\\s+gateway announce$`, 'm'));
  t.regex(brokers, new RegExp(`^redis-gw2\\s+${second.broker.url}\\s+gateway announce$`, 'm'));
  await ingot(t, ['create-service', 'redis', 'default', 'either'], /offered by several brokers \((redis-gw, redis-gw2|redis-gw2, redis-gw)\); choose one with -b BROKER/);
  const known = async () => [(await varzOf(redis.gateway.proc)).instances_known as number, (await varzOf(second.proc)).instances_known as number];
  const [first0, second0] = await known();
  await ingot(t, ['create-service', 'redis', 'default', 'via-gw', '-b', 'redis-gw']);
  await ingot(t, ['create-service', 'redis', 'default', 'via-gw2', '-b', 'redis-gw2']);
  const [first1, second1] = await known();
  t.is(first1, first0! + 1, 'the first gateway provisioned via-gw');
  t.is(second1, second0! + 1, 'the second gateway provisioned via-gw2');
  for (const name of ['via-gw', 'via-gw2']) {
    await ingot(t, ['create-service-key', name, 'k']);
    const key = JSON.parse((await ingot(t, ['service-key', name, 'k', '--json'])).stdout) as RedisCredentials;
    t.is(await redisAs(key, 'PING'), 'PONG', `${name} is a working Redis`);
    await ingot(t, ['delete-service-key', name, 'k', '-f']);
    await ingot(t, ['delete-service', name, '-f']);
  }
});

test.serial('two gateways announcing one name are one broker: when one stops, the other serves it, the first one’s instances too', async (t) => {
  t.timeout(300_000);
  const pl = platform();
  const redis = pl.services.byLabel.redis!;
  const twin = await pl.services.startGateway('redis', 'gw'); // announces redis-gw too
  const brokerUrl = async () => (await pl.cc.admin.get('/v3/service_brokers?names=redis-gw')).body.resources[0].url as string;
  // Each announcement moves the broker to its gateway's URL.
  await eventually(async () => (await brokerUrl()) === twin.broker.url, 30_000, 'the broker at the twin’s URL');
  await eventually(async () => (await brokerUrl()) === redis.gateway.broker.url, 30_000, 'the broker back at the first gateway’s URL');
  await ingot(t, ['create-service', 'redis', 'default', 'before-stop', '-b', 'redis-gw']);

  await redis.gateway.proc.kill('SIGTERM');
  const followed = Date.now();
  await eventually(async () => (await brokerUrl()) === twin.broker.url, 30_000, 'the broker following the twin');
  timings.broker_follows_twin_ms = Date.now() - followed;
  const seen = new Set<string>();
  for (let i = 0; i < 15; i++, await new Promise((r) => setTimeout(r, 200))) seen.add(await brokerUrl());
  t.deepEqual([...seen], [twin.broker.url], 'and staying there (3 of the stopped gateway’s announce intervals)');
  const twinKnew = (await varzOf(twin.proc)).instances_known as number;
  await ingot(t, ['create-service', 'redis', 'default', 'after-stop', '-b', 'redis-gw']);
  t.true(((await varzOf(twin.proc)).instances_known as number) > twinKnew, 'the twin provisioned after-stop');
  // The twin finds the instance the stopped gateway made (on its node) and deprovisions it.
  for (const name of ['before-stop', 'after-stop']) t.regex((await ingot(t, ['delete-service', name, '-f'])).stdout, new RegExp(`Deleted service instance ${name}\\.`));
  t.notRegex((await ingot(t, ['services'])).stdout, /-stop\s/);
});

test.serial('a third-party broker registered by URL appears in the marketplace and provisions', async (t) => {
  t.timeout(300_000);
  tp = await TestOsbBroker.start();
  t.regex((await ingot(t, ['create-service-broker', 'tp', THIRD_PARTY.user, THIRD_PARTY.password, tp.url])).stdout, /Created service broker tp at .*, offering tp-db\./);
  t.regex((await ingot(t, ['marketplace'])).stdout, /^tp-db\s+slow, small\s+A third-party database\s+tp$/m);
  t.regex((await ingot(t, ['create-service', 'tp-db', 'small', 'ext-db'])).stdout, /Service instance ext-db created\./);
  t.regex((await ingot(t, ['create-service', 'tp-db', 'slow', 'ext-slow'])).stdout, /Service instance ext-slow created\./);
  await ingot(t, ['bind-service', 'svc-b', 'ext-db']);
  const creds = (await vcapOf('svc-b'))['tp-db']![0]!.credentials as { uri: string };
  t.regex(creds.uri, /^tp:\/\//, "the broker's credentials reach the app's VCAP_SERVICES");
  t.true(tp.calls.some((c) => c.startsWith('PUT /v2/service_instances/')), 'the broker provisioned');
  t.regex((await ingot(t, ['services'])).stdout, /^ext-db\s+tp-db\s+small\s+svc-b\s+create succeeded$/m);
});

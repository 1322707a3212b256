// The Redis service end to end below the controller: real service nodes making real
// redis-servers, real gateways, a real nats-server; apps are played by RESP connections
// using a binding's credentials. Tests that disturb a node (restart, kill, full capacity) get
// a world of their own (nats-server, node, gateway), so the others are not disturbed.
import anyTest, { type TestFn } from 'ava';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { RespClient, RespError } from '../../kernel/services/nodes/redis/resp.ts';
import { eventually } from '../helpers/component-process.ts';
import { NatsServer } from '../helpers/nats-server.ts';
import { osbClient } from '../helpers/osb-conformance.ts';
import {
  gatewayHears,
  redisAs,
  redisPidsUnder,
  restartNode,
  startGateway,
  startNode,
  type RedisCredentials,
  type RunningGateway,
  type RunningNode,
} from '../helpers/services-redis.ts';

interface World {
  nats: NatsServer;
  nodes: RunningNode[];
  gateways: RunningGateway[];
}

const test = anyTest as TestFn<unknown>;
const worlds: World[] = [];
let shared: Promise<World> | undefined;

async function startWorld(name: string, opts: { capacity: number; gateways: number }): Promise<World> {
  const world: World = { nats: await NatsServer.start(), nodes: [], gateways: [] };
  worlds.push(world);
  world.nodes.push(await startNode(world.nats, { nodeId: `${name}-node`, capacity: opts.capacity }));
  for (let i = 0; i < opts.gateways; i++) world.gateways.push(await startGateway(world.nats, `${name}-${i}`));
  for (const g of world.gateways) await gatewayHears(g, world.nodes.map((n) => n.nodeId));
  return world;
}

/** The world most tests share: one node, two gateways. */
const sharedWorld = (): Promise<World> => (shared ??= startWorld('shared', { capacity: 20, gateways: 2 }));

test.after.always(async () => {
  for (const w of worlds) {
    for (const g of w.gateways) await g.proc.kill('SIGTERM');
    for (const n of w.nodes) await n.proc.kill('SIGTERM');
    await w.nats.stop();
    // Whatever happened, no redis-server outlives the test.
    for (const n of w.nodes) for (const pid of await redisPidsUnder(n.baseDir)) process.kill(pid, 'SIGKILL');
  }
});

/** Provisions an instance and binds it once; returns the binding's credentials. */
async function provisionAndBind(gateway: RunningGateway, instanceId = randomUUID()): Promise<{ instanceId: string; bindingId: string; creds: RedisCredentials }> {
  const client = osbClient(gateway.broker);
  const p = await client.provision(instanceId);
  if (p.status !== 201 && p.status !== 200) throw new Error(`provision answered ${p.status}: ${JSON.stringify(p.body)}`);
  const bindingId = randomUUID();
  const b = await client.bind(instanceId, bindingId, randomUUID());
  if (b.status !== 201) throw new Error(`bind answered ${b.status}: ${JSON.stringify(b.body)}`);
  return { instanceId, bindingId, creds: b.body.credentials as unknown as RedisCredentials };
}

async function bindAgain(gateway: RunningGateway, instanceId: string): Promise<RedisCredentials> {
  const b = await osbClient(gateway.broker).bind(instanceId, randomUUID(), randomUUID());
  if (b.status !== 201) throw new Error(`bind answered ${b.status}: ${JSON.stringify(b.body)}`);
  return b.body.credentials as unknown as RedisCredentials;
}

test('a binding reads and writes its instance; a second binding sees the same data; another instance does not', async (t) => {
  const { gateways } = await sharedWorld();
  const gw = gateways[0]!;
  const first = await provisionAndBind(gw);
  t.regex(first.creds.uri, /^redis:\/\/[^:]+:[^@]+@127\.0\.0\.1:\d+$/);
  t.is(first.creds.username, first.bindingId);
  t.is(await redisAs(first.creds, 'SET', 'greeting', 'hello'), 'OK');
  t.is(await redisAs(first.creds, 'GET', 'greeting'), 'hello');

  const second = await bindAgain(gw, first.instanceId);
  t.not(second.password, first.creds.password, 'each binding has credentials of its own');
  t.is(second.port, first.creds.port);
  t.is(await redisAs(second, 'GET', 'greeting'), 'hello');

  const other = await provisionAndBind(gw);
  t.not(other.creds.port, first.creds.port, 'each instance is a server of its own');
  t.is(await redisAs(other.creds, 'GET', 'greeting'), null);
  // The first binding's credentials mean nothing to the other instance's server.
  const err = await t.throwsAsync(redisAs({ ...first.creds, port: other.creds.port }, 'GET', 'greeting'), { instanceOf: RespError });
  t.is(err?.kind, 'WRONGPASS');
  // Nor can a binding administer its server.
  const admin = await t.throwsAsync(redisAs(first.creds, 'CONFIG', 'SET', 'maxmemory', '0'), { instanceOf: RespError });
  t.is(admin?.kind, 'NOPERM');
});

test("the plan's maxmemory is enforced: writing past it is an OOM error", async (t) => {
  const { gateways } = await sharedWorld();
  const { creds } = await provisionAndBind(gateways[0]!);
  const client = await RespClient.connect(creds);
  try {
    const value = 'x'.repeat(64 * 1024);
    let oom: RespError | undefined;
    for (let i = 0; i < 200 && !oom; i++) {
      try {
        await client.command('SET', `key-${i}`, value);
      } catch (err) {
        if (err instanceof RespError) oom = err;
        else throw err;
      }
    }
    t.is(oom?.kind, 'OOM', 'a 2 MB plan refuses writes well before 200 × 64 KB');
    t.is(await client.command('GET', 'key-0'), value, 'nothing was evicted');
  } finally {
    client.close();
  }
});

test('unbind revokes at once: open connections are closed and the credentials are refused', async (t) => {
  const { gateways } = await sharedWorld();
  const { instanceId, bindingId, creds } = await provisionAndBind(gateways[0]!);
  const open = await RespClient.connect(creds);
  try {
    t.is(await open.command('SET', 'k', 'v'), 'OK');
    // Unbound through the other gateway: it locates the instance on its own.
    t.is((await osbClient(gateways[1]!.broker).unbind(instanceId, bindingId)).status, 200);
    await t.throwsAsync(open.command('GET', 'k'));
    const refused = await t.throwsAsync(redisAs(creds, 'GET', 'k'), { instanceOf: RespError });
    t.is(refused?.kind, 'WRONGPASS');
  } finally {
    open.close();
  }
});

test('two gateways both provision, and either binds or deprovisions what the other made', async (t) => {
  const { gateways } = await sharedWorld();
  const scope = { org: randomUUID(), space: randomUUID() };
  const [one, two] = gateways.map((g) => osbClient(g.broker, scope)) as [ReturnType<typeof osbClient>, ReturnType<typeof osbClient>];
  const x = randomUUID();
  const y = randomUUID();
  t.is((await one.provision(x)).status, 201);
  t.is((await two.provision(y)).status, 201);
  // The same request through the other gateway is the same instance (200); another is a conflict (409).
  t.is((await two.provision(x)).status, 200);
  t.is((await two.provision(x, { parameters: { other: 1 } })).status, 409);
  const bound = await two.bind(x, randomUUID(), randomUUID());
  t.is(bound.status, 201);
  t.is(await redisAs(bound.body.credentials as unknown as RedisCredentials, 'PING'), 'PONG');
  t.is((await one.deprovision(y)).status, 200);
  t.is((await two.deprovision(x)).status, 200);
  t.is((await one.deprovision(x)).status, 410);
  t.is((await two.deprovision(y)).status, 410);
});

test('exhausted capacity is a clear error', async (t) => {
  const world = await startWorld('full', { capacity: 1, gateways: 1 });
  const client = osbClient(world.gateways[0]!.broker);
  t.is((await client.provision(randomUUID())).status, 201);
  const refused = await client.provision(randomUUID());
  t.is(refused.status, 422);
  t.is(refused.body.error, 'NoCapacity');
  t.regex(String(refused.body.description), /^no node of service redis has capacity for plan default/);
});

test('a node restart keeps the data and the bindings; a redis-server killed by hand comes back; SIGTERM stops them', async (t) => {
  const world = await startWorld('restart', { capacity: 5, gateways: 1 });
  const gw = world.gateways[0]!;
  const { creds } = await provisionAndBind(gw);
  t.is(await redisAs(creds, 'SET', 'survives', 'yes'), 'OK');
  let node = world.nodes[0]!;
  const [pid] = await redisPidsUnder(node.baseDir);
  t.truthy(pid);
  // Servers run unprivileged when the node is root.
  const uid = /^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (process.getuid?.() === 0) t.not(uid, '0');

  // A killed node takes its servers with it (parent-death signal), and brings them back.
  await node.proc.kill('SIGKILL');
  await eventually(async () => (await redisPidsUnder(node.baseDir)).length === 0, 15_000, 'the servers stopping with their node');
  node = await restartNode(world.nats, node);
  world.nodes[0] = node;
  t.is(await eventually(() => redisAs(creds, 'GET', 'survives'), 15_000, 'the data back'), 'yes');

  const [before] = await redisPidsUnder(node.baseDir);
  process.kill(before!, 'SIGKILL');
  const after = await eventually(async () => (await redisPidsUnder(node.baseDir)).find((p) => p !== before), 15_000, 'a new redis-server');
  t.not(after, before);
  t.is(await eventually(() => redisAs(creds, 'GET', 'survives'), 15_000, 'the restarted server answering'), 'yes');

  // SIGTERM: the node stops its servers with it, and exits cleanly.
  await node.proc.kill('SIGTERM');
  t.deepEqual(await node.proc.exited, { code: 0, signal: null });
  t.deepEqual(await redisPidsUnder(node.baseDir), []);
});

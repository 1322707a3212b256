// The RabbitMQ service end to end below the controller: a real service node owning a real
// RabbitMQ server (its own node name, ports, epmd and cookie), a real gateway, a real
// nats-server. Apps are played by the management HTTP API with a binding's own credentials
// (publish and get) and by a minimal AMQP 0-9-1 handshake (live connections). The restart
// test gets a world of its own; every world's processes are gone at the end.
import anyTest, { type TestFn } from 'ava';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { eventually } from '../helpers/component-process.ts';
import { NatsServer } from '../helpers/nats-server.ts';
import { osbClient, registerOsbConformance, type BrokerUnderTest } from '../helpers/osb-conformance.ts';
import { AmqpClosed, AmqpConnection, type AmqpTarget } from '../helpers/services-amqp.ts';
import { bindInstance, pidsUnder, planIdOf, provisionInstance, restartServiceNode, updateInstance } from '../helpers/services-processes.ts';
import { apiAs, declareQueue, peek, publish, rabbitPidsUnder, RABBIT_READY_MS, startRabbitWorld, type RabbitCredentials, type RabbitWorld } from '../helpers/services-rabbitmq.ts';

const test = anyTest as TestFn<unknown>;
let nats: NatsServer | undefined;
const worlds: RabbitWorld[] = [];
const connections: AmqpConnection[] = [];
let shared: Promise<RabbitWorld> | undefined;

async function world(name: string): Promise<RabbitWorld> {
  nats ??= await NatsServer.start();
  const w = await startRabbitWorld(nats, name);
  worlds.push(w);
  return w;
}
const sharedWorld = (): Promise<RabbitWorld> => (shared ??= world('rmq-shared'));

let conformanceBroker: BrokerUnderTest | undefined;
test.before(async () => {
  conformanceBroker = (await sharedWorld()).gateway.broker;
});
// Registered before the clean-up below, so its deprovisioning runs while the gateway lives.
registerOsbConformance(test, () => {
  if (!conformanceBroker) throw new Error('the shared world is not up');
  return conformanceBroker;
});

test.after.always(async () => {
  for (const c of connections) c.close();
  for (const w of worlds) {
    await w.gateway.proc.kill('SIGTERM');
    await w.node.proc.kill('SIGTERM');
    // Whatever happened, no beam.smp or epmd of the node outlives the test.
    for (const pid of await rabbitPidsUnder(w.node.baseDir)) process.kill(pid, 'SIGKILL');
  }
  await nats?.stop();
});

async function provisionAndBind(w: RabbitWorld): Promise<{ instanceId: string; bindingId: string; creds: RabbitCredentials }> {
  const instanceId = await provisionInstance(w.gateway);
  const { bindingId, creds } = await bindInstance<RabbitCredentials>(w.gateway, instanceId);
  return { instanceId, bindingId, creds };
}

async function amqp(creds: RabbitCredentials, vhost = creds.vhost): Promise<AmqpConnection> {
  const c = await AmqpConnection.open(target(creds, vhost));
  connections.push(c);
  return c;
}

function target(creds: RabbitCredentials, vhost = creds.vhost): AmqpTarget {
  return { host: creds.host, port: creds.port, username: creds.username, password: creds.password, vhost };
}

/** The management API as the node's admin (its file in base_dir), to see what apps cannot. */
async function asAdmin(w: RabbitWorld, path: string): Promise<{ status: number; body: any }> {
  const admin = JSON.parse(await readFile(join(w.node.baseDir, 'rabbitmq-admin.json'), 'utf8')) as { username: string; password: string };
  const varz = await fetch(w.node.proc.statusUrl('/varz'), { headers: { authorization: w.node.proc.auth } }).then((r) => r.json() as Promise<{ rabbitmq: { management_port: number } }>);
  return apiAs({ http_api_uri: `http://${admin.username}:${admin.password}@127.0.0.1:${varz.rabbitmq.management_port}/api/` }, 'GET', path);
}

test('a binding publishes a persistent message to a durable queue and gets it back; another instance cannot reach it', async (t) => {
  const w = await sharedWorld();
  const { instanceId, bindingId, creds } = await provisionAndBind(w);
  t.is(creds.vhost, instanceId);
  t.is(creds.username, bindingId);
  t.is(creds.uri, `amqp://${bindingId}:${creds.password}@127.0.0.1:${creds.port}/${instanceId}`);
  t.is((await declareQueue(creds, 'orders')).status, 201);
  t.deepEqual((await publish(creds, 'orders', 'order 1')).body, { routed: true });
  const got = await peek(creds, 'orders');
  t.is(got.status, 200);
  t.deepEqual(
    got.body.map((m: { payload: string; properties: unknown }) => [m.payload, m.properties]),
    [['order 1', { delivery_mode: 2 }]],
  );
  // A live AMQP connection with the binding's credentials.
  const conn = await amqp(creds);
  t.truthy(conn);

  const other = await provisionAndBind(w);
  t.not(other.creds.username, creds.username);
  // The other instance's binding can neither read this vhost nor connect to it.
  t.is((await peek({ ...other.creds, vhost: instanceId }, 'orders')).status, 401);
  t.is((await declareQueue(other.creds, 'sneaky', instanceId)).status, 401);
  const refused = await t.throwsAsync(amqp(other.creds, instanceId), { instanceOf: AmqpClosed });
  t.regex(refused!.text, /access to vhost/);
  // And its own vhost has nothing of this one's.
  t.is((await peek(other.creds, 'orders')).status, 404);
  // A binding sees only its own vhost, and cannot change the limits or the policy.
  t.deepEqual(((await apiAs(creds, 'GET', 'vhosts')).body as Array<{ name: string }>).map((v) => v.name), [instanceId]);
  t.is((await apiAs(creds, 'PUT', `vhost-limits/${instanceId}/max-queues`, { value: 1000 })).status, 401);
  t.is((await apiAs(creds, 'PUT', `policies/${instanceId}/mine`, { pattern: '.*', definition: { 'max-length-bytes': 1e9 }, priority: 9 })).status, 401);
});

test("the plan's limits are the vhost's: max-connections, max-queues, and max-length-bytes on every queue", async (t) => {
  const w = await sharedWorld();
  const { creds } = await provisionAndBind(w);
  // max_clients 2: a third connection is refused with NOT_ALLOWED.
  const open = [await amqp(creds), await amqp(creds)];
  const third = await t.throwsAsync(amqp(creds), { instanceOf: AmqpClosed });
  t.is(third?.code, 530);
  t.regex(third!.text, /connection limit \(2\)/);
  // The management API's publish and get open a connection of their own, which counts too.
  t.is((await publish(creds, 'q0', 'x')).status, 401);
  for (const c of open) c.close();
  // max_queues 3: a fourth is refused.
  for (const q of ['q1', 'q2', 'q3']) t.is((await declareQueue(creds, q)).status, 201);
  const fourth = await declareQueue(creds, 'q4');
  t.is(fourth.status, 400);
  t.regex(fourth.body.reason, /queue limit in vhost .* \(3\) is reached/);
  // memory_mb 1: every queue carries max-length-bytes 1 MB, overflow reject-publish.
  // (A queue's details come from the management stats, which lag its creation by up to 5 s.)
  const policy = await eventually(async () => (await apiAs(creds, 'GET', `queues/${creds.vhost}/q1`)).body.effective_policy_definition, 15_000, 'q1 with its policy');
  t.deepEqual(policy, { 'max-length-bytes': 1024 * 1024, overflow: 'reject-publish' });
  const big = 'x'.repeat(700 * 1024);
  t.true(await eventually(async () => (await publish(creds, 'q1', big)).body.routed, 10_000, 'a publish once the connections are gone'));
  await publish(creds, 'q1', big); // refused by the queue: it never holds more than 1 MB
  t.is((await peek(creds, 'q1', 5)).body.length, 1, 'the second message was refused, the first kept');
});

test('a plan change (OSB PATCH) puts the new vhost limits and queue policy on the running instance, queues, messages and bindings kept; back to default lowers them', async (t) => {
  const w = await sharedWorld();
  const { instanceId, creds } = await provisionAndBind(w);
  const limits = async () => (await asAdmin(w, `vhost-limits/${instanceId}`)).body[0]?.value;
  const queuePolicy = (queue: string, bytes: number) =>
    eventually(async () => (await apiAs(creds, 'GET', `queues/${creds.vhost}/${queue}`)).body.effective_policy_definition?.['max-length-bytes'] === bytes, 15_000, `${queue} with max-length-bytes ${bytes}`);
  t.is((await declareQueue(creds, 'kept')).status, 201);
  t.deepEqual((await publish(creds, 'kept', 'before')).body, { routed: true });
  t.deepEqual(await limits(), { 'max-connections': 2, 'max-queues': 3 });
  const open = [await amqp(creds), await amqp(creds)];
  t.is((await t.throwsAsync(amqp(creds), { instanceOf: AmqpClosed }))?.code, 530);

  await updateInstance(w.gateway, instanceId, planIdOf('rabbitmq', 'large'));
  t.deepEqual(await limits(), { 'max-connections': 4, 'max-queues': 6 });
  // Two more connections now, the open ones untouched; a fifth is refused.
  open.push(await amqp(creds), await amqp(creds));
  t.regex((await t.throwsAsync(amqp(creds), { instanceOf: AmqpClosed }))!.text, /connection limit \(4\)/);
  for (const c of open) c.close();
  // Six queues (the policy of the kept one follows: 2 MB), and the message is still there.
  for (const q of ['q2', 'q3', 'q4', 'q5', 'q6']) t.is((await declareQueue(creds, q)).status, 201);
  t.regex((await declareQueue(creds, 'q7')).body.reason, /queue limit in vhost .* \(6\) is reached/);
  t.true(await queuePolicy('kept', 2 * 1024 * 1024));
  t.deepEqual((await peek(creds, 'kept')).body.map((m: { payload: string }) => m.payload), ['before']);

  // No rule refuses a smaller plan, not even with more queues than it allows: they stay, no new one.
  await updateInstance(w.gateway, instanceId, planIdOf('rabbitmq', 'default'));
  t.deepEqual(await limits(), { 'max-connections': 2, 'max-queues': 3 });
  t.true(await queuePolicy('kept', 1024 * 1024));
  t.is((await declareQueue(creds, 'q7')).status, 400);
  t.deepEqual((await peek(creds, 'kept')).body.map((m: { payload: string }) => m.payload), ['before']);
});

test('unbind deletes the user at once: its open connection is closed and its credentials are refused', async (t) => {
  const w = await sharedWorld();
  const { instanceId, bindingId, creds } = await provisionAndBind(w);
  const second = await bindInstance<RabbitCredentials>(w.gateway, instanceId);
  t.not(second.creds.password, creds.password, 'each binding has credentials of its own');
  const open = await amqp(creds);
  t.is((await osbClient(w.gateway.broker).unbind(instanceId, bindingId)).status, 200);
  const closed = await open.closed;
  t.is(closed.code, 320, 'CONNECTION_FORCED');
  await t.throwsAsync(amqp(creds), { instanceOf: AmqpClosed });
  t.is((await apiAs(creds, 'GET', 'vhosts')).status, 401);
  // The other binding is untouched.
  t.is((await declareQueue(second.creds, 'still-here')).status, 201);
  await amqp(second.creds);
});

test('unprovision removes the vhost, its queues and its users', async (t) => {
  const w = await sharedWorld();
  const { instanceId, creds } = await provisionAndBind(w);
  t.is((await declareQueue(creds, 'doomed')).status, 201);
  t.is((await asAdmin(w, `vhosts/${instanceId}`)).status, 200);
  t.is((await osbClient(w.gateway.broker).deprovision(instanceId)).status, 200);
  t.is((await asAdmin(w, `vhosts/${instanceId}`)).status, 404);
  t.is((await asAdmin(w, `users/${creds.username}`)).status, 404);
  t.is((await apiAs(creds, 'GET', 'vhosts')).status, 401);
});

test('a node killed and started again keeps the durable queue, its persistent message and the bindings; a killed server comes back; SIGTERM stops it', async (t) => {
  const w = await world('rmq-restart');
  const { creds } = await provisionAndBind(w);
  t.is((await declareQueue(creds, 'durable')).status, 201);
  t.deepEqual((await publish(creds, 'durable', 'kept')).body, { routed: true });
  const pids = await rabbitPidsUnder(w.node.baseDir);
  t.is(pids.length, 2, 'one beam.smp and one epmd, both named by base_dir');
  if (process.getuid?.() === 0) {
    for (const pid of pids) t.not(/^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1], '0', 'runs unprivileged');
  }

  // A killed node takes its server with it (parent-death signal to the start script, which stops beam.smp).
  await w.node.proc.kill('SIGKILL');
  await eventually(async () => (await rabbitPidsUnder(w.node.baseDir)).length === 0, 60_000, 'the server stopping with its node');
  w.node = await restartServiceNode(w.node, RABBIT_READY_MS);
  const got = await peek(creds, 'durable');
  t.is(got.status, 200);
  t.deepEqual(got.body.map((m: { payload: string }) => m.payload), ['kept']);
  await amqp(creds);

  // A beam.smp killed by hand is started again by the node, with its data.
  const beam = (await pidsUnder(w.node.baseDir, /beam\.smp$/))[0]!;
  process.kill(beam, 'SIGKILL');
  await eventually(async () => (await pidsUnder(w.node.baseDir, /beam\.smp$/)).some((p) => p !== beam), 30_000, 'a new beam.smp');
  const again = await eventually(async () => (await peek(creds, 'durable')).body, RABBIT_READY_MS, 'the restarted server answering');
  t.deepEqual(again.map((m: { payload: string }) => m.payload), ['kept']);

  await w.node.proc.kill('SIGTERM');
  t.deepEqual(await w.node.proc.exited, { code: 0, signal: null });
  t.deepEqual(await rabbitPidsUnder(w.node.baseDir), []);
});

test('provision of a second instance under the same binding id is refused, not shared', async (t) => {
  const w = await sharedWorld();
  const bindingId = randomUUID();
  const a = await provisionInstance(w.gateway);
  const b = await provisionInstance(w.gateway);
  await bindInstance(w.gateway, a, bindingId);
  const again = await osbClient(w.gateway.broker).bind(b, bindingId, randomUUID());
  t.is(again.status, 409);
});

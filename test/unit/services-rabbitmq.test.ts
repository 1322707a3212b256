import test from 'ava';
import { parseConfig } from '../../kernel/component/mod.ts';
import { nodeConfig } from '../../kernel/services/node/config.ts';
import {
  bindingCredentials,
  rabbitNodeName,
  renderRabbitConf,
  serverArgs,
  serverEnv,
  serverPaths,
  strayObjects,
  vhostLimits,
  vhostPolicy,
} from '../../kernel/services/nodes/rabbitmq/rabbitmq-conf.ts';
import { configProblems } from '../helpers/services-config.ts';

const nats = 'nats:\n  servers: [nats://10.0.0.1:4222]\n  user: u\n  password: p\n';
const good = `${nats}label: rabbitmq\nplans:\n  default:\n    memory_mb: 64\ncapacity: 10\nbase_dir: /var/vcap/store/rabbitmq\n`;
const plan = { memory_mb: 8, max_clients: 20, capacity_units: 1 };

test('config: rabbitmq defaults stay off a stock RabbitMQ’s ports', (t) => {
  const c = parseConfig(good, 'node.yml', nodeConfig);
  t.like(c.rabbitmq, { amqp_port: 5700, management_port: 15700, dist_port: 25700, epmd_port: 4370, run_as: 'rabbitmq', start_timeout_s: 60 });
  t.is(c.rabbitmq.server_path, '/usr/lib/rabbitmq/bin/rabbitmq-server');
  t.is(c.plans.default!.max_queues, undefined);
});

test('config: the four ports must differ, and unknown keys are named', (t) => {
  const p = configProblems(`${good}rabbitmq:\n  amqp_port: 5800\n  epmd_port: 5800\n  dist_port: 70000\n  cookie: x\n`, 'node.yml', nodeConfig);
  t.true(p.some((l) => l.includes('rabbitmq.epmd_port: must differ from amqp_port (5800)')), p.join('\n'));
  t.true(p.some((l) => l.includes('rabbitmq.dist_port')), p.join('\n'));
  t.true(p.some((l) => l.includes('rabbitmq: unknown key (cookie)')), p.join('\n'));
});

test('the node name is fixed by the node id; every path sits under base_dir', (t) => {
  t.is(rabbitNodeName('rabbitmq-0'), 'ingot-rabbitmq-0@localhost');
  const p = serverPaths('/var/vcap/store/rabbitmq');
  t.is(p.cookie, '/var/vcap/store/rabbitmq/rabbitmq/home/.erlang.cookie');
  t.is(p.admin, '/var/vcap/store/rabbitmq/rabbitmq-admin.json', 'the admin file is outside the server user’s directory');
  const c = parseConfig(`${good}rabbitmq:\n  amqp_port: 5800\n  epmd_port: 4400\n  dist_port: 25800\n`, 'node.yml', nodeConfig);
  const env = serverEnv(p, rabbitNodeName('n1'), c.rabbitmq);
  t.like(env, { HOME: p.home, RABBITMQ_NODENAME: 'ingot-n1@localhost', RABBITMQ_MNESIA_BASE: p.mnesia, RABBITMQ_CONF_ENV_FILE: p.envConf, ERL_EPMD_PORT: '4400', RABBITMQ_DIST_PORT: '25800' });
  t.false('RABBITMQ_ERLANG_COOKIE' in env);
  t.true(Object.values(env).every((v) => !v.startsWith('/etc/')), 'nothing of Debian’s own service');
  t.deepEqual(serverArgs(p), ['-ingot_server_dir', p.dir]);
});

test('rabbitmq.conf: listeners on the host, the admin replacing guest', (t) => {
  const c = parseConfig(good, 'node.yml', nodeConfig);
  const conf = renderRabbitConf({ host: '10.244.0.7', rabbitmq: c.rabbitmq, admin: { username: 'ingot-admin-1', password: 'p'.repeat(20) } });
  t.true(conf.includes('listeners.tcp.1 = 10.244.0.7:5700\n'));
  t.true(conf.includes('management.tcp.ip = 10.244.0.7\nmanagement.tcp.port = 15700\n'));
  t.true(conf.includes('default_user = ingot-admin-1\n'));
  t.true(conf.includes('default_user_tags.administrator = true\n'));
});

test('plan limits: connections and queues per vhost, bytes per queue with reject-publish', (t) => {
  t.deepEqual(vhostLimits(plan), { 'max-connections': 20, 'max-queues': 100 });
  t.deepEqual(vhostLimits({ ...plan, max_queues: 5 }), { 'max-connections': 20, 'max-queues': 5 });
  t.deepEqual(vhostPolicy(plan), { pattern: '.*', 'apply-to': 'queues', priority: 0, definition: { 'max-length-bytes': 8 * 1024 * 1024, overflow: 'reject-publish' } });
});

test('credentials: uri and http_api_uri percent-encode the user, password and vhost', (t) => {
  const c = bindingCredentials({ host: '10.0.0.5', amqpPort: 5700, managementPort: 15700, vhost: 'a/b c', username: 'u@x', password: 'p:w/d' });
  t.is(c.uri, 'amqp://u%40x:p%3Aw%2Fd@10.0.0.5:5700/a%2Fb%20c');
  t.is(c.http_api_uri, 'http://u%40x:p%3Aw%2Fd@10.0.0.5:15700/api/');
  t.like(c, { host: '10.0.0.5', port: 5700, vhost: 'a/b c', username: 'u@x', password: 'p:w/d' });
  t.is(new URL(c.uri).pathname, '/a%2Fb%20c', 'one path segment');
  t.is(bindingCredentials({ host: 'fd00::1', amqpPort: 1, managementPort: 2, vhost: 'v', username: 'u', password: 'p' }).uri, 'amqp://u:p@[fd00::1]:1/v');
});

test('reconciliation: what node.json does not hold goes, except the admin, "/" and what is being made', (t) => {
  const desired = [{ vhost: 'i1', plan, users: [{ username: 'b1', password: 'x' }] }];
  const actual = { vhosts: ['/', 'i1', 'i2', 'i3'], users: ['admin', 'b1', 'b2', 'b3'] };
  t.deepEqual(strayObjects(desired, actual, { admin: 'admin', pending: new Set(['i3', 'b3']) }), { vhosts: ['i2'], users: ['b2'] });
  t.deepEqual(strayObjects([], { vhosts: ['/'], users: ['admin'] }, { admin: 'admin', pending: new Set() }), { vhosts: [], users: [] });
});

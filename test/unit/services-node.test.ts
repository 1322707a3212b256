import test from 'ava';
import { parseConfig } from '../../kernel/component/mod.ts';
import { capacityOf, freePorts, refuseCapacity } from '../../kernel/services/node/capacity.ts';
import { nodeConfig, nodeIdOf } from '../../kernel/services/node/config.ts';
import { fingerprint, UNIT_ID } from '../../kernel/services/fingerprint.ts';
import { configProblems } from '../helpers/services-config.ts';

const nats = 'nats:\n  servers: [nats://10.0.0.1:4222]\n  user: u\n  password: p\n';
const good = `${nats}label: redis\nplans:\n  default:\n    memory_mb: 64\ncapacity: 10\nbase_dir: /var/vcap/store/redis\n`;

const problems = (text: string): string[] => configProblems(text, 'node.yml', nodeConfig);

test('node config: defaults for plans, ports, redis and the node id', (t) => {
  const c = parseConfig(good, 'node.yml', nodeConfig);
  t.deepEqual(c.plans.default, { memory_mb: 64, max_clients: 100, capacity_units: 1 });
  t.deepEqual(c.port_range, { min: 20000, max: 20999 });
  t.is(c.redis.server_path, '/usr/bin/redis-server');
  t.is(c.redis.run_as, 'redis');
  t.is(c.announce_interval_s, 10);
  t.is(nodeIdOf(c), 'redis-0');
  t.is(nodeIdOf({ ...c, node_id: 'n7' }), 'n7');
});

test('node config: every problem at once, each naming its line and key', (t) => {
  const p = problems(`${nats}label: "re dis"\nplans: {}\ncapacity: 0\nbase_dir: /x\nport_range:\n  min: 3000\n  max: 2000\nredis:\n  server_pth: /x\n`);
  t.true(p.some((l) => l.startsWith('node.yml:5 label:')), p.join('\n'));
  t.true(p.some((l) => l.startsWith('node.yml:6 plans: expected at least one plan')), p.join('\n'));
  t.true(p.some((l) => l.startsWith('node.yml:7 capacity:')), p.join('\n'));
  t.true(p.some((l) => l.startsWith('node.yml:11 port_range.max: min must not exceed max')), p.join('\n'));
  t.true(p.some((l) => l.includes('redis: unknown key (server_pth)')), p.join('\n'));
});

test('node config: a plan needs its memory limit; the label needs a backend', (t) => {
  t.true(problems(`${nats}label: redis\nplans:\n  default: {max_clients: 5}\ncapacity: 1\nbase_dir: /x\n`).some((l) => l.includes('plans.default.memory_mb: required')));
  t.deepEqual(problems(good.replace('label: redis', 'label: gateway')), ['node.yml:5 label: expected a service with a node backend (redis, rabbitmq, postgresql, mysql)']);
});

test('capacity: free units and how many of each plan still fit', (t) => {
  const plans = { small: { memory_mb: 1, max_clients: 1, capacity_units: 1 }, large: { memory_mb: 1, max_clients: 1, capacity_units: 4 } };
  t.deepEqual(capacityOf(plans, 10, []), { available: 10, per_plan: { small: 10, large: 2 } });
  t.deepEqual(capacityOf(plans, 10, ['large', 'small', 'small']), { available: 4, per_plan: { small: 4, large: 1 } });
  t.deepEqual(capacityOf(plans, 3, ['large']), { available: 0, per_plan: { small: 0, large: 0 } });
  // A unit whose plan left the config still takes a unit.
  t.is(capacityOf(plans, 3, ['gone']).available, 2);
  t.is(refuseCapacity('n1', 'large', plans.large, capacityOf(plans, 10, ['large', 'large'])), 'no capacity: node n1 has 2 free unit(s) and plan large needs 4');
  t.is(refuseCapacity('n1', 'small', plans.small, capacityOf(plans, 10, [])), undefined);
});

test('ports: lowest first, skipping the taken ones, none past the range', (t) => {
  t.deepEqual([...freePorts({ min: 100, max: 104 }, new Set([100, 102]))], [101, 103, 104]);
  t.deepEqual([...freePorts({ min: 100, max: 101 }, new Set([100, 101]))], []);
});

test('fingerprint: key order does not matter, values do', (t) => {
  t.is(fingerprint({ a: 1, b: { c: [1, 2], d: 'x' } }), fingerprint({ b: { d: 'x', c: [1, 2] }, a: 1 }));
  t.not(fingerprint({ a: 1 }), fingerprint({ a: 2 }));
  t.is(fingerprint({ a: 1, b: undefined }), fingerprint({ a: 1 }));
});

test('unit ids: GUID-like ids pass; paths, spaces and empties do not', (t) => {
  t.true(UNIT_ID.test('9f8c0d2e-1b7a-4c3e-9d55-0a1b2c3d4e5f'));
  for (const bad of ['', '../x', 'a/b', 'a b', '.hidden', 'x'.repeat(129)]) t.false(UNIT_ID.test(bad), bad);
});

import test from 'ava';
import { parseConfig } from '../../kernel/component/mod.ts';
import { catalogOf, gatewayConfig } from '../../kernel/services/gateway/config.ts';
import { NodeTable, rankNodes, type NodeEntry } from '../../kernel/services/gateway/node-table.ts';
import { configProblems } from '../helpers/services-config.ts';
import { acceptsIncomplete, bindBody, parseOsb, provisionBody, refuseApiVersion, refuseId, updateBody } from '../../kernel/services/gateway/osb.ts';

const node = (node_id: string, room: Record<string, number>, heard_at = 0, interval_ms = 1000): NodeEntry => ({
  node_id,
  plans: Object.keys(room),
  available: Math.max(0, ...Object.values(room)),
  plan_capacity: room,
  heard_at,
  interval_ms,
});

test('node selection: the most room for the plan wins; ties go to the lowest id', (t) => {
  const nodes = [node('b', { default: 3 }), node('a', { default: 3 }), node('c', { default: 5, large: 0 }), node('d', { large: 9 })];
  t.deepEqual(rankNodes(nodes, 'default', 0).map((n) => n.node_id), ['c', 'a', 'b']);
  t.deepEqual(rankNodes(nodes, 'large', 0).map((n) => n.node_id), ['d']);
  t.deepEqual(rankNodes(nodes, 'none', 0), []);
});

test('node selection: a node silent for 3 of its intervals is gone; one full is skipped', (t) => {
  const nodes = [node('old', { default: 9 }, 0, 1000), node('full', { default: 0 }, 5000), node('fresh', { default: 1 }, 5000)];
  t.deepEqual(rankNodes(nodes, 'default', 3000).map((n) => n.node_id), ['old', 'fresh']);
  t.deepEqual(rankNodes(nodes, 'default', 3001).map((n) => n.node_id), ['fresh']);
});

test('node table: announcements in, one fewer after a provision, forget on no answer', (t) => {
  const table = new NodeTable(10_000);
  table.hear({ node_id: 'n1', plans: ['default'], available_capacity: 2, plan_capacity: { default: 2 } }, 100);
  table.hear({ node_id: 'n2', plans: ['default'], available_capacity: 4, interval_s: 1 }, 100);
  t.is(table.alive(100).length, 2);
  t.is(table.alive(3101).length, 1, 'n2 said its interval is 1 s');
  table.took('n1', 'default');
  t.is(table.alive(100).find((n) => n.node_id === 'n1')?.plan_capacity?.default, 1);
  table.forget('n1');
  t.deepEqual(table.alive(100).map((n) => n.node_id), ['n2']);
});

test('OSB: the version header is required and at least 2.13', (t) => {
  t.regex(refuseApiVersion(undefined) ?? '', /required/);
  t.regex(refuseApiVersion('2.12') ?? '', /not supported/);
  t.regex(refuseApiVersion('3.0') ?? '', /not supported/);
  t.regex(refuseApiVersion('latest') ?? '', /not a version/);
  t.is(refuseApiVersion('2.13'), undefined);
  t.is(refuseApiVersion('2.17'), undefined);
});

test('OSB: bodies need service_id and plan_id; the 400 names the field', (t) => {
  const bad = parseOsb(provisionBody, { plan_id: 'p' }, 'provision request');
  t.false(bad.ok);
  if (!bad.ok) {
    t.is(bad.reply.status, 400);
    t.regex(String(bad.reply.body.description), /service_id/);
  }
  t.true(parseOsb(provisionBody, { service_id: 's', plan_id: 'p', organization_guid: 'o', space_guid: 's', extra: 1 }, 'x').ok);
  t.true(parseOsb(bindBody, { service_id: 's', plan_id: 'p', app_guid: 'a' }, 'x').ok);
  t.false(parseOsb(bindBody, { service_id: 's', plan_id: 5 }, 'x').ok);
});

test('OSB: an update needs service_id; plan_id, parameters and previous_values are optional', (t) => {
  const bad = parseOsb(updateBody, { plan_id: 'p' }, 'update request');
  t.false(bad.ok);
  if (!bad.ok) t.regex(String(bad.reply.body.description), /update request: .*service_id/);
  t.true(parseOsb(updateBody, { service_id: 's' }, 'x').ok);
  t.true(parseOsb(updateBody, { service_id: 's', plan_id: 'p2', parameters: { a: 1 }, previous_values: { plan_id: 'p1' } }, 'x').ok);
});

test('OSB: ids must be usable as names on the nodes; accepts_incomplete only when literally true', (t) => {
  t.is(refuseId('instance', '6a1f3c1e-0000-4000-8000-000000000000'), undefined);
  t.is(refuseId('binding', '../etc')?.status, 400);
  t.true(acceptsIncomplete(new URL('http://x/?accepts_incomplete=true')));
  t.false(acceptsIncomplete(new URL('http://x/?accepts_incomplete=1')));
  t.false(acceptsIncomplete(new URL('http://x/')));
});

const gw = `nats:\n  servers: [nats://10.0.0.1:4222]\n  user: u\n  password: p\nlabel: redis\nbase_dir: /var/vcap/store/gw\nbroker:\n  user: b\n  password: s\nservice:\n  id: svc\n  description: Redis\n`;

test('gateway config: the catalog comes from it, with defaults', (t) => {
  const c = parseConfig(`${gw}plans:\n  - {id: p1, name: default, description: d, limits: {memory_mb: 64}}\n`, 'gw.yml', gatewayConfig);
  t.is(c.broker.host, '0.0.0.0');
  t.false(c.plans[0]!.async);
  const service = (catalogOf(c).services as Array<Record<string, unknown>>)[0]!;
  t.is(service.name, 'redis');
  t.is(service.bindable, true);
  t.is(service.plan_updateable, false, 'a plan change only where the config says the nodes apply it');
  t.is((catalogOf(parseConfig(`${gw.replace('  description: Redis\n', '  description: Redis\n  plan_updateable: true\n')}plans:\n  - {id: p1, name: default, description: d}\n`, 'gw.yml', gatewayConfig)).services as Array<Record<string, unknown>>)[0]!.plan_updateable, true);
  t.deepEqual(service.plans, [{ id: 'p1', name: 'default', description: 'd', free: true, bindable: true, metadata: { limits: { memory_mb: 64 }, asynchronous_provisioning: false } }]);
});

const gatewayProblems = (text: string): string[] => configProblems(text, 'gw.yml', gatewayConfig);

test('gateway config: missing keys and duplicate plans are named', (t) => {
  const plans = 'plans:\n  - {id: p1, name: default, description: d}\n';
  t.true(gatewayProblems(`${gw.replace('  password: s\n', '')}${plans}`).some((l) => l === 'gw.yml:8 broker.password: required'));
  const dup = gatewayProblems(`${gw}${plans}  - {id: p1, name: default, description: e}\n`);
  t.true(dup.some((l) => l.includes('plans[1].id: duplicate plan id "p1"')), dup.join('\n'));
  t.true(dup.some((l) => l.includes('plans[1].name: duplicate plan name "default"')), dup.join('\n'));
});

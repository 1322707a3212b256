// Rolling upgrades, the pure parts: zone by zone (canaries first, batches never span two zones),
// the per-deploy overrides of the update block, --skip-drain's groups, which recreates go
// create-swap-delete, the addresses held for the VMs being swapped, and the CLI's flags.
import test from 'ava';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JobSpecFile } from '../../orchestrator/agent/protocol.ts';
import { loadJobs, renderJob } from '../../orchestrator/release/mod.ts';
import { parseRollFlags } from '../../orchestrator/client/deploy-command.ts';
import { allocateAddresses } from '../../orchestrator/director/deploy/ip-allocation.ts';
import { swapsVm } from '../../orchestrator/director/deploy/plan.ts';
import type { DesiredInstance, InstancePlan } from '../../orchestrator/director/deploy/types.ts';
import { orderByZone, overridePolicy, skipsDrain, updateBatches } from '../../orchestrator/director/deploy/update-order.ts';
import { checkDeployment, parseCloudConfig, parseMaxInFlight, type JobSpec, type UpdatePolicy } from '../../orchestrator/manifest/mod.ts';
import { updatePolicy } from '../fixtures/update-policy.ts';

const policy = updatePolicy;

/** Instance `index` in zone z1 (even) or z2 (odd): BOSH's round robin. */
const inst = (index: number, az = index % 2 === 0 ? 'z1' : 'z2') => ({ index, az });
const shape = (batches: Array<{ canary: boolean; items: Array<{ index: number; az: string }> }>) =>
  batches.map((b) => `${b.canary ? 'canary ' : ''}${b.items.map((i) => `${i.index}@${i.az}`).join(',')}`);
const byZone = (items: Array<{ index: number; az: string }>, p: UpdatePolicy, azs = ['z1', 'z2']) => shape(updateBatches(items, p, items.length, (i) => i.az, azs));

test('instances roll zone by zone: canaries from the first zone, then batches that never span two zones', (t) => {
  const six = [0, 1, 2, 3, 4, 5].map((i) => inst(i));
  t.deepEqual(byZone(six, policy()), ['canary 0@z1', '2@z1', '4@z1', '1@z2', '3@z2', '5@z2']);
  t.deepEqual(byZone(six, policy({ canaries: 1, max_in_flight: { instances: 2 } })), ['canary 0@z1', '2@z1,4@z1', '1@z2,3@z2', '5@z2']);
  // A batch larger than a zone stops at the zone's edge.
  t.deepEqual(byZone(six, policy({ canaries: 0, max_in_flight: { instances: 5 } })), ['0@z1,2@z1,4@z1', '1@z2,3@z2,5@z2']);
  // More canaries than the first zone holds: they go on into the next zone, in order.
  t.deepEqual(byZone(six, policy({ canaries: 4, max_in_flight: { instances: 2 } })), ['canary 0@z1,2@z1,4@z1,1@z2', '3@z2,5@z2']);
  // The order of the group's azs decides, not the index.
  t.deepEqual(byZone(six, policy({ canaries: 0, max_in_flight: { percent: 50 } }), ['z2', 'z1']), ['1@z2,3@z2,5@z2', '0@z1,2@z1,4@z1']);
});

test('only what changes rolls; a zone with nothing to do is skipped; an unknown zone comes last', (t) => {
  t.deepEqual(byZone([inst(3), inst(5)], policy()), ['canary 3@z2', '5@z2']);
  t.deepEqual(byZone([], policy()), []);
  const groups = orderByZone([inst(0, 'z9'), inst(1, 'z2'), inst(2, 'z1')], (i) => i.az, ['z1', 'z2']);
  t.deepEqual(groups.map((g) => g.map((i) => i.az).join()), ['z1', 'z2', 'z9']);
  // Without zones, the order is as before: canaries, then batches.
  t.deepEqual(shape(updateBatches([inst(0), inst(1), inst(2)], policy({ max_in_flight: { instances: 2 } }), 3)), ['canary 0@z1', '1@z2,2@z1']);
});

test('--canaries and --max-in-flight override every group’s update block for one deploy', (t) => {
  const base = policy({ canaries: 2, max_in_flight: { instances: 1 }, vm_strategy: 'create-swap-delete' });
  t.deepEqual(overridePolicy(base, {}), base);
  t.deepEqual(overridePolicy(base, { canaries: 0 }), { ...base, canaries: 0 });
  t.deepEqual(overridePolicy(base, { max_in_flight: { percent: 50 } }), { ...base, max_in_flight: { percent: 50 } });
  t.deepEqual(parseMaxInFlight('25%'), { percent: 25 });
  t.deepEqual(parseMaxInFlight('3'), { instances: 3 });
  t.deepEqual(parseMaxInFlight(2), { instances: 2 });
  t.is(parseMaxInFlight('0'), undefined);
  t.is(parseMaxInFlight('two'), undefined);
});

test('--skip-drain: * is every group, else the named ones', (t) => {
  t.true(skipsDrain(['*'], 'router'));
  t.true(skipsDrain(['nats', 'router'], 'router'));
  t.false(skipsDrain(['nats'], 'router'));
  t.false(skipsDrain([], 'router'));
});

test('the CLI flags are checked before anything is sent, with sentences', (t) => {
  t.deepEqual(parseRollFlags({}), {});
  t.deepEqual(parseRollFlags({ canaries: '0', maxInFlight: '25%', skipDrain: '' }), { canaries: 0, maxInFlight: '25%', skipDrain: ['*'] });
  t.deepEqual(parseRollFlags({ skipDrain: 'router, nats' }), { skipDrain: ['router', 'nats'] });
  t.deepEqual(parseRollFlags({ skipDrain: '*' }), { skipDrain: ['*'] });
  t.throws(() => parseRollFlags({ canaries: 'x' }), { message: '--canaries "x": expected a number of instances (0 or more)' });
  t.throws(() => parseRollFlags({ canaries: '-1' }), { message: /--canaries "-1"/ });
  t.throws(() => parseRollFlags({ maxInFlight: '0' }), { message: /--max-in-flight "0": expected a number of instances \(2\) or a percentage/ });
  t.throws(() => parseRollFlags({ maxInFlight: '150%' }), { message: /--max-in-flight "150%"/ });
  t.throws(() => parseRollFlags({ skipDrain: 'router,,nats' }), { message: /--skip-drain=router,,nats: expected instance group names/ });
  t.throws(() => parseRollFlags({ canaries: ['1', '2'] }), { message: '--canaries is given 2 times: give it once' });
});

function desired(o: Partial<DesiredInstance> = {}): DesiredInstance {
  return {
    group: 'router',
    index: 0,
    uuid: 'u0',
    az: 'z1',
    bootstrap: true,
    vm_type: { name: 'small', cloud_properties: {} },
    stemcell: { os: 'debian-12', version: '2' },
    networks: [{ name: 'default', type: 'manual', ip: '10.0.0.5', static: false, range: '10.0.0.0/24', gateway: '10.0.0.1', dns: [], default: ['dns', 'gateway'], cloud_properties: {} }],
    jobs: [],
    packages: [],
    persistent_disk_mb: 0,
    persistent_disk_cloud_properties: {},
    env: {},
    ...o,
  };
}

function recreate(d: DesiredInstance, o: { disk?: string; before?: Partial<DesiredInstance> } = {}): InstancePlan {
  const spec = { ...d, stemcell: { os: 'debian-12', version: '1' }, ...o.before };
  return { action: 'recreate', group: d.group, index: d.index, uuid: d.uuid, reasons: ['stemcell'], desired: d, deployed: { group: d.group, index: d.index, uuid: d.uuid, state: 'running', spec, vm: { cid: 'vm-1', agent_id: 'a1' }, disk_cid: o.disk ?? null } };
}

test('create-swap-delete applies to recreates of instances without a static IP, their disk moving over', (t) => {
  const csd = policy({ vm_strategy: 'create-swap-delete' });
  t.true(swapsVm(recreate(desired()), csd));
  t.false(swapsVm(recreate(desired()), policy()), 'delete-create is the default');
  t.false(swapsVm({ ...recreate(desired()), action: 'update' }, csd), 'an update keeps its VM');
  const staticNet = desired().networks.map((n) => ({ ...n, static: true }));
  t.false(swapsVm(recreate(desired({ networks: staticNet })), csd), 'a static IP cannot be on two VMs at once');
  t.true(swapsVm(recreate(desired({ persistent_disk_mb: 1024 }), { disk: 'disk-1' }), csd), 'the disk moves to the new VM');
  t.true(swapsVm(recreate(desired({ persistent_disk_mb: 1024 })), csd), 'a disk added now is made with the new VM');
  t.false(swapsVm(recreate(desired(), { disk: 'disk-1', before: { persistent_disk_mb: 1024 } }), csd), 'a disk this deploy removes: delete-create');
  t.false(swapsVm({ ...recreate(desired()), action: 'create' }, csd));
});

test('addresses held for VMs being swapped are taken by nobody, so their replacements get new ones', (t) => {
  const cloud = parseCloudConfig(
    `azs: [{name: z1}, {name: z2}]
vm_types: [{name: small}]
networks:
- name: default
  subnets:
  - {range: 10.0.0.0/24, gateway: 10.0.0.1, reserved: [10.0.0.128 - 10.0.0.254], az: z1}
  - {range: 10.0.0.0/24, gateway: 10.0.0.1, reserved: [10.0.0.2 - 10.0.0.127], az: z2}
compilation: {workers: 1, network: default, vm_type: small}
`,
    'cloud.yml',
  );
  const specs: JobSpec[] = [{ name: 'router', provides: [], consumes: [] }];
  const d = checkDeployment(
    `name: dd
releases: [{name: ingot, version: "1"}]
stemcells: [{alias: default, os: debian-12, version: "1"}]
update: {canaries: 1, max_in_flight: 1, canary_watch_time: 1000, update_watch_time: 1000}
instance_groups:
- {name: router, azs: [z1, z2], instances: 3, vm_type: small, stemcell: default, networks: [{name: default}], jobs: [{name: router, release: ingot}]}
`,
    cloud,
    specs,
    'd.yml',
  );
  // Each zone's instances take their addresses from the zone's subnet.
  t.deepEqual(d.instance_groups[0]!.instances.map((i) => `${i.az} ${i.address}`), ['z1 10.0.0.2', 'z2 10.0.0.128', 'z1 10.0.0.3']);
  const previous = new Map([
    ['router/0', { default: '10.0.0.2' }],
    ['router/1', { default: '10.0.0.128' }],
    ['router/2', { default: '10.0.0.3' }],
  ]);
  t.deepEqual(Object.fromEntries(allocateAddresses(d, cloud, previous)), { 'router/0': { default: '10.0.0.2' }, 'router/1': { default: '10.0.0.128' }, 'router/2': { default: '10.0.0.3' } });
  const held = allocateAddresses(d, cloud, previous, new Map([['router/1', { default: '10.0.0.128' }]]));
  t.deepEqual(Object.fromEntries(held), { 'router/0': { default: '10.0.0.2' }, 'router/1': { default: '10.0.0.129' }, 'router/2': { default: '10.0.0.3' } });
});

test('the router and DEA jobs render drain commands the agent reads; the router waits its drain_wait_s', (t) => {
  const repo = fileURLToPath(new URL('../..', import.meta.url));
  const jobs = loadJobs(join(repo, 'kernel/jobs'), repo, new Set(['ingot', 'nats-server']));
  const nats = { instances: [{ name: 'nats', index: 0, address: '10.0.0.2', az: 'z1' }], properties: { nats: { port: 4222, user: 'kernel', password: 'secret' } } };
  const spec = (name: string, props: Record<string, unknown>) => {
    const j = jobs.find((x) => x.name === name)!;
    return JobSpecFile.parse(JSON.parse(renderJob(j.spec, j.templates, props, { nats }, { address: '10.0.0.9', index: 0, root: '/var/vcap' }).files['spec.json']!));
  };
  const router = spec('router', { router: { drain_wait_s: 3 } }).drain!;
  t.is(router.executable, '/bin/sh');
  t.regex(router.args[1]!, /kill -USR2 "\$pid" 2>\/dev\/null; then sleep 3; fi/);
  const dea = spec('dea', {}).drain!;
  // Asked again while the DEA is listed and alive; 0 once the agent lists it no longer.
  t.regex(dea.args[1]!, /kill -0 "\$pid" 2>\/dev\/null; then echo -1; else echo 0; fi$/);
  t.is(jobs.find((x) => x.name === 'health-manager')!.spec.drain, undefined, 'a job without one drains by its SIGTERM alone');
});

test('zones are stable across deploys: deployed instances keep theirs, new ones fill the emptiest zone', (t) => {
  const cloud = parseCloudConfig(
    `azs: [{name: z1}, {name: z2}, {name: z3}]
vm_types: [{name: small}]
networks:
- name: default
  subnets:
  - {range: 10.0.0.0/24, gateway: 10.0.0.1, azs: [z1, z2, z3]}
compilation: {workers: 1, network: default, vm_type: small}
`,
    'cloud.yml',
  );
  const place = (azs: string, instances: number, previous: Record<string, string> = {}) =>
    checkDeployment(
      `name: dd
releases: [{name: ingot, version: "1"}]
stemcells: [{alias: default, os: debian-12, version: "1"}]
update: {canaries: 1, max_in_flight: 1, canary_watch_time: 1000, update_watch_time: 1000}
instance_groups:
- {name: router, azs: ${azs}, instances: ${instances}, vm_type: small, stemcell: default, networks: [{name: default}], jobs: [{name: router, release: ingot}]}
`,
      cloud,
      [{ name: 'router', provides: [], consumes: [] }],
      'd.yml',
      new Map(Object.entries(previous)),
    ).instance_groups[0]!.instances.map((i) => i.az);
  // Nothing deployed: round robin.
  t.deepEqual(place('[z1, z2]', 5), ['z1', 'z2', 'z1', 'z2', 'z1']);
  const deployed = { 'router/0': 'z1', 'router/1': 'z2', 'router/2': 'z1' };
  // Scaling up: the new instance goes to the emptier zone; the others stay.
  t.deepEqual(place('[z1, z2]', 4, deployed), ['z1', 'z2', 'z1', 'z2']);
  // A zone added: nobody moves; the new instance goes to the new, empty zone.
  t.deepEqual(place('[z1, z2, z3]', 3, deployed), ['z1', 'z2', 'z1']);
  t.deepEqual(place('[z1, z2, z3]', 4, deployed), ['z1', 'z2', 'z1', 'z3']);
  // A zone removed: only its instances move, to the emptiest remaining zone.
  t.deepEqual(place('[z2, z3]', 3, deployed), ['z3', 'z2', 'z2']);
});

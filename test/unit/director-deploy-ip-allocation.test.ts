// IP allocation across deploys: static IPs from the manifest, kept addresses, lowest free.
import test from 'ava';
import { allocateAddresses, applyAddresses, IpAllocationError } from '../../orchestrator/director/deploy/ip-allocation.ts';
import { checkDeployment, parseCloudConfig, type JobSpec } from '../../orchestrator/manifest/mod.ts';

const cloud = parseCloudConfig(
  `azs: [{name: z1}]
vm_types: [{name: small}]
networks:
- name: default
  subnets:
  - {range: 10.0.0.0/28, gateway: 10.0.0.1, reserved: [10.0.0.2 - 10.0.0.3], static: [10.0.0.10 - 10.0.0.12], az: z1}
compilation: {workers: 1, network: default, vm_type: small}
`,
  'cloud.yml',
);

const specs: JobSpec[] = [
  { name: 'nats', provides: [{ name: 'nats', type: 'nats' }], consumes: [] },
  { name: 'router', provides: [], consumes: [{ name: 'nats', type: 'nats' }] },
];

function deployment(o: { routers: number; natsStatic?: string[] }) {
  return checkDeployment(
    `name: dd
releases: [{name: ingot, version: "1"}]
stemcells: [{alias: default, os: debian-12, version: "1"}]
update: {canaries: 1, max_in_flight: 1, canary_watch_time: 1000, update_watch_time: 1000}
instance_groups:
- name: nats
  azs: [z1]
  instances: 1
  vm_type: small
  stemcell: default
  networks: [{name: default${o.natsStatic ? `, static_ips: [${o.natsStatic.join(', ')}]` : ''}}]
  jobs: [{name: nats, release: ingot}]
- name: router
  azs: [z1]
  instances: ${o.routers}
  vm_type: small
  stemcell: default
  networks: [{name: default}]
  jobs: [{name: router, release: ingot}]
`,
    cloud,
    specs,
    'm.yml',
  );
}

const ips = (book: Map<string, Record<string, string>>) => Object.fromEntries([...book].map(([k, v]) => [k, v.default]));

test('a first deploy takes the lowest free addresses past the gateway, reserved and static ranges', (t) => {
  const book = allocateAddresses(deployment({ routers: 2 }), cloud, new Map());
  t.deepEqual(ips(book), { 'nats/0': '10.0.0.4', 'router/0': '10.0.0.5', 'router/1': '10.0.0.6' });
});

test('static IPs come from the manifest', (t) => {
  const book = allocateAddresses(deployment({ routers: 1, natsStatic: ['10.0.0.11'] }), cloud, new Map());
  t.deepEqual(ips(book), { 'nats/0': '10.0.0.11', 'router/0': '10.0.0.4' });
});

test('an instance keeps its address across deploys; a new one takes the lowest free', (t) => {
  const previous = new Map([
    ['nats/0', { default: '10.0.0.9' }],
    ['router/0', { default: '10.0.0.5' }],
  ]);
  const book = allocateAddresses(deployment({ routers: 2 }), cloud, previous);
  t.deepEqual(ips(book), { 'nats/0': '10.0.0.9', 'router/0': '10.0.0.5', 'router/1': '10.0.0.4' });
});

test('a kept address that is no longer valid (now reserved, static or outside) is replaced', (t) => {
  const previous = new Map([
    ['nats/0', { default: '10.0.0.2' }],
    ['router/0', { default: '10.0.0.11' }],
  ]);
  const book = allocateAddresses(deployment({ routers: 1 }), cloud, previous);
  t.deepEqual(ips(book), { 'nats/0': '10.0.0.4', 'router/0': '10.0.0.5' });
});

test('a static IP given to another instance wins over a kept address', (t) => {
  const previous = new Map([['router/0', { default: '10.0.0.11' }]]);
  const book = allocateAddresses(deployment({ routers: 1, natsStatic: ['10.0.0.11'] }), cloud, previous);
  t.is(book.get('nats/0')!.default, '10.0.0.11');
  t.is(book.get('router/0')!.default, '10.0.0.4');
});

test('links follow the allocated addresses', (t) => {
  const d = deployment({ routers: 1 });
  const book = allocateAddresses(d, cloud, new Map([['nats/0', { default: '10.0.0.8' }]]));
  const moved = applyAddresses(d, book);
  const link = moved.instance_groups[1]!.jobs[0]!.links.nats!;
  t.deepEqual(link.instances.map((i) => i.address), ['10.0.0.8']);
  t.is(moved.instance_groups[0]!.instances[0]!.address, '10.0.0.8');
});

test('a full subnet is an error naming the instance', (t) => {
  // The same deployment against a subnet with fewer free addresses than instances.
  const small = parseCloudConfig(
    `azs: [{name: z1}]
vm_types: [{name: small}]
networks:
- name: default
  subnets:
  - {range: 10.0.0.0/28, gateway: 10.0.0.1, reserved: [10.0.0.2 - 10.0.0.12], az: z1}
compilation: {workers: 1, network: default, vm_type: small}
`,
    'small.yml',
  );
  t.throws(() => allocateAddresses(deployment({ routers: 2 }), small, new Map()), { instanceOf: IpAllocationError, message: 'Allocating an address for router/1: network default has no free address left in az z1' });
});

import test from 'ava';
import {
  ManifestError,
  MemoryVariableStore,
  checkDeployment,
  interpolate,
  parseCloudConfig,
  parseManifest,
  readYaml,
  validateDeployment,
  type Deployment,
  type JobSpec,
} from '../../orchestrator/manifest/mod.ts';
import { kernelJobSpecs, specsWith } from '../fixtures/manifests/job-specs.ts';
import { cloudConfig, fixture } from '../fixtures/manifests/load.ts';

async function kernelDeployment(): Promise<Deployment> {
  const doc = await interpolate(fixture('kernel.yml'), { system_domain: 'ingot.test' }, new MemoryVariableStore());
  return checkDeployment(doc, cloudConfig(), kernelJobSpecs);
}

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ManifestError) return err.lines;
    throw err;
  }
  throw new Error('expected a ManifestError');
}

const header = `name: d
releases: [{name: ingot, version: 1}]
stemcells: [{alias: default, os: ubuntu, version: latest}]
update: {canaries: 1, max_in_flight: 1, canary_watch_time: 1000, update_watch_time: 1000}
instance_groups:
`;

function group(name: string, extra: Partial<{ instances: number; azs: string; networks: string; jobs: string }> = {}): string {
  return `- name: ${name}
  azs: ${extra.azs ?? '[z1]'}
  instances: ${extra.instances ?? 1}
  vm_type: small
  stemcell: default
  networks: ${extra.networks ?? '[{name: default}]'}
  jobs: ${extra.jobs ?? `[{name: ${name}, release: ingot}]`}
`;
}

test('the kernel deployment: static IPs decide AZs, others get the lowest free address', async (t) => {
  const d = await kernelDeployment();
  const at = (g: string) => d.instance_groups.find((x) => x.name === g)!.instances.map((i) => `${i.az} ${i.address}`);
  t.deepEqual(at('nats'), ['z1 10.244.0.10', 'z1 10.244.0.11', 'z2 10.244.1.10']);
  t.deepEqual(at('router'), ['z1 10.244.0.41'], 'dynamic addresses skip the reserved and static ranges');
  t.deepEqual(at('cloud-controller'), ['z1 10.244.0.42']);
  t.deepEqual(at('dea'), ['z1 10.244.0.43', 'z2 10.244.1.41'], 'instances go round the AZs');
  t.deepEqual(at('health-manager'), ['z1 10.244.0.44']);
  const cc = d.instance_groups.find((g) => g.name === 'cloud-controller')!;
  t.deepEqual(cc.persistent_disk, { size_mb: 2048, type: 'default', cloud_properties: {} });
  t.deepEqual(cc.vm_type, { name: 'small', cloud_properties: { memory_mb: 512, cpus: 1 } });
  t.is(cc.instances[0]!.networks[0]!.gateway, '10.244.0.1');
  t.deepEqual(cc.instances[0]!.networks[0]!.default, ['dns', 'gateway']);
});

test('every job learns the NATS addresses and credentials through its link', async (t) => {
  const d = await kernelDeployment();
  const nats = d.instance_groups.find((g) => g.name === 'nats')!.jobs[0]!.properties as { nats: { password: string } };
  for (const g of ['router', 'cloud-controller', 'dea', 'health-manager']) {
    const link = d.instance_groups.find((x) => x.name === g)!.jobs[0]!.links.nats!;
    t.deepEqual(link.instances.map((i) => i.address), ['10.244.0.10', '10.244.0.11', '10.244.1.10'], g);
    t.deepEqual(link.instances.map((i) => `${i.name}/${i.index}@${i.az}`), ['nats/0@z1', 'nats/1@z1', 'nats/2@z2']);
    t.deepEqual(link.properties, { nats: { user: 'nats', password: nats.nats.password, port: 4222 } });
  }
  const hm = d.instance_groups.find((g) => g.name === 'health-manager')!.jobs[0]!;
  t.deepEqual(hm.links.cloud_controller!.properties, { cc: { external_url: 'http://api.ingot.test' } });
  t.deepEqual(d.instance_groups.find((g) => g.name === 'dea')!.jobs[0]!.links.router!.instances.map((i) => i.address), ['10.244.0.41']);
});

test('a manifest with several mistakes gets every one named with its line', (t) => {
  t.deepEqual(problems(() => checkDeployment(fixture('mistakes.yml'), cloudConfig(), kernelJobSpecs)), [
    'mistakes.yml:28 instance_groups[0].jobs[0]: router/router consumes nats (type nats): no job in the deployment provides a nats link',
    'mistakes.yml:33 instance_groups[1].instances: expected a number, got string',
    'mistakes.yml:44 instance_groups[2].vm_type: unknown vm_type huge (cloud-config vm_types: small, large)',
    'mistakes.yml:48 instance_groups[2].networks[0].static_ips[0]: 10.244.0.12 is already used by router (instance_groups[0].networks[0].static_ips[0])',
    'mistakes.yml:50 instance_groups[2].jobs[0]: cloud-controller/cloud-controller consumes nats (type nats): no job in the deployment provides a nats link',
    'mistakes.yml:52 instance_groups[2].jobs[1].name: unknown job uaa in release ingot (its jobs: nats, router, cloud-controller, dea, health-manager)',
  ]);
});

test('an invalid group that would provide a link does not also make its consumers dangle', (t) => {
  const text = header + group('nats', { instances: 'x' as unknown as number }) + group('router');
  t.deepEqual(problems(() => checkDeployment(readYaml(text, 'd.yml'), cloudConfig(), kernelJobSpecs)), [
    'd.yml:8 instance_groups[0].instances: expected a number, got string',
  ]);
});

test('unknown references: az, network, stemcell, release, disk type', (t) => {
  const text = `${header}- name: router
  azs: [z3]
  instances: 1
  vm_type: small
  stemcell: other
  persistent_disk_type: fast
  networks: [{name: private}]
  jobs: [{name: router, release: cf}]
`;
  t.deepEqual(problems(() => validateDeployment(parseManifest(text, 'd.yml'), cloudConfig(), kernelJobSpecs)), [
    'd.yml:7 instance_groups[0].azs[0]: unknown az z3 (cloud-config azs: z1, z2)',
    'd.yml:10 instance_groups[0].stemcell: unknown stemcell alias other (stemcells: default)',
    'd.yml:11 instance_groups[0].persistent_disk_type: unknown disk_type fast (cloud-config disk_types: default)',
    'd.yml:12 instance_groups[0].networks[0].name: unknown network private (cloud-config networks: default)',
    'd.yml:13 instance_groups[0].jobs[0].release: unknown release cf (releases: ingot)',
  ]);
});

test('static IPs: outside the static range, reserved, wrong subnet, count not matching instances', (t) => {
  const text = header + group('nats', { instances: 4, networks: '[{name: default, static_ips: [10.244.0.50, 10.244.0.3, 10.244.1.12]}]' });
  t.deepEqual(problems(() => validateDeployment(parseManifest(text, 'd.yml'), cloudConfig(), kernelJobSpecs)), [
    'd.yml:11 instance_groups[0].networks[0].static_ips[0]: 10.244.0.50 is outside the static range of network default (10.244.0.10 - 10.244.0.40)',
    'd.yml:11 instance_groups[0].networks[0].static_ips[1]: 10.244.0.3 is reserved in network default',
    'd.yml:11 instance_groups[0].networks[0].static_ips[2]: 10.244.1.12 is not in a subnet of network default for azs z1',
    'd.yml:11 instance_groups[0].networks[0].static_ips: 3 static IPs for 4 instances',
  ]);
});

test('static IP ranges expand, and zero instances is allowed', (t) => {
  const text = header + group('nats', { instances: 3, networks: '[{name: default, static_ips: [10.244.0.20 - 10.244.0.22]}]' }) + group('router', { instances: 0 });
  const d = validateDeployment(parseManifest(text, 'd.yml'), cloudConfig(), kernelJobSpecs);
  t.deepEqual(d.instance_groups[0]!.instances.map((i) => i.address), ['10.244.0.20', '10.244.0.21', '10.244.0.22']);
  t.deepEqual(d.instance_groups[1]!.instances, []);
});

const unlinked: JobSpec[] = ['dea', 'router'].map((name) => ({ name, provides: [], consumes: [] }));

test('a network without enough addresses for all instances is refused', (t) => {
  // z1's subnet has 254 hosts: gateway, 8 reserved and 31 static leave 214 dynamic addresses.
  const text = header + group('dea', { instances: 200 }) + group('router', { instances: 20 });
  t.deepEqual(problems(() => validateDeployment(parseManifest(text, 'd.yml'), cloudConfig(), unlinked)), [
    'd.yml:15 instance_groups[1].instances: network default has no free address left in az z1 for instance router/14',
  ]);
});

const pair: JobSpec[] = [
  { name: 'a', provides: [{ name: 'db', type: 'postgres' }], consumes: [] },
  { name: 'b', provides: [{ name: 'db', type: 'postgres' }], consumes: [] },
  { name: 'c', provides: [], consumes: [{ name: 'database', type: 'postgres' }] },
];

test('an ambiguous link is an error naming the consumer and the candidates', (t) => {
  const text = header + group('a') + group('b') + group('c');
  t.deepEqual(problems(() => validateDeployment(parseManifest(text, 'd.yml'), cloudConfig(), pair)), [
    'd.yml:26 instance_groups[2].jobs[0]: c/c consumes database (type postgres): 2 providers match (a/a (db), b/b (db)); choose one with from:',
  ]);
});

test('from picks a provider by its alias', (t) => {
  const text =
    header +
    group('a', { jobs: '[{name: a, release: ingot, provides: {db: {as: main}}}]' }) +
    group('b') +
    group('c', { jobs: '[{name: c, release: ingot, consumes: {database: {from: main}}}]' });
  const d = validateDeployment(parseManifest(text, 'd.yml'), cloudConfig(), pair);
  t.deepEqual(d.instance_groups[2]!.jobs[0]!.links.database!.instances.map((i) => i.name), ['a']);
});

test('nil blocks a link: fine when optional, an error when required; unknown link names are refused', (t) => {
  const specs = specsWith({ name: 'c', provides: [], consumes: [{ name: 'nats', type: 'nats' }, { name: 'extra', type: 'x', optional: true }] });
  const text = header + group('nats') + group('c', { jobs: '[{name: c, release: ingot, consumes: {nats: nil, extra: nil, other: {from: y}}}]' });
  t.deepEqual(problems(() => validateDeployment(parseManifest(text, 'd.yml'), cloudConfig(), specs)), [
    'd.yml:19 instance_groups[1].jobs[0].consumes.other: job c consumes no link named other (it consumes: nats, extra)',
    'd.yml:19 instance_groups[1].jobs[0].consumes.nats: c/c consumes nats (type nats): the link is required and cannot be set to nil',
  ]);
});

test('an optional link with no provider is null; a manual link carries its addresses', (t) => {
  const specs = specsWith({ name: 'c', provides: [], consumes: [{ name: 'nats', type: 'nats' }, { name: 'extra', type: 'x', optional: true }] });
  const text = header + group('c', { jobs: '[{name: c, release: ingot, consumes: {nats: {instances: [{address: 192.0.2.7}], properties: {nats: {port: 4222}}}}}]' });
  const d = validateDeployment(parseManifest(text, 'd.yml'), cloudConfig(), specs);
  const links = d.instance_groups[0]!.jobs[0]!.links;
  t.is(links.extra, null);
  t.deepEqual(links.nats!.instances.map((i) => i.address), ['192.0.2.7']);
  t.deepEqual(links.nats!.properties, { nats: { port: 4222 } });
});

test('several networks need one default for dns and gateway; a dynamic network leaves the address to the IaaS', (t) => {
  const cc = `azs: [{name: z1}]
vm_types: [{name: small}]
networks:
- name: default
  subnets: [{range: 10.0.0.0/24, gateway: 10.0.0.1, azs: [z1]}]
- name: public
  type: dynamic
  subnets: [{azs: [z1]}]
compilation: {workers: 1, vm_type: small, network: default}
`;
  const bad = header + group('router', { networks: '[{name: default}, {name: public}]' });
  t.deepEqual(problems(() => parseManifest(bad, 'd.yml')), [
    'd.yml:11 instance_groups[0].networks: with several networks, exactly one must be default for dns (found 0)',
    'd.yml:11 instance_groups[0].networks: with several networks, exactly one must be default for gateway (found 0)',
  ]);
  const good = header + group('router', { networks: '[{name: default}, {name: public, default: [dns, gateway]}]' });
  const d = validateDeployment(parseManifest(good, 'd.yml'), parseCloudConfig(cc, 'cc.yml'), unlinked);
  const [instance] = d.instance_groups[0]!.instances;
  t.deepEqual(instance!.networks.map((n) => [n.name, n.address]), [['default', '10.0.0.2'], ['public', null]]);
  t.is(instance!.address, null, 'the default network is the dynamic one');
});

test('YAML anchors and aliases are read as their values; errands are planned like services', (t) => {
  const text = `${header}- &web
  name: router
  azs: [z1]
  instances: 1
  vm_type: small
  stemcell: default
  networks: [{name: default}]
  jobs: [{name: router, release: ingot}]
- name: smoke-tests
  lifecycle: errand
  azs: [z1]
  instances: 1
  vm_type: small
  stemcell: default
  networks: *nets
  jobs: []
`.replace('networks: [{name: default}]', 'networks: &nets [{name: default}]');
  const d = validateDeployment(parseManifest(text, 'd.yml'), cloudConfig(), unlinked);
  t.is(d.instance_groups[1]!.lifecycle, 'errand');
  t.deepEqual(d.instance_groups.map((g) => g.instances[0]!.address), ['10.244.0.41', '10.244.0.42']);
});

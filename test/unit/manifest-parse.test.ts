import test from 'ava';
import { ManifestError, parseCloudConfig, parseManifest, readYaml, inFlight } from '../../orchestrator/manifest/mod.ts';
import { fixture, fixtureText } from '../fixtures/manifests/load.ts';

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ManifestError) return err.lines;
    throw err;
  }
  throw new Error('expected a ManifestError');
}

const minimal = `name: d
releases: [{name: ingot, version: 1}]
stemcells: [{alias: default, os: ubuntu, version: latest}]
update: {canaries: 1, max_in_flight: 2, canary_watch_time: 1000, update_watch_time: 1000-5000}
`;

test('parses the kernel manifest into typed, defaulted values', (t) => {
  const m = parseManifest(fixture('kernel.yml'));
  t.is(m.name, 'ingot');
  t.is(m.releases[0]!.version, '0.1.0');
  t.deepEqual(m.update.max_in_flight, { percent: 25 });
  t.deepEqual(m.update.canary_watch_time, { min_ms: 1000, max_ms: 30000 });
  t.deepEqual(m.update.update_watch_time, { min_ms: 5000, max_ms: 5000 });
  t.false(m.update.serial);
  t.deepEqual(m.instance_groups.map((g) => g.name), ['nats', 'router', 'cloud-controller', 'dea', 'health-manager']);
  const dea = m.instance_groups.find((g) => g.name === 'dea')!;
  t.deepEqual(dea.update.max_in_flight, { instances: 1 }, 'a group update overrides the global one');
  t.deepEqual(dea.update.canary_watch_time, m.update.canary_watch_time, 'and inherits the rest');
  t.is(dea.lifecycle, 'service');
  t.deepEqual(m.variables.map((v) => v.type), ['password', 'password']);
});

test('reads a manifest from text too, and numbers versions as strings', (t) => {
  const m = parseManifest(minimal, 'd.yml');
  t.is(m.releases[0]!.version, '1');
  t.deepEqual(m.instance_groups, []);
  t.deepEqual(m.update.update_watch_time, { min_ms: 1000, max_ms: 5000 });
});

test('names file, line and path for a wrong type', (t) => {
  const text = minimal + 'instance_groups:\n- name: a\n  azs: [z1]\n  instances: three\n  vm_type: s\n  stemcell: default\n  networks: [{name: n}]\n  jobs: []\n';
  t.deepEqual(problems(() => parseManifest(text, '/x/local.yml')), ['local.yml:8 instance_groups[0].instances: expected a number, got string']);
});

test('reports every problem at once, in every instance group', (t) => {
  const text = `name: d
releases: [{name: ingot}]
stemcells: [{alias: default, os: ubuntu, version: latest}]
update: {canaries: 1, max_in_flight: lots, canary_watch_time: 1000, update_watch_time: 9-1}
instance_groups:
- name: a
  azs: []
  instances: -1
  vm_type: s
  stemcell: default
  networks: [{name: n}]
  jobs: []
  colour: blue
- name: b
  azs: [z1]
  instances: 1
  stemcell: default
  networks: [{name: n}]
  jobs: []
`;
  t.deepEqual(problems(() => parseManifest(text, 'd.yml')), [
    'd.yml:2 releases[0].version: required',
    'd.yml:4 update.max_in_flight: expected a number of instances (2) or a percentage ("25%")',
    'd.yml:7 instance_groups[0].azs: expected at least one az',
    'd.yml:8 instance_groups[0].instances: expected 0 or more instances',
    'd.yml:13 instance_groups[0].colour: unknown key',
    'd.yml:14 instance_groups[1].vm_type: required',
  ]);
});

test('refuses duplicate names and a disk given two ways', (t) => {
  const group = (n: string) => `- name: ${n}\n  azs: [z1]\n  instances: 1\n  vm_type: s\n  stemcell: default\n  persistent_disk: 1024\n  persistent_disk_type: d\n  networks: [{name: n}]\n  jobs: []\n`;
  const lines = problems(() => parseManifest(minimal + 'instance_groups:\n' + group('a') + group('a'), 'd.yml'));
  t.deepEqual(lines, [
    'd.yml:11 instance_groups[0].persistent_disk: set persistent_disk or persistent_disk_type, not both',
    'd.yml:15 instance_groups[1].name: instance group a is defined twice',
    'd.yml:20 instance_groups[1].persistent_disk: set persistent_disk or persistent_disk_type, not both',
  ]);
});

test('a YAML syntax error names its line', (t) => {
  const lines = problems(() => readYaml('name: a\nreleases: [\n  - x\n: y\n', 'bad.yml'));
  t.true(lines.length >= 1);
  t.regex(lines[0]!, /^bad\.yml:3 \S/);
});

test('max_in_flight as a percentage rounds down but never below one', (t) => {
  t.is(inFlight({ percent: 25 }, 10), 2);
  t.is(inFlight({ percent: 25 }, 2), 1);
  t.is(inFlight({ instances: 3 }, 10), 3);
});

test('parses the cloud-config', (t) => {
  const cc = parseCloudConfig(fixtureText('cloud-config.yml'), 'cloud-config.yml');
  t.deepEqual(cc.azs.map((a) => a.name), ['z1', 'z2']);
  t.is(cc.disk_types[0]!.disk_size, 2048);
  t.deepEqual(cc.networks[0]!.subnets[0]!.azs, ['z1']);
  t.deepEqual(cc.networks[0]!.subnets[1]!.dns, []);
  t.is(cc.compilation.workers, 2);
});

test('cloud-config problems: addresses outside the range, overlaps, unknown names', (t) => {
  const text = `azs: [{name: z1}]
vm_types: [{name: s}]
networks:
- name: n
  subnets:
  - range: 10.0.0.0/24
    gateway: 10.0.1.1
    reserved: [10.0.0.2 - 10.0.0.20]
    static: [10.0.0.15 - 10.0.0.30, 10.0.2.5]
    azs: [z9]
- name: n
  type: dynamic
compilation: {workers: 1, vm_type: m, network: x}
`;
  t.deepEqual(problems(() => parseCloudConfig(text, 'cc.yml')), [
    'cc.yml:7 networks[0].subnets[0].gateway: 10.0.1.1 is outside the range 10.0.0.0/24',
    'cc.yml:9 networks[0].subnets[0].static[1]: 10.0.2.5 is outside the range 10.0.0.0/24',
    'cc.yml:9 networks[0].subnets[0].static[0]: 10.0.0.15 - 10.0.0.30 overlaps the reserved addresses',
    'cc.yml:10 networks[0].subnets[0].azs: unknown az z9 (cloud-config azs: z1)',
    'cc.yml:11 networks[1].name: n is defined twice in networks',
    'cc.yml:13 compilation.vm_type: unknown vm_type m',
    'cc.yml:13 compilation.network: unknown network x',
  ]);
});

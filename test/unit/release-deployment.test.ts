// The release's job specs with the manifest package: a kernel manifest checked against the
// specs of kernel/jobs (links resolved by orchestrator/manifest), then every instance of
// every job rendered and its component config checked — what the director does before it
// touches a VM.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkDeployment, interpolate, MemoryVariableStore, parseCloudConfig, readYaml } from '../../orchestrator/manifest/mod.ts';
import { checkComponentConfigs, linkSpecOf, loadJobs, renderJob, type RenderedJob } from '../../orchestrator/release/mod.ts';
import { cloudConfig } from '../fixtures/manifests/load.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const jobs = loadJobs(join(repo, 'kernel/jobs'), repo, new Set(['ingot', 'nats-server']));

const manifest = `name: ingot
releases: [{name: ingot, version: latest}]
stemcells: [{alias: default, os: ubuntu, version: latest}]
update: {canaries: 1, max_in_flight: 1, canary_watch_time: 1000-30000, update_watch_time: 1000-30000}
instance_groups:
- name: nats
  azs: [z1, z2]
  instances: 3
  vm_type: small
  stemcell: default
  networks: [{name: default, static_ips: [10.244.0.10, 10.244.0.11, 10.244.1.10]}]
  jobs: [{name: nats, release: ingot, properties: {nats: {password: natsnatsnats}}}]
- name: router
  azs: [z1]
  instances: 2
  vm_type: small
  stemcell: default
  networks: [{name: default}]
  jobs: [{name: router, release: ingot}]
- name: cloud-controller
  azs: [z1]
  instances: 1
  vm_type: small
  stemcell: default
  networks: [{name: default}]
  jobs:
  - name: cloud-controller
    release: ingot
    properties:
      cc: {system_domain: localhost, jwt: {secret: ${'j'.repeat(32)}}, admin: {password: adminadmin}, bulk_api: {password: bulkbulkbulk}}
- name: dea
  azs: [z1, z2]
  instances: 2
  vm_type: large
  stemcell: default
  networks: [{name: default}]
  jobs: [{name: dea, release: ingot, properties: {dea: {network: {deny: [{cidr: 10.244.0.0/16}]}}}}]
- name: health-manager
  azs: [z1]
  instances: 1
  vm_type: small
  stemcell: default
  networks: [{name: default}]
  jobs: [{name: health-manager, release: ingot}]
`;

test('a kernel manifest renders every instance of every job into configs its components accept', (t) => {
  const deployment = checkDeployment(readYaml(manifest, 'local.yml'), cloudConfig(), jobs.map((j) => linkSpecOf(j.spec, 'ingot')));
  const rendered = new Map<string, RenderedJob>();
  const problems: string[] = [];
  for (const group of deployment.instance_groups) {
    for (const instance of group.instances) {
      for (const job of group.jobs) {
        const source = jobs.find((j) => j.name === job.name)!;
        const out = renderJob(source.spec, source.templates, job.properties, job.links, { deployment: deployment.name, name: group.name, index: instance.index, address: instance.address, az: instance.az });
        problems.push(...checkComponentConfigs(out, `/var/vcap/jobs/${job.name}`));
        rendered.set(`${group.name}/${instance.index}`, out);
      }
    }
  }
  t.deepEqual(problems, []);
  t.is(rendered.size, 9);
  const nats1 = JSON.parse(rendered.get('nats/1')!.files['config/nats.conf']!);
  t.deepEqual(nats1.cluster.routes, ['10.244.0.10', '10.244.0.11', '10.244.1.10'].map((ip) => `nats-route://kernel:natsnatsnats@${ip}:6222`));
  t.regex(rendered.get('router/1')!.files['config/router.yml']!, /- nats:\/\/10\.244\.1\.10:4222/);
  t.regex(rendered.get('health-manager/0')!.files['config/health-manager.yml']!, /url: http:\/\/10\.244\.0\.\d+:9022/);
});

test('manifests/local.yml, with its variables generated, renders into configs every component accepts', async (t) => {
  const text = readFileSync(join(repo, 'manifests/local.yml'), 'utf8');
  const cc = parseCloudConfig(readYaml(readFileSync(join(repo, 'manifests/cloud-config-local.yml'), 'utf8'), 'cloud-config-local.yml'));
  const interpolated = await interpolate(readYaml(text, 'local.yml'), {}, new MemoryVariableStore());
  const deployment = checkDeployment(interpolated, cc, jobs.map((j) => linkSpecOf(j.spec, 'ingot')));
  const problems: string[] = [];
  const prefixes = new Set<string>();
  let count = 0;
  for (const group of deployment.instance_groups) {
    for (const instance of group.instances) {
      for (const job of group.jobs) {
        const source = jobs.find((j) => j.name === job.name)!;
        const out = renderJob(source.spec, source.templates, job.properties, job.links, { deployment: deployment.name, name: group.name, index: instance.index, address: instance.address, az: instance.az });
        problems.push(...checkComponentConfigs(out, `/var/vcap/jobs/${job.name}`));
        const prefix = /^prefix: (.+)$/m.exec(out.files['config/dea.yml'] ?? '')?.[1];
        if (prefix) prefixes.add(prefix);
        count++;
      }
    }
  }
  t.deepEqual(problems, []);
  t.is(count, 10, 'nats ×3, cloud-controller, router ×2, dea ×2, health-manager with smoke-tests');
  t.is(prefixes.size, 2, `each DEA its own prefix: ${[...prefixes].join(', ')}`);
});

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
import { parseConfig } from '../../kernel/component/mod.ts';
import { deaConfig } from '../../kernel/dea/config.ts';
import { gatewayConfig } from '../../kernel/services/gateway/config.ts';
import { nodeConfig, type NodeConfig } from '../../kernel/services/node/config.ts';
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
- name: database
  azs: [z1]
  instances: 1
  vm_type: small
  stemcell: default
  networks: [{name: default}]
  persistent_disk_type: default
  jobs:
  - {name: ccdb, release: ingot, properties: {ccdb: {password: "ccdb pass/word"}}}
  - {name: blobstore, release: ingot, properties: {blobstore: {password: blobstoreblobstore}}}
- name: cloud-controller
  azs: [z1]
  instances: 2
  vm_type: small
  stemcell: default
  networks: [{name: default}]
  jobs:
  - name: cloud-controller
    release: ingot
    properties:
      cc:
        system_domain: localhost
        jwt: {secret: ${'j'.repeat(32)}}
        admin: {password: adminadmin}
        bulk_api: {password: bulkbulkbulk}
        service_brokers: {credentials: {redis: {username: broker, password: brokerbroker}}}
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
- name: redis
  azs: [z1]
  instances: 1
  vm_type: small
  stemcell: default
  networks: [{name: default, static_ips: [10.244.0.30]}]
  persistent_disk_type: default
  jobs:
  - {name: redis-node, release: ingot, properties: {node: {plans: {default: {memory_mb: 16}}, capacity: 4, port_range: {min: 20000, max: 20003}}}}
  - name: service-gateway
    release: ingot
    properties:
      gateway:
        label: redis
        broker: {password: brokerbroker}
        service: {id: ingot-redis, description: Redis}
        plans: [{id: ingot-redis-default, name: default, description: 16 MB}]
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
        rendered.set(`${group.name}/${instance.index}/${job.name}`, out);
      }
    }
  }
  t.deepEqual(problems, []);
  t.is(rendered.size, 14, [...rendered.keys()].join(', '));
  // Both controllers on the database VM's PostgreSQL (the password percent-encoded) and blobstore.
  const database = deployment.instance_groups.find((g) => g.name === 'database')!.instances[0]!.address!.replace(/\./g, '\\.');
  for (const index of [0, 1]) {
    const config = rendered.get(`cloud-controller/${index}/cloud-controller`)!.files['config/cloud-controller.yml']!;
    t.regex(config, new RegExp(`url: postgres://cloud_controller:ccdb%20pass%2Fword@${database}:5432/ccdb\n`));
    t.regex(config, new RegExp(`url: http://${database}:9028\n`));
  }
  const nats1 = JSON.parse(rendered.get('nats/1/nats')!.files['config/nats.conf']!);
  t.deepEqual(nats1.cluster.routes, ['10.244.0.10', '10.244.0.11', '10.244.1.10'].map((ip) => `nats-route://kernel:natsnatsnats@${ip}:6222`));
  t.regex(rendered.get('router/1/router')!.files['config/router.yml']!, /- nats:\/\/10\.244\.1\.10:4222/);
  t.regex(rendered.get('health-manager/0/health-manager')!.files['config/health-manager.yml']!, /urls:\n\s+- http:\/\/10\.244\.0\.\d+:9022\n/);
  // The node and its gateway share the VM: the node serves on its address, the gateway announces it.
  t.regex(rendered.get('redis/0/redis-node')!.files['config/service-node.yml']!, /^host: 10\.244\.0\.30$/m);
  t.regex(rendered.get('redis/0/service-gateway')!.files['config/service-gateway.yml']!, /url: http:\/\/10\.244\.0\.30:9032/);
});

test('manifests/local.yml, with its variables generated, renders into configs every component accepts', async (t) => {
  const text = readFileSync(join(repo, 'manifests/local.yml'), 'utf8');
  const cc = parseCloudConfig(readYaml(readFileSync(join(repo, 'manifests/cloud-config-local.yml'), 'utf8'), 'cloud-config-local.yml'));
  const interpolated = await interpolate(readYaml(text, 'local.yml'), {}, new MemoryVariableStore());
  const deployment = checkDeployment(interpolated, cc, jobs.map((j) => linkSpecOf(j.spec, 'ingot')));
  const problems: string[] = [];
  const prefixes = new Set<string>();
  const nodes: NodeConfig[] = [];
  const gateways: string[] = [];
  const allows: Array<Array<{ cidr: string; ports?: number[] | undefined }>> = [];
  let count = 0;
  for (const group of deployment.instance_groups) {
    for (const instance of group.instances) {
      for (const job of group.jobs) {
        const source = jobs.find((j) => j.name === job.name)!;
        const out = renderJob(source.spec, source.templates, job.properties, job.links, { deployment: deployment.name, name: group.name, index: instance.index, address: instance.address, az: instance.az });
        problems.push(...checkComponentConfigs(out, `/var/vcap/jobs/${job.name}`));
        const prefix = /^prefix: (.+)$/m.exec(out.files['config/dea.yml'] ?? '')?.[1];
        if (prefix) prefixes.add(prefix);
        if (problems.length === 0) {
          const file = (name: string) => out.files[`config/${name}.yml`];
          if (file('service-node')) nodes.push(parseConfig(file('service-node')!, 'service-node.yml', nodeConfig));
          if (file('service-gateway')) gateways.push(parseConfig(file('service-gateway')!, 'service-gateway.yml', gatewayConfig).label);
          if (file('dea')) allows.push(parseConfig(file('dea')!, 'dea.yml', deaConfig).network.allow);
        }
        count++;
      }
    }
  }
  t.deepEqual(problems, []);
  t.is(count, 21, 'nats ×3, ccdb with blobstore, cloud-controller ×2, router ×2, dea ×2, health-manager with smoke-tests, and 4 × (a service node with its gateway)');
  t.is(prefixes.size, 2, `each DEA its own prefix: ${[...prefixes].join(', ')}`);
  t.is(deployment.instance_groups.reduce((n, g) => n + g.instances.length, 0), 15, 'VMs');
  t.deepEqual(nodes.map((n) => n.label).sort(), ['mysql', 'postgresql', 'rabbitmq', 'redis']);
  t.deepEqual(gateways.sort(), ['mysql', 'postgresql', 'rabbitmq', 'redis']);
  // Apps reach every port a node serves them on: the DEAs' network.allow names each one.
  const servedPorts = (n: NodeConfig): number[] => {
    if (n.label === 'redis') return Array.from({ length: n.port_range.max - n.port_range.min + 1 }, (_, i) => n.port_range.min + i);
    if (n.label === 'postgresql') return [n.postgresql.port];
    if (n.label === 'mysql') return [n.mysql.port];
    return [n.rabbitmq.amqp_port, n.rabbitmq.management_port];
  };
  t.is(allows.length, 2);
  for (const allow of allows) {
    for (const n of nodes) {
      const rule = allow.find((r) => r.cidr === `${n.host}/32`);
      t.truthy(rule, `no network.allow rule for the ${n.label} node at ${n.host}`);
      t.deepEqual(servedPorts(n).filter((p) => !rule?.ports?.includes(p)), [], `${n.label} node ports missing from network.allow`);
    }
  }
});

import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { parseConfig } from '../../kernel/component/mod.ts';
import { ccConfig } from '../../kernel/cloud-controller/config.ts';
import { deaConfig } from '../../kernel/dea/config.ts';
import { hmConfig } from '../../kernel/health-manager/config.ts';
import { routerConfig } from '../../kernel/router/config.ts';
import { gatewayConfig } from '../../kernel/services/gateway/config.ts';
import { nodeConfig } from '../../kernel/services/node/config.ts';
import { smokeTestConfig } from '../../kernel/smoke-tests/config.ts';
import type { LinkData } from '../../orchestrator/manifest/types.ts';
import { JobSpecFile } from '../../orchestrator/agent/protocol.ts';
import { ReleaseError, RenderError, checkComponentConfigs, checkTemplates, loadJobs, parseJobSpec, renderJob, type JobSpec } from '../../orchestrator/release/mod.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));

function spec(text: string): JobSpec {
  return parseJobSpec(text, 'spec.yml');
}

function renderProblems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof RenderError) return err.problems;
    throw err;
  }
  throw new Error('expected a RenderError');
}

const web = spec(`
name: web
packages: [ingot]
templates: {web.yml: config/web.yml}
processes:
  - name: web
    executable: ((spec:root))/packages/ingot/bin/ingot
    args: [component, web, --config, ((spec:job_dir))/config/web.yml]
consumes: [{name: nats, type: nats}]
properties:
  web.port: {description: port, default: 8080}
  web.name: {description: a name}
  web.tags: {description: tags, default: [a, b]}
  web.workers: {description: optional}
`);

const webTemplate = `
port: ((p:web.port))
name: ((p:web.name))
greeting: "hello ((p:web.name)) on ((spec:address))"
tags: ((p:web.tags))
workers: ((p?:web.workers))
nats:
  servers:
    - "((each link:nats.addresses))": "nats://((item)):((link:nats:nats.port))"
  password: ((link:nats:nats.password))
`;

const nats = (...addresses: string[]): LinkData => ({
  instances: addresses.map((address, index) => ({ name: 'nats', index, address, az: 'z1' })),
  properties: { nats: { port: 4222, user: 'kernel', password: 'secret' } },
});

test('properties take the manifest value, else the default; unset optional keys are left out', (t) => {
  const out = renderJob(web, { 'web.yml': webTemplate }, { web: { name: 'shop', port: 9000 } }, { nats: nats('10.0.0.1') }, { address: '10.0.0.9', index: 2 });
  const cfg = parse(out.files['config/web.yml']!);
  t.is(cfg.port, 9000);
  t.is(cfg.name, 'shop');
  t.deepEqual(cfg.tags, ['a', 'b']);
  t.false('workers' in cfg);
  t.is(cfg.greeting, 'hello shop on 10.0.0.9');
  t.deepEqual(out.properties, { web: { port: 9000, name: 'shop', tags: ['a', 'b'] } });
});

test('links give addresses and the properties their provider shares; each expands a list', (t) => {
  const out = renderJob(web, { 'web.yml': webTemplate }, { web: { name: 'x' } }, { nats: nats('10.0.0.1', '10.0.0.2', '10.0.0.3') }, { address: '10.0.0.9' });
  const cfg = parse(out.files['config/web.yml']!);
  t.deepEqual(cfg.nats.servers, ['nats://10.0.0.1:4222', 'nats://10.0.0.2:4222', 'nats://10.0.0.3:4222']);
  t.is(cfg.nats.password, 'secret');
});

test('spec.json lists the processes in the agent format, paths under the agent root', (t) => {
  const out = renderJob(web, { 'web.yml': webTemplate }, { web: { name: 'x' } }, { nats: nats('10.0.0.1') }, { root: '/srv/vcap', address: '10.0.0.9' });
  const specFile = JobSpecFile.parse(JSON.parse(out.files['spec.json']!));
  t.deepEqual(specFile.processes[0], {
    name: 'web',
    executable: '/srv/vcap/packages/ingot/bin/ingot',
    args: ['component', 'web', '--config', '/srv/vcap/jobs/web/config/web.yml'],
    env: {},
  });
});

test('every problem is reported at once, naming job, template and path', (t) => {
  const template = `${webTemplate}\nextra: ((p:web.nope))\nwho: ((spec:colour))\nbad: ((link:db.address))\n`;
  const problems = renderProblems(() => renderJob(web, { 'web.yml': template }, { web: { port: 1, typo: 2 }, other: { x: 1 } }, {}));
  t.true(problems.some((p) => p === 'job web: unknown property web.typo (the spec declares: web.port, web.name, web.tags, web.workers)'), problems.join('\n'));
  t.true(problems.some((p) => p.startsWith('job web: unknown property other ')));
  t.true(problems.includes('job web: missing link nats (type nats): no provider was given'));
  t.true(problems.includes('job web, template web.yml, at name: missing required property web.name (no value in the manifest and no default in the spec)'));
  t.true(problems.includes('job web, template web.yml, at extra: unknown property web.nope (not in the job\'s spec)'));
  t.true(problems.some((p) => p.startsWith('job web, template web.yml, at who: unknown spec field colour')));
  t.true(problems.some((p) => p.startsWith('job web, template web.yml, at bad: link db is not consumed by the job')));
  // The missing link is reported once, not at each placeholder that uses it.
  t.is(problems.filter((p) => p.includes('link nats')).length, 1, problems.join('\n'));
});

test('a value is data: placeholders, YAML and JSON syntax in a property cannot inject anything', (t) => {
  const evil = 'x\nadmin: true\n((p:web.port)) ((spec:root)) "}, {"a": 1';
  const out = renderJob(web, { 'web.yml': webTemplate }, { web: { name: evil, workers: JSON.parse('{"__proto__": {"polluted": true}}') } }, { nats: nats('10.0.0.1') }, { address: '10.0.0.9' });
  const cfg = parse(out.files['config/web.yml']!);
  t.is(cfg.name, evil);
  t.is(cfg.greeting, `hello ${evil} on 10.0.0.9`);
  t.deepEqual(Object.keys(cfg.workers), ['__proto__']);
  t.false('admin' in cfg);
  t.is(({} as Record<string, unknown>).polluted, undefined);
  const json = spec(`name: j\ntemplates: {c.json: c.json}\nproperties: {a: {description: a}}\n`);
  const rendered = renderJob(json, { 'c.json': '{"a": "((p:a))", "b": "pre-((p:a))"}' }, { a: '"}, "admin": true, "x": {"' }, {});
  const parsed = JSON.parse(rendered.files['c.json']!);
  t.deepEqual(Object.keys(parsed), ['a', 'b']);
  t.is(parsed.a, '"}, "admin": true, "x": {"');
});

test('lists and maps cannot sit inside a longer string; filters percent-encode', (t) => {
  const s = spec(`name: j\ntemplates: {c.yml: c.yml}\nproperties: {a: {description: a}, pw: {description: p}}\n`);
  const problems = renderProblems(() => renderJob(s, { 'c.yml': 'x: "v=((p:a))"\n' }, { a: [1, 2] }, {}));
  t.deepEqual(problems, ['job j, template c.yml, at x: ((p:a)) is a list and sits inside a longer string; only a whole value may be a list or map']);
  const out = renderJob(s, { 'c.yml': 'url: "nats://u:((p:pw | url))@h"\n' }, { pw: 'p@ss:w/rd' }, {});
  t.is(parse(out.files['c.yml']!).url, 'nats://u:p%40ss%3Aw%2Frd@h');
  t.deepEqual(renderProblems(() => renderJob(s, { 'c.yml': 'x: ((p:pw | shell))\n' }, { pw: 'a' }, {})), ['job j, template c.yml, at x: unknown filter "shell" (known: url)']);
});

test('malformed placeholders and keys holding placeholders are refused', (t) => {
  const s = spec(`name: j\ntemplates: {c.yml: c.yml}\nproperties: {a: {description: a, default: 1}}\n`);
  const problems = renderProblems(() => renderJob(s, { 'c.yml': 'x: ((eval:process.exit))\ny: "((p:a)"\n"((p:a))": 1\n' }, {}, {}));
  t.is(problems.length, 3, problems.join('\n'));
  t.true(problems[0]!.includes('malformed placeholder'));
  t.true(problems[1]!.includes('unbalanced'));
  t.true(problems[2]!.includes('a key cannot hold a placeholder'));
});

test('checkTemplates finds unknown properties and links without values', (t) => {
  const problems = checkTemplates(web, { 'web.yml': 'a: ((p:web.nope))\nb: ((link:db.address))\n' });
  t.deepEqual(problems, [
    "job web, template web.yml: ((p:web.nope)): unknown property web.nope (not in the job's spec)",
    'job web, template web.yml: ((link:db.address)): link db is not consumed by the job',
  ]);
});

test('a bad spec.yml reports every problem with file and line', (t) => {
  const err = t.throws(() => spec('name: web\npackages: nope\ntemplates: {"../x.yml": /etc/passwd}\nprovides: [{name: a, type: a, properties: [missing.prop]}]\nbogus: 1\n'), { instanceOf: ReleaseError });
  const lines = err!.problems;
  t.true(lines.some((l) => l.startsWith('spec.yml:2 packages:')), lines.join('\n'));
  t.true(lines.some((l) => l.startsWith('spec.yml:3 templates')));
  t.true(lines.includes('spec.yml:5 unknown key (bogus)'));
  const refs = t.throws(() => spec('name: web\nprovides: [{name: a, type: a, properties: [missing.prop]}]\n'), { instanceOf: ReleaseError });
  t.deepEqual(refs!.problems, ['spec.yml:2 provides[0].properties[0]: link a shares missing.prop, which is not in properties']);
});

// ---- the kernel's own jobs ------------------------------------------------------------------

const jobs = loadJobs(join(repo, 'kernel/jobs'), repo, new Set(['ingot', 'nats-server']));
const job = (name: string) => jobs.find((j) => j.name === name)!;
const cc: LinkData = {
  instances: [
    { name: 'cloud-controller', index: 0, address: '10.244.0.5', az: 'z1' },
    { name: 'cloud-controller', index: 1, address: '10.244.0.6', az: 'z1' },
  ],
  properties: { cc: { external_port: 9022, system_domain: 'localhost', bulk_api: { user: 'health-manager', password: 'bulkbulk1' } } },
};

test('the kernel jobs: every folder has a job, each with its Debian packages', (t) => {
  t.deepEqual(jobs.map((j) => j.name), readdirSync(join(repo, 'kernel/jobs'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort());
  t.deepEqual(job('nats').spec.debian_packages, ['nats-server']);
  t.deepEqual(job('dea').spec.debian_packages, ['nftables', 'iproute2', 'util-linux']);
  // One node job per service: a VM installs only its own server.
  t.deepEqual(job('redis-node').spec.debian_packages, ['redis-server']);
  t.deepEqual(job('postgresql-node').spec.debian_packages, ['postgresql']);
  t.deepEqual(job('mysql-node').spec.debian_packages, ['mariadb-server']);
  t.deepEqual(job('rabbitmq-node').spec.debian_packages, ['rabbitmq-server']);
  t.deepEqual(job('service-gateway').spec.debian_packages, []);
  for (const j of jobs) if (j.name !== 'nats') t.deepEqual(j.spec.consumes.find((c) => c.name === 'nats'), { name: 'nats', type: 'nats', optional: false });
});

test('the kernel jobs render configs their components accept', (t) => {
  const links = { nats: nats('10.244.0.2', '10.244.0.3', '10.244.0.4') };
  const ctx = { address: '10.244.0.9', index: 0, root: '/var/vcap' };
  const render = (name: string, props: Record<string, unknown>, extra: Record<string, LinkData> = {}) =>
    renderJob(job(name).spec, job(name).templates, props, { ...links, ...extra }, ctx).files;

  const router = parseConfig(render('router', {})['config/router.yml']!, 'router.yml', routerConfig);
  t.deepEqual(router.nats.servers, ['nats://10.244.0.2:4222', 'nats://10.244.0.3:4222', 'nats://10.244.0.4:4222']);
  t.is(router.nats.password, 'secret');
  t.is(router.port, 8080);
  t.is(router.local_ip, '10.244.0.9');

  // The controllers' state is on the database VM: its PostgreSQL and its blobstore.
  const state = {
    ccdb: { instances: [{ name: 'database', index: 0, address: '10.244.0.19', az: 'z1' }], properties: { ccdb: { port: 5432, database: 'ccdb', user: 'cloud_controller', password: 'p@ss/word' } } },
    blobstore: { instances: [{ name: 'database', index: 0, address: '10.244.0.19', az: 'z1' }], properties: { blobstore: { port: 9028, user: 'blobstore', password: 'blobstore-password' } } },
  };
  const ccRender = (props: Record<string, unknown>) => render('cloud-controller', props, state)['config/cloud-controller.yml']!;
  const ccCfg = parseConfig(ccRender({ cc: { system_domain: 'localhost', jwt: { secret: 'x'.repeat(32) }, admin: { password: 'adminadmin' }, bulk_api: { password: 'bulkbulk1' } } }), 'cloud-controller.yml', ccConfig);
  t.is(ccCfg.db.url, 'postgres://cloud_controller:p%40ss%2Fword@10.244.0.19:5432/ccdb');
  t.like(ccCfg.blobstore, { dir: '/var/vcap/data/cloud-controller/blobs', url: 'http://10.244.0.19:9028', user: 'blobstore', password: 'blobstore-password' });
  t.deepEqual(ccCfg.service_brokers.credentials, {});
  const brokers = parseConfig(
    ccRender({
      cc: {
        system_domain: 'localhost', jwt: { secret: 'x'.repeat(32) }, admin: { password: 'adminadmin' }, bulk_api: { password: 'bulkbulk1' },
        service_brokers: { credentials: { redis: { username: 'broker', password: 'brokerpw' } } },
      },
    }),
    'cloud-controller.yml',
    ccConfig,
  ).service_brokers;
  t.deepEqual(brokers.credentials, { redis: { username: 'broker', password: 'brokerpw' } });
  t.is(brokers.default_credentials, undefined);

  const dea = parseConfig(render('dea', { dea: { network: { deny: [{ cidr: '10.244.0.0/16' }] } } })['config/dea.yml']!, 'dea.yml', deaConfig);
  t.deepEqual(dea.network.deny, [{ cidr: '10.244.0.2/32' }, { cidr: '10.244.0.3/32' }, { cidr: '10.244.0.4/32' }, { cidr: '10.244.0.0/16' }]);
  t.is(dea.base_dir, '/var/vcap/data/dea');

  const hm = parseConfig(render('health-manager', {}, { cloud_controller: cc })['config/health-manager.yml']!, 'health-manager.yml', hmConfig);
  t.deepEqual(hm.bulk_api.urls, ['http://10.244.0.5:9022', 'http://10.244.0.6:9022'], 'every controller, tried in turn');
  t.is(hm.bulk_api.password, 'bulkbulk1');
});

test('the service node jobs render, with their defaults alone, configs the service node accepts', (t) => {
  const ctx = { address: '10.244.0.30', index: 0, root: '/var/vcap' };
  for (const label of ['redis', 'postgresql', 'mysql', 'rabbitmq']) {
    const name = `${label}-node`;
    const out = renderJob(job(name).spec, job(name).templates, {}, { nats: nats('10.244.0.2') }, ctx);
    const node = parseConfig(out.files['config/service-node.yml']!, 'service-node.yml', nodeConfig);
    t.is(node.label, label);
    t.is(node.host, '10.244.0.30');
    t.is(node.base_dir, `/var/vcap/store/${name}`);
    t.true(Object.hasOwn(node.plans, 'default'), name);
    const proc = JSON.parse(out.files['spec.json']!).processes[0];
    t.deepEqual(proc.args, ['component', 'service-node', '--config', `/var/vcap/jobs/${name}/config/service-node.yml`]);
    t.deepEqual(proc.ready, { http: 'http://127.0.0.1:9030/healthz' });
  }
  const render = (name: string, props: Record<string, unknown>) =>
    parseConfig(renderJob(job(name).spec, job(name).templates, { node: props }, { nats: nats('10.244.0.2') }, ctx).files['config/service-node.yml']!, 'service-node.yml', nodeConfig);
  const redis = render('redis-node', { port_range: { min: 20000, max: 20003 }, redis: { run_as: 'nobody' } });
  t.deepEqual(redis.port_range, { min: 20000, max: 20003 });
  t.is(redis.redis.run_as, 'nobody');
  t.is(redis.redis.server_path, '/usr/bin/redis-server');
  t.is(render('postgresql-node', {}).postgresql.run_as, 'postgres');
  t.is(render('postgresql-node', {}).postgresql.port, 5433);
  t.is(render('mysql-node', { mysql: { buffer_pool_mb: 32 } }).mysql.buffer_pool_mb, 32);
  const rabbit = render('rabbitmq-node', {});
  t.deepEqual([rabbit.rabbitmq.amqp_port, rabbit.rabbitmq.management_port, rabbit.rabbitmq.run_as], [5700, 15700, 'rabbitmq']);
});

test('the service gateway job renders a config the gateway accepts, announcing its own address', (t) => {
  const g = job('service-gateway');
  const props = {
    gateway: {
      label: 'redis',
      broker: { password: 'brokerpw' },
      service: { id: 'ingot-redis', description: 'Redis' },
      plans: [{ id: 'ingot-redis-default', name: 'default', description: '16 MB', limits: { memory_mb: 16 } }],
    },
  };
  const out = renderJob(g.spec, g.templates, props, { nats: nats('10.244.0.2') }, { address: '10.244.0.30', index: 0, root: '/var/vcap' });
  const gw = parseConfig(out.files['config/service-gateway.yml']!, 'service-gateway.yml', gatewayConfig);
  t.is(gw.label, 'redis');
  t.deepEqual(gw.broker, { host: '0.0.0.0', port: 9032, user: 'broker', password: 'brokerpw', url: 'http://10.244.0.30:9032' });
  t.is(gw.base_dir, '/var/vcap/store/service-gateway');
  t.is(gw.plans[0]!.name, 'default');
  t.deepEqual(JSON.parse(out.files['spec.json']!).processes[0].ready, { http: 'http://127.0.0.1:9031/healthz' });
  // Label, password and catalog have no defaults: a manifest that forgets them is told so.
  const problems = renderProblems(() => renderJob(g.spec, g.templates, {}, { nats: nats('10.244.0.2') }, { address: '10.244.0.30' }));
  for (const p of ['gateway.label', 'gateway.broker.password', 'gateway.service', 'gateway.plans']) t.true(problems.some((m) => m.includes(`missing required property ${p}`)), problems.join('\n'));
});

test('the smoke-tests job renders an errand and a config the smoke test accepts', (t) => {
  const router: LinkData = {
    instances: ['10.244.0.15', '10.244.0.16'].map((address, index) => ({ name: 'router', index, address, az: 'z1' })),
    properties: { router: { port: 8080, status: { port: 8081 } } },
  };
  const files = renderJob(job('smoke-tests').spec, job('smoke-tests').templates, { smoke_tests: { admin: { password: 'adminadmin' }, min_deas: 2 } }, { nats: nats('10.244.0.2'), cloud_controller: cc, router }, { address: '10.244.0.9', index: 0, root: '/var/vcap' }).files;
  const agentSpec = JSON.parse(files['spec.json']!);
  t.deepEqual(agentSpec.processes, []);
  t.deepEqual(agentSpec.errand, { executable: '/var/vcap/packages/ingot/bin/ingot', args: ['smoke-test', '--config', '/var/vcap/jobs/smoke-tests/config/smoke-tests.yml'], env: {} });
  const config = parseConfig(files['config/smoke-tests.yml']!, 'smoke-tests.yml', smokeTestConfig);
  t.deepEqual(config.routers, [
    { proxy: '10.244.0.15:8080', status_port: 8081 },
    { proxy: '10.244.0.16:8080', status_port: 8081 },
  ]);
  t.is(config.cloud_controller.url, 'http://10.244.0.5:9022');
  t.deepEqual(config.cloud_controller.admin, { user: 'admin', password: 'adminadmin' });
  t.is(config.min_deas, 2);
});

test('three nats instances render one cluster: routes to every instance, credentials encoded', (t) => {
  const link = nats('10.244.0.2', '10.244.0.3', '10.244.0.4');
  link.properties = { nats: { port: 4222, cluster_port: 6222, user: 'kernel', password: 'p@ss/word' } };
  const files = renderJob(job('nats').spec, job('nats').templates, { nats: { password: 'p@ss/word' } }, { nats: link }, { index: 1, address: '10.244.0.3' }).files;
  const conf = JSON.parse(files['config/nats.conf']!);
  t.deepEqual(conf.cluster.routes, [
    'nats-route://kernel:p%40ss%2Fword@10.244.0.2:6222',
    'nats-route://kernel:p%40ss%2Fword@10.244.0.3:6222',
    'nats-route://kernel:p%40ss%2Fword@10.244.0.4:6222',
  ]);
  t.deepEqual(conf.authorization, { user: 'kernel', password: 'p@ss/word' });
  t.is(conf.port, 4222);
  t.deepEqual(JSON.parse(files['spec.json']!).processes[0].args, ['-c', '/var/vcap/jobs/nats/config/nats.conf']);
  // Running only once its own /healthz answers, on the instance's address.
  t.deepEqual(JSON.parse(files['spec.json']!).processes[0].ready, { http: 'http://10.244.0.3:8222/healthz' });
  // The nats password has no default: a manifest that forgets it is told so.
  const problems = renderProblems(() => renderJob(job('nats').spec, job('nats').templates, {}, { nats: link }, { address: '10.244.0.3' }));
  t.true(problems.every((p) => p.includes('missing required property nats.password')), problems.join('\n'));
});

test('job specs read from disk name their file in problems', (t) => {
  const text = readFileSync(join(repo, 'kernel/jobs/router/spec.yml'), 'utf8').replace('name: router', 'name: router\nnot_a_key: 1');
  const err = t.throws(() => parseJobSpec(text, 'kernel/jobs/router/spec.yml'), { instanceOf: ReleaseError });
  t.regex(err!.message, /^kernel\/jobs\/router\/spec\.yml:\d+ unknown key \(not_a_key\)/);
});

test('checkComponentConfigs reports what a component would refuse, before anything runs', (t) => {
  const router = job('router');
  const ok = renderJob(router.spec, router.templates, {}, { nats: nats('10.0.0.1') }, { root: '/var/vcap', index: 0 });
  t.deepEqual(checkComponentConfigs(ok, '/var/vcap/jobs/router'), []);
  const render = (props: Record<string, unknown>) => renderJob(router.spec, router.templates, { router: props }, { nats: nats('10.0.0.1') }, { root: '/var/vcap', index: 0 });
  t.deepEqual(checkComponentConfigs(render({ port: 'eighty' }), '/var/vcap/jobs/router'), ['job router: router.yml:13 port: expected a number, got string']);
  t.deepEqual(checkComponentConfigs(render({ drain_wait_s: 60 }), '/var/vcap/jobs/router'), [
    'job router: router.yml:16 drain_wait_s: must be shorter than drain_timeout_s (30), which bounds the whole drain',
  ]);
});

test('checkComponentConfigs checks the service nodes and gateways with their own schemas', (t) => {
  const node = job('redis-node');
  const renderNode = (props: Record<string, unknown>) => renderJob(node.spec, node.templates, { node: props }, { nats: nats('10.0.0.1') }, { root: '/var/vcap', index: 0, address: '10.0.0.9' });
  t.deepEqual(checkComponentConfigs(renderNode({}), '/var/vcap/jobs/redis-node'), []);
  const bad = checkComponentConfigs(renderNode({ plans: { default: { memory_mb: 'lots' } }, port_range: { min: 21000, max: 20000 } }), '/var/vcap/jobs/redis-node');
  t.true(bad.some((p) => /^job redis-node: service-node\.yml:\d+ plans\.default\.memory_mb: expected a number/.test(p)), bad.join('\n'));
  t.true(bad.some((p) => /^job redis-node: service-node\.yml:\d+ port_range\.max: min must not exceed max/.test(p)), bad.join('\n'));
  const g = job('service-gateway');
  const gateway = renderJob(g.spec, g.templates, { gateway: { label: 'gateway', broker: { password: 'pw' }, service: { id: 's' }, plans: [] } }, { nats: nats('10.0.0.1') }, { root: '/var/vcap', index: 0, address: '10.0.0.9' });
  const problems = checkComponentConfigs(gateway, '/var/vcap/jobs/service-gateway');
  t.true(problems.some((p) => p.includes('label: "gateway" is reserved')), problems.join('\n'));
  t.true(problems.some((p) => p.includes('service.description')), problems.join('\n'));
  t.true(problems.some((p) => p.includes('plans: expected at least one plan')), problems.join('\n'));
});

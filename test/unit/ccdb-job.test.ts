// The ccdb release job: its spec loads with the release's jobs, its template renders a config
// the component accepts (the persistent disk's dir, numbers kept numbers, the one database),
// its link shares what a controller needs, and a password is required.
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseConfig } from '../../kernel/component/mod.ts';
import { ccdbConfig } from '../../kernel/ccdb/config.ts';
import { loadJobs, RenderError, renderJob } from '../../orchestrator/release/mod.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const ccdb = loadJobs(join(repo, 'kernel/jobs'), repo, new Set(['ingot', 'nats-server'])).find((j) => j.name === 'ccdb')!;
const nats = {
  instances: [{ name: 'nats', index: 0, address: '10.244.0.2', az: 'z1' }],
  properties: { nats: { port: 4222, user: 'kernel', password: 'natspw' } },
};
const render = (props: Record<string, unknown>) => renderJob(ccdb.spec, ccdb.templates, { ccdb: props }, { nats }, { root: '/var/vcap', index: 0, address: '10.244.0.7' });

test('the spec: one process of `ingot component ccdb`, ready on its /healthz, postgresql installed, a ccdb link', (t) => {
  t.truthy(ccdb, 'kernel/jobs/ccdb loads');
  t.deepEqual(ccdb.spec.debian_packages, ['postgresql']);
  const [proc] = ccdb.spec.processes;
  t.deepEqual(proc!.args, ['component', 'ccdb', '--config', '((spec:job_dir))/config/ccdb.yml']);
  t.is(proc!.ready?.http, 'http://127.0.0.1:((p:ccdb.status.port))/healthz');
  t.deepEqual(ccdb.spec.provides, [{ name: 'ccdb', type: 'ccdb', properties: ['ccdb.port', 'ccdb.database', 'ccdb.user', 'ccdb.password'] }]);
  t.deepEqual(ccdb.spec.consumes, [{ name: 'nats', type: 'nats', optional: false }]);
});

test('rendered with its defaults and a password, the config is one the component accepts', (t) => {
  const job = render({ password: 'gen-pw' });
  const config = parseConfig(job.files['config/ccdb.yml']!, 'ccdb.yml', ccdbConfig);
  t.is(config.dir, '/var/vcap/store/ccdb');
  t.is(config.port, 5432);
  t.is(config.host, '0.0.0.0');
  t.is(config.status.port, 9027);
  t.is(config.drain_timeout_s, 30);
  t.is(config.local_ip, '10.244.0.7');
  t.deepEqual(config.nats.servers, ['nats://10.244.0.2:4222']);
  t.deepEqual(config.databases, [{ name: 'ccdb', user: 'cloud_controller', password: 'gen-pw' }]);
  const spec = JSON.parse(job.files['spec.json']!) as { processes: Array<{ ready: { http: string }; stop_timeout_s: unknown }> };
  t.is(spec.processes[0]!.ready.http, 'http://127.0.0.1:9027/healthz');
  t.is(spec.processes[0]!.stop_timeout_s, 30);
});

test('properties reach the config with their types', (t) => {
  const job = render({ password: 'p', port: 6432, database: 'cc', user: 'ccadmin', postgres: { settings: { max_connections: 300 } }, status: { port: 9100, user: 'u', password: 's' } });
  const config = parseConfig(job.files['config/ccdb.yml']!, 'ccdb.yml', ccdbConfig);
  t.is(config.port, 6432);
  t.deepEqual(config.postgres.settings, { max_connections: 300 });
  t.deepEqual(config.databases, [{ name: 'cc', user: 'ccadmin', password: 'p' }]);
  t.deepEqual(config.status, { host: '0.0.0.0', port: 9100, user: 'u', password: 's' });
});

test('without a password the job does not render', (t) => {
  const err = t.throws(() => render({}), { instanceOf: RenderError });
  t.true(err!.problems.some((p) => p.includes('missing required property ccdb.password')), err!.problems.join('\n'));
});

// A process's stop_timeout_s from job spec to the agent: a number or a whole placeholder in
// spec.yml (anything else refused with its line), rendered into spec.json as the property's
// number (a property that renders a non-number is refused, naming the process and the value),
// and declared by every kernel job whose process is a component with a drain bound.
import test from 'ava';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { JobSpecFile } from '../../orchestrator/agent/protocol.ts';
import { loadJobs, parseJobSpec, ReleaseError, RenderError, renderJob } from '../../orchestrator/release/mod.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));

const specWith = (stopTimeout: string) => `
name: web
templates: {web.yml: config/web.yml}
processes:
  - name: web
    executable: /bin/web
    stop_timeout_s: ${stopTimeout}
properties:
  web.drain_timeout_s: {description: drain bound, default: 30}
`;

const renderedProcess = (stopTimeout: string, properties: Record<string, unknown> = {}) =>
  JobSpecFile.parse(JSON.parse(renderJob(parseJobSpec(specWith(stopTimeout), 'spec.yml'), { 'web.yml': 'x: 1\n' }, properties, {}).files['spec.json']!)).processes[0]!;

test('stop_timeout_s is a positive number or a whole placeholder; anything else is refused with its line', (t) => {
  t.is(parseJobSpec(specWith('12.5'), 'spec.yml').processes[0]!.stop_timeout_s, 12.5);
  t.is(parseJobSpec(specWith('((p:web.drain_timeout_s))'), 'spec.yml').processes[0]!.stop_timeout_s, '((p:web.drain_timeout_s))');
  for (const bad of ['0', '-3', 'soon', '"((p:web.drain_timeout_s))s"', 'true', '[30]']) {
    const err = t.throws(() => parseJobSpec(specWith(bad), 'spec.yml'), { instanceOf: ReleaseError }, bad);
    t.deepEqual(err!.problems, ['spec.yml:7 processes[0].stop_timeout_s: expected a positive number of seconds or a whole placeholder such as ((p:job.drain_timeout_s))'], bad);
  }
});

test('a whole placeholder renders the property\'s number into spec.json, where the agent reads it', (t) => {
  t.is(renderedProcess('((p:web.drain_timeout_s))').stop_timeout_s, 30);
  t.is(renderedProcess('((p:web.drain_timeout_s))', { web: { drain_timeout_s: 7 } }).stop_timeout_s, 7);
  t.is(renderedProcess('4').stop_timeout_s, 4);
  t.false('stop_timeout_s' in JobSpecFile.parse({ processes: [{ name: 'web', executable: '/bin/web' }] }).processes[0]!);
});

test('a property that renders a non-number is refused, naming the process and the value', (t) => {
  const err = t.throws(() => renderedProcess('((p:web.drain_timeout_s))', { web: { drain_timeout_s: 'thirty' } }), { instanceOf: RenderError });
  t.deepEqual(err!.problems, ['job web, processes[0] (web), at stop_timeout_s: expected a number of seconds (rendered "thirty")']);
  const negative = t.throws(() => renderedProcess('((p:web.drain_timeout_s))', { web: { drain_timeout_s: -1 } }), { instanceOf: RenderError });
  t.deepEqual(negative!.problems, ['job web, processes[0] (web), at stop_timeout_s: expected a positive number of seconds (rendered -1)']);
});

test('every kernel component job gives the agent its config\'s drain bound as the process\'s stop_timeout_s', (t) => {
  const jobs = loadJobs(join(repo, 'kernel/jobs'), repo, new Set(['ingot', 'nats-server']));
  const components = jobs.filter((j) => j.spec.processes.some((p) => p.args.includes('component')));
  for (const name of ['cloud-controller', 'dea', 'health-manager', 'mysql-node', 'postgresql-node', 'rabbitmq-node', 'redis-node', 'router', 'service-gateway']) {
    t.true(components.some((j) => j.name === name), `${name} runs an ingot component`);
  }
  for (const job of components) {
    const [template] = Object.values(job.templates);
    // The config's drain_timeout_s and the process's stop_timeout_s are the same placeholder.
    const configured = (parse(template!) as { drain_timeout_s?: unknown }).drain_timeout_s;
    t.is(typeof configured, 'string', job.name);
    t.deepEqual(job.spec.processes.map((p) => p.stop_timeout_s), [configured], job.name);
    const property = /^\(\(p:(.+)\)\)$/.exec(String(configured))![1]!;
    t.is(job.spec.properties[property]?.default, 30, `${job.name}: ${property} defaults to 30`);
  }
});

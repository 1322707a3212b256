// What a job's spec.json asks of the agent beyond starting processes: a readiness check (a
// process is 'starting' — its job not running — until its health endpoint answers 2xx; alive is
// not ready, and a deploy's watch relies on it) and an errand (a command run_errand runs to its
// end, with the job's environment).
import anyTest, { type TestFn } from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startAgentHarness, stopAgentHarness, type AgentHarness } from '../helpers/agent-harness.ts';
import { waitFor } from '../helpers/agent-process.ts';
import { nodeProcessJob, publishSpec } from '../helpers/agent-fixtures.ts';
import { freePort } from '../helpers/ports.ts';
import { scratchDir } from '../helpers/tmp.ts';
import type { AgentState } from '../../orchestrator/agent/protocol.ts';

const AGENT_ID = 'agent-ready-1';

const test = anyTest as TestFn<AgentHarness>;

test.before(async (t) => {
  t.context = await startAgentHarness(AGENT_ID, { heartbeat_interval_ms: 200 });
});

test.after.always(async (t) => {
  await stopAgentHarness(t.context ?? {});
});

test.serial('a process is starting until its health endpoint answers 2xx, then running', async (t) => {
  t.timeout(60_000);
  const { director, blobs } = t.context;
  const port = await freePort();
  const flag = join(scratchDir('agent-ready'), 'healthy');
  // Serves 503 until the flag file exists: alive and listening, but not ready.
  const script = `
const { existsSync } = require('node:fs');
require('node:http').createServer((req, res) => { res.statusCode = existsSync(${JSON.stringify(flag)}) ? 200 : 503; res.end(); }).listen(${port}, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
`;
  const spec = JSON.stringify({ name: 'slow', processes: [{ name: 'slow', executable: process.execPath, args: ['main.cjs'], ready: { http: `http://127.0.0.1:${port}/healthz` } }] });
  const applied = await publishSpec(blobs, { name: 'slow', jobs: [nodeProcessJob('slow', script, { 'spec.json': spec })] });
  t.deepEqual(await director.task(AGENT_ID, 'apply', [applied]), { value: 'applied' });
  t.is(await director.call(AGENT_ID, 'start'), 'started');

  // Once it answers 503 the probe has reached it, and several rounds later it is still starting.
  await waitFor('the process to answer 503', async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status === 503);
  for (let i = 0; i < 4; i++) {
    const s = (await director.call(AGENT_ID, 'get_state')) as AgentState;
    t.like(s.processes[0], { name: 'slow', state: 'starting' });
    t.not(s.job_state, 'running');
    await new Promise((resolve) => setTimeout(resolve, 300));
  }

  await writeFile(flag, '');
  const s = await waitFor('the process to be running', async () => {
    const s = (await director.call(AGENT_ID, 'get_state')) as AgentState;
    return s.job_state === 'running' ? s : undefined;
  });
  t.like(s.processes[0], { name: 'slow', state: 'running', restarts: 0 });
  t.deepEqual(await director.task(AGENT_ID, 'stop'), { value: 'stopped' });
});

test.serial('a readiness check that is not an http URL is refused at apply, naming it', async (t) => {
  const { director, blobs } = t.context;
  const spec = JSON.stringify({ name: 'bad', processes: [{ name: 'bad', executable: process.execPath, args: ['main.cjs'], ready: { http: 'ftp://127.0.0.1/x' } }] });
  const applied = await publishSpec(blobs, { name: 'bad', jobs: [nodeProcessJob('bad', 'setInterval(() => {}, 1000)', { 'spec.json': spec })] });
  const r = (await director.task(AGENT_ID, 'apply', [applied])) as { exception?: { message: string } };
  t.truthy(r.exception, JSON.stringify(r));
  t.regex(r.exception!.message, /ready/);
});

test.serial('run_errand runs the named job\'s errand from its spec, with the job\'s environment, and reports its exit code', async (t) => {
  const { director, blobs } = t.context;
  const errandJs = `console.log(process.env.GREETING, process.argv.slice(2).join(' '), require('node:path').basename(process.env.INGOT_JOB_DIR)); console.error('to stderr'); process.exit(3);`;
  const spec = JSON.stringify({ name: 'probe', processes: [], errand: { executable: process.execPath, args: ['errand.cjs', 'one', 'two'], env: { GREETING: 'hello' } } });
  const applied = await publishSpec(blobs, { name: 'errands', jobs: [nodeProcessJob('probe', '', { 'spec.json': spec, 'errand.cjs': errandJs })] });
  t.deepEqual(await director.task(AGENT_ID, 'apply', [applied]), { value: 'applied' });
  t.deepEqual(await director.task(AGENT_ID, 'run_errand', ['probe']), { value: { exit_code: 3, stdout: 'hello one two probe\n', stderr: 'to stderr\n' } });
  // Without a name, the first job that has an errand.
  t.like(await director.task(AGENT_ID, 'run_errand', []), { value: { exit_code: 3 } });
  const unknown = (await director.task(AGENT_ID, 'run_errand', ['nope'])) as { exception?: { message: string } };
  t.regex(unknown.exception?.message ?? '', /no job nope here \(jobs: probe\)/);
});

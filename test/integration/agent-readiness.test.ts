// A process with a readiness check is 'starting' — and its job not running — until its health
// endpoint answers 2xx; alive is not ready. What a deploy's watch relies on to catch a job
// that never serves.
import anyTest, { type TestFn } from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startBlobServer, type BlobServer } from '../helpers/blob-server.ts';
import { AgentMbus } from '../helpers/agent-mbus.ts';
import { DirectorClient, startAgentProcess, waitFor, type StartedAgent } from '../helpers/agent-process.ts';
import { nodeProcessJob, publishSpec } from '../helpers/agent-fixtures.ts';
import { freePort } from '../helpers/ports.ts';
import { scratchDir } from '../helpers/tmp.ts';
import type { AgentState } from '../../orchestrator/agent/protocol.ts';

const AGENT_ID = 'agent-ready-1';

const test = anyTest as TestFn<{ mbus: AgentMbus; blobs: BlobServer; agent: StartedAgent; director: DirectorClient }>;

test.before(async (t) => {
  const mbus = await AgentMbus.start([AGENT_ID]);
  const blobs = await startBlobServer();
  const cred = mbus.agent(AGENT_ID);
  const agent = startAgentProcess({
    agent_id: AGENT_ID,
    mbus: { url: mbus.url, user: cred.user, password: cred.password },
    blobstore: { url: blobs.url('') },
    agent: { heartbeat_interval_ms: 200 },
  });
  const director = await DirectorClient.connect(mbus.url, mbus.director.user, mbus.director.password);
  t.context = { mbus, blobs, agent, director };
  await waitFor('the agent to answer ping', async () => (await director.call(AGENT_ID, 'ping').catch(() => undefined)) === 'pong', 20_000);
});

test.after.always(async (t) => {
  await t.context.agent?.kill();
  await t.context.director?.close().catch(() => undefined);
  await t.context.blobs?.close();
  await t.context.mbus?.stop();
});

test('a process is starting until its health endpoint answers 2xx, then running', async (t) => {
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

test('a readiness check that is not an http URL is refused at apply, naming it', async (t) => {
  const { director, blobs } = t.context;
  const spec = JSON.stringify({ name: 'bad', processes: [{ name: 'bad', executable: process.execPath, args: ['main.cjs'], ready: { http: 'ftp://127.0.0.1/x' } }] });
  const applied = await publishSpec(blobs, { name: 'bad', jobs: [nodeProcessJob('bad', 'setInterval(() => {}, 1000)', { 'spec.json': spec })] });
  const r = (await director.task(AGENT_ID, 'apply', [applied])) as { exception?: { message: string } };
  t.truthy(r.exception, JSON.stringify(r));
  t.regex(r.exception!.message, /ready/);
});

// The agent is its VM's monit: restarted on the same root, it brings back the jobs that were
// started (and not those that were stopped), without the director asking.
import anyTest, { type TestFn } from 'ava';
import { startBlobServer, type BlobServer } from '../helpers/blob-server.ts';
import { AgentMbus } from '../helpers/agent-mbus.ts';
import { DirectorClient, startAgentProcess, waitFor, type StartedAgent } from '../helpers/agent-process.ts';
import { HTTP_SERVER_JS, nodeProcessJob, publishSpec } from '../helpers/agent-fixtures.ts';
import { freePort } from '../helpers/ports.ts';
import type { AgentState } from '../../orchestrator/agent/protocol.ts';

const AGENT_ID = 'agent-restart-1';

const test = anyTest as TestFn<{ mbus: AgentMbus; blobs: BlobServer; agents: StartedAgent[]; director: DirectorClient; settings: Record<string, unknown> }>;

test.before(async (t) => {
  const mbus = await AgentMbus.start([AGENT_ID]);
  const blobs = await startBlobServer();
  const cred = mbus.agent(AGENT_ID);
  const settings = {
    agent_id: AGENT_ID,
    mbus: { url: mbus.url, user: cred.user, password: cred.password },
    blobstore: { url: blobs.url('') },
    agent: { heartbeat_interval_ms: 300, restart_base_ms: 100, stop_grace_ms: 2000 },
  };
  const director = await DirectorClient.connect(mbus.url, mbus.director.user, mbus.director.password);
  t.context = { mbus, blobs, agents: [], director, settings };
});

test.after.always(async (t) => {
  for (const a of t.context.agents ?? []) await a.kill();
  await t.context.director?.close().catch(() => undefined);
  await t.context.blobs?.close();
  await t.context.mbus?.stop();
});

async function get(port: number): Promise<string | undefined> {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/`)).text();
  } catch {
    return undefined;
  }
}

test('a restarted agent restarts the jobs that were running', async (t) => {
  const { director, blobs, settings } = t.context;
  const port = await freePort();
  const first = startAgentProcess(settings);
  t.context.agents.push(first);
  await waitFor('the agent to answer ping', async () => (await director.call(AGENT_ID, 'ping').catch(() => undefined)) === 'pong', 20_000);
  const spec = await publishSpec(blobs, { name: 'web', jobs: [nodeProcessJob('web', HTTP_SERVER_JS, {}, { port, greeting: 'again' })] });
  t.deepEqual(await director.task(AGENT_ID, 'apply', [spec]), { value: 'applied' });
  t.is(await director.call(AGENT_ID, 'start'), 'started');
  t.is(await waitFor('the job to serve', () => get(port)), 'hello from again');

  await first.kill();
  t.is(await get(port), undefined, 'the job is gone with its agent');

  const second = startAgentProcess(settings, { root: first.root });
  t.context.agents.push(second);
  t.is(await waitFor('the job to serve after the agent restarted', () => get(port), 20_000), 'hello from again');
  const s = (await director.call(AGENT_ID, 'get_state')) as AgentState;
  t.like(s, { job: { name: 'web' }, job_state: 'running' });
});

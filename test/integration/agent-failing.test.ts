// A job whose process exits at once: the agent restarts it with backoff, alerts, and reports
// the job failing after repeated crashes; a stop then stops the restarts.
import anyTest, { type TestFn } from 'ava';
import { connect } from 'nats';
import { startAgentHarness, stopAgentHarness, type AgentHarness } from '../helpers/agent-harness.ts';
import { waitFor } from '../helpers/agent-process.ts';
import { nodeProcessJob, publishSpec } from '../helpers/agent-fixtures.ts';
import type { AgentState } from '../../orchestrator/agent/protocol.ts';

const AGENT_ID = 'agent-fail-1';

const test = anyTest as TestFn<AgentHarness>;

test.before(async (t) => {
  t.context = await startAgentHarness(AGENT_ID, { heartbeat_interval_ms: 200, restart_base_ms: 20, restart_max_ms: 200, failing_crashes: 5, failing_window_ms: 30_000 });
});

test.after.always(async (t) => {
  await stopAgentHarness(t.context ?? {});
});

test('a process that keeps exiting makes the job failing, with alerts and heartbeats saying so', async (t) => {
  const { director, blobs, mbus } = t.context;
  const spec = await publishSpec(blobs, { name: 'crashy', jobs: [nodeProcessJob('crashy', 'process.exit(3)')] });
  t.deepEqual(await director.task(AGENT_ID, 'apply', [spec]), { value: 'applied' });

  const nc = await connect({ servers: [mbus.url], user: mbus.director.user, pass: mbus.director.password });
  const titles: string[] = [];
  nc.subscribe(`hm.agent.alert.${AGENT_ID}`, { callback: (_e, m) => titles.push((JSON.parse(new TextDecoder().decode(m.data)) as { title: string }).title) });
  const failingBeat = new Promise<Record<string, unknown>>((resolve) =>
    nc.subscribe(`hm.agent.heartbeat.${AGENT_ID}`, {
      callback: (_e, m) => {
        const hb = JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>;
        if (hb.job_state === 'failing') resolve(hb);
      },
    }),
  );
  await nc.flush();

  t.is(await director.call(AGENT_ID, 'start'), 'started');
  const s = await waitFor('the process to be failing', async () => {
    const s = (await director.call(AGENT_ID, 'get_state')) as AgentState;
    return s.processes[0]?.state === 'failing' ? s : undefined;
  });
  t.is(s.job_state, 'failing');
  t.true(s.processes[0]!.restarts >= 4);
  t.like(await failingBeat, { job: 'crashy', job_state: 'failing', number_of_processes: 1 });
  await waitFor('a failing alert', () => titles.some((x) => /crashy\/crashy - failing/.test(x)));
  t.true(titles.some((x) => /crashy\/crashy \(exit status 3\) - restarting/.test(x)));

  t.deepEqual(await director.task(AGENT_ID, 'stop'), { value: 'stopped' });
  const stopped = (await director.call(AGENT_ID, 'get_state')) as AgentState;
  t.is(stopped.job_state, 'stopped');
  await nc.close();
});

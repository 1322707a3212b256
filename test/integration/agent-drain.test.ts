// The agent's drain and stop as BOSH's are, against a real agent process and mbus: a drain
// (update or shutdown, with or without drain commands) unmonitors first, so a process that exits
// while its job drains (the DEA's evacuation, with the DEA job's own drain command) stays down,
// each job_check_status call sees it gone, and a later start brings it back; a stop gives a
// process its own stop_timeout_s before SIGKILL.
import anyTest, { type TestFn } from 'ava';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Subscription } from 'nats';
import { startAgentHarness, stopAgentHarness, type AgentHarness } from '../helpers/agent-harness.ts';
import { waitFor } from '../helpers/agent-process.ts';
import { nodeProcessJob, publishSpec } from '../helpers/agent-fixtures.ts';
import { scratchDir } from '../helpers/tmp.ts';
import type { AgentState } from '../../orchestrator/agent/protocol.ts';
import { parseJobSpec } from '../../orchestrator/release/job-spec.ts';

const AGENT_ID = 'agent-drain-1';
const RESTART_BASE_MS = 100;
const STOP_GRACE_MS = 200;

const test = anyTest as TestFn<AgentHarness & { dir: string }>;

test.before(async (t) => {
  t.context = { ...(await startAgentHarness(AGENT_ID, { heartbeat_interval_ms: 300, restart_base_ms: RESTART_BASE_MS, restart_max_ms: 500, stop_grace_ms: STOP_GRACE_MS })), dir: scratchDir('agent-drain') };
});

test.after.always(async (t) => {
  await stopAgentHarness(t.context ?? {});
  if (t.context?.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

const state = async (t: { context: AgentHarness }) => (await t.context.director.call(AGENT_ID, 'get_state')) as AgentState;
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : []);
const printed = (t: { context: AgentHarness }, job: string, what: string) => () => lines(join(t.context.agent.root, 'sys/log', job, `${job}.stdout.log`)).includes(what);

/** The one bounded wait, a few hundred ms past the restart delay: `check` holds for every state seen. */
async function throughoutStaysDown(t: { context: AgentHarness }, check: (s: AgentState) => void): Promise<void> {
  const until = Date.now() + RESTART_BASE_MS + 400;
  while (Date.now() < until) {
    check(await state(t));
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The DEA job's drain command as kernel/jobs/dea/spec.yml has it (its `sh -c` script). */
function deaDrainScript(): string {
  const file = fileURLToPath(new URL('../../kernel/jobs/dea/spec.yml', import.meta.url));
  const args = parseJobSpec(readFileSync(file, 'utf8'), file).drain!.args;
  return args[args.indexOf('-c') + 1]!;
}

test.serial('a drain unmonitors: the process its drain makes exit stays down, status calls see it gone, start brings it back', async (t) => {
  t.timeout(60_000);
  const { director, blobs, dir } = t.context;
  const starts = join(dir, 'starts.log');
  const calls = join(dir, 'drain-calls.log');
  // Evacuates on SIGUSR2 as the DEA does: exits a moment later, on its own.
  const dea = `
require('node:fs').appendFileSync(${JSON.stringify(starts)}, process.pid + '\\n');
process.on('SIGUSR2', () => setTimeout(() => process.exit(0), 200));
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 1000);
console.log('up');
`;
  // The DEA's own drain command, each call recorded with the pids the agent gave it.
  const drain = { executable: '/bin/sh', args: ['-c', `echo "$1 [$INGOT_JOB_PIDS]" >> ${calls}; ${deaDrainScript()}`, 'dea-drain'] };
  const spec = JSON.stringify({ name: 'dea', processes: [{ name: 'dea', executable: process.execPath, args: ['main.cjs'] }], drain });
  const applied = await publishSpec(blobs, { name: 'dea', jobs: [nodeProcessJob('dea', dea, { 'spec.json': spec })] });
  t.deepEqual(await director.task(AGENT_ID, 'apply', [applied]), { value: 'applied' });
  t.is(await director.call(AGENT_ID, 'start'), 'started');
  await waitFor('the process to be up', printed(t, 'dea', 'up'));
  const pid = (await state(t)).processes[0]!.pid!;

  const alerts: string[] = [];
  const sub: Subscription = director.nc.subscribe(`hm.agent.alert.${AGENT_ID}`, { callback: (_e, m) => alerts.push(new TextDecoder().decode(m.data)) });
  t.teardown(() => sub.unsubscribe());
  // -1 while it evacuates (ask again in 1 s), then 0 once it has exited and the agent no longer lists it.
  const drained = await director.task(AGENT_ID, 'drain', ['update']);
  const asked = lines(calls);
  t.deepEqual(asked, [`job_changed [dea=${pid}]`, ...Array<string>(Math.max(0, asked.length - 2)).fill(`job_check_status [dea=${pid}]`), 'job_check_status []']);
  t.deepEqual(drained, { value: asked.length - 1 });

  // It stays down well past the restart delay: no new process, no pid, no crash alert.
  await throughoutStaysDown(t, (s) => {
    t.like(s.processes[0], { name: 'dea', state: 'stopped', restarts: 0 });
    t.is(s.processes[0]!.pid, undefined);
    t.is(s.job_state, 'stopped');
  });
  t.deepEqual(lines(starts), [String(pid)]);
  await director.nc.flush();
  t.deepEqual(alerts, []);
  t.regex(t.context.agent.output(), /process exited while its job drains/);

  // start monitors again: the process comes back, and a crash is restarted once more.
  t.is(await director.call(AGENT_ID, 'start'), 'started');
  await waitFor('the process back after start', () => lines(starts).length === 2);
  const back = Number(lines(starts)[1]);
  t.is((await state(t)).processes[0]!.pid, back);
  process.kill(back, 'SIGKILL');
  await waitFor('a crash restarted again', async () => {
    const p = (await state(t)).processes[0]!;
    return p.pid !== undefined && p.pid !== back && p.restarts === 1 && lines(starts).length === 3;
  });
  t.deepEqual(await director.task(AGENT_ID, 'stop'), { value: 'stopped' });
});

test.serial('a shutdown drain unmonitors a job with no drain command too; a status drain does not', async (t) => {
  t.timeout(60_000);
  const { director, blobs } = t.context;
  const applied = await publishSpec(blobs, { name: 'plain', jobs: [nodeProcessJob('plain', "process.on('SIGTERM', () => process.exit(0));\nsetInterval(() => {}, 1000);")] });
  t.deepEqual(await director.task(AGENT_ID, 'apply', [applied]), { value: 'applied' });
  t.is(await director.call(AGENT_ID, 'start'), 'started');
  const first = await waitFor('the process to run', async () => (await state(t)).processes[0]!.pid);

  t.deepEqual(await director.task(AGENT_ID, 'drain', ['status']), { value: 0 });
  process.kill(first, 'SIGTERM');
  const second = await waitFor('the process restarted (a status drain leaves it monitored)', async () => {
    const p = (await state(t)).processes[0]!;
    return p.pid !== undefined && p.pid !== first && p.pid;
  });

  t.deepEqual(await director.task(AGENT_ID, 'drain', ['shutdown']), { value: 0 });
  process.kill(second, 'SIGTERM');
  await waitFor('the process to read stopped', async () => (await state(t)).processes[0]!.state === 'stopped');
  await throughoutStaysDown(t, (s) => t.like(s.processes[0], { state: 'stopped', restarts: 1 }));
  t.deepEqual(await director.task(AGENT_ID, 'stop'), { value: 'stopped' });
});

test.serial('stop gives a process its stop_timeout_s: one that takes longer than the grace to stop is not killed', async (t) => {
  t.timeout(60_000);
  const { director, blobs, dir } = t.context;
  // Stops 600 ms after SIGTERM (three times the grace), leaving a marker when it gets there.
  const slow = (name: string) => `
process.on('SIGTERM', () => setTimeout(() => { require('node:fs').writeFileSync(${JSON.stringify(join(dir, `${name}.stopped`))}, ''); process.exit(0); }, 600));
setInterval(() => {}, 1000);
console.log('up');
`;
  const job = (name: string, stopTimeout: Record<string, number>) =>
    nodeProcessJob(name, slow(name), { 'spec.json': JSON.stringify({ name, processes: [{ name, executable: process.execPath, args: ['main.cjs'], ...stopTimeout }] }) });
  const applied = await publishSpec(blobs, { name: 'slow', jobs: [job('patient', { stop_timeout_s: 1 }), job('hasty', {})] });
  t.deepEqual(await director.task(AGENT_ID, 'apply', [applied]), { value: 'applied' });
  t.is(await director.call(AGENT_ID, 'start'), 'started');
  for (const name of ['patient', 'hasty']) await waitFor(`${name} to listen for SIGTERM`, printed(t, name, 'up'));

  const started = Date.now();
  t.deepEqual(await director.task(AGENT_ID, 'stop'), { value: 'stopped' });
  const took = Date.now() - started;
  t.true(took >= 600, `stop took ${took} ms`);
  t.true(existsSync(join(dir, 'patient.stopped')), 'the process with stop_timeout_s 1 stopped by itself');
  t.false(existsSync(join(dir, 'hasty.stopped')), `the process without one was killed after the ${STOP_GRACE_MS} ms grace`);
  const kills = t.context.agent
    .output()
    .split('\n')
    .filter((l) => l.includes('still running after SIGTERM'))
    .map((l) => JSON.parse(l) as { job: string; after_ms: number });
  t.deepEqual(kills.map((k) => [k.job, k.after_ms]), [['hasty', STOP_GRACE_MS]]);
});

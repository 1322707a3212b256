// The supervisor with tiny sh children: unmonitor (BOSH's `monit unmonitor` before a drain)
// leaves a process that exits down, without a crash, until start monitors again; stop gives a
// process its own stop_timeout_s (and the margin) before SIGKILL, where that exceeds the grace.
import anyTest, { type TestFn } from 'ava';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { killAfterMs, STOP_TIMEOUT_MARGIN_MS, Supervisor, type SupervisorEvent } from '../../orchestrator/agent/supervisor.ts';
import type { ProcessDef } from '../../orchestrator/agent/protocol.ts';
import { waitFor } from '../helpers/agent-process.ts';
import { scratchDir } from '../helpers/tmp.ts';

const RESTART_BASE_MS = 50;
const GRACE_MS = 100;

const test = anyTest as TestFn<{ dir: string; supervisor: Supervisor; events: SupervisorEvent[] }>;

test.beforeEach((t) => {
  const dir = scratchDir('agent-supervisor');
  const events: SupervisorEvent[] = [];
  const supervisor = new Supervisor(join(dir, 'log'), { baseMs: RESTART_BASE_MS, maxMs: 200, failingCrashes: 5, windowMs: 60_000 }, GRACE_MS, (e) => events.push(e));
  t.context = { dir, supervisor, events };
});

test.afterEach.always(async (t) => {
  await t.context.supervisor.stop();
  rmSync(t.context.dir, { recursive: true, force: true });
});

/** A sh process that prints `up` once its traps are set; `onTerm` runs on SIGTERM. */
function shProcess(name: string, onTerm: string, extra: Partial<ProcessDef> = {}): ProcessDef {
  return { name, executable: '/bin/sh', args: ['-c', `trap '${onTerm}' TERM; echo up; while :; do sleep 0.02; done`], env: {}, ...extra };
}

async function loadAndStart(t: { context: { dir: string; supervisor: Supervisor } }, defs: ProcessDef[]): Promise<Map<string, number>> {
  const { supervisor, dir } = t.context;
  await supervisor.load(defs.map((def) => ({ job: 'job', def, cwd: dir, env: {} })));
  supervisor.start();
  const pids = new Map<string, number>();
  for (const def of defs) {
    await waitFor(`${def.name} to be up`, () => existsSync(join(dir, 'log/job', `${def.name}.stdout.log`)) && readFileSync(join(dir, 'log/job', `${def.name}.stdout.log`), 'utf8').includes('up'), 2000);
    pids.set(def.name, supervisor.status().find((p) => p.name === def.name)!.pid!);
  }
  return pids;
}

const pidOf = (s: Supervisor, name: string) => s.status().find((p) => p.name === name)?.pid;

test('the SIGKILL waits for the longer of the grace and a process\'s own stop bound plus the margin', (t) => {
  t.is(killAfterMs(10_000, {}), 10_000);
  t.is(killAfterMs(10_000, { stop_timeout_s: 30 }), 30_000 + STOP_TIMEOUT_MARGIN_MS);
  t.is(killAfterMs(60_000, { stop_timeout_s: 1 }), 60_000);
  t.is(killAfterMs(200, { stop_timeout_s: 0.5 }), 500 + STOP_TIMEOUT_MARGIN_MS);
});

test('monitored, a process that exits is restarted; unmonitored, it stays stopped without a crash until start', async (t) => {
  const { supervisor, events } = t.context;
  const pids = await loadAndStart(t, [shProcess('watched', 'exit 0')]);
  const first = pids.get('watched')!;

  // Monitored: the exit is a crash, and a new process follows after the base delay.
  process.kill(first, 'SIGTERM');
  const second = await waitFor('a restarted process', () => {
    const pid = pidOf(supervisor, 'watched');
    return pid !== undefined && pid !== first && pid;
  }, 2000);
  t.like(events[0], { type: 'crashed', process: 'watched' });

  supervisor.unmonitor();
  events.length = 0;
  process.kill(second, 'SIGTERM');
  await waitFor('the process to read stopped', () => supervisor.status()[0]!.state === 'stopped', 2000);
  // It stays down past several restart delays: no pid, no restart, no crash.
  const until = Date.now() + 6 * RESTART_BASE_MS;
  while (Date.now() < until) {
    t.like(supervisor.status()[0], { state: 'stopped', restarts: 1 });
    t.is(pidOf(supervisor, 'watched'), undefined);
    await new Promise((r) => setTimeout(r, 20));
  }
  t.deepEqual(events, [{ type: 'exited', job: 'job', process: 'watched', exit: 'exit status 0' }]);

  supervisor.start();
  const third = await waitFor('the process back after start', () => pidOf(supervisor, 'watched'), 2000);
  t.not(third, second);
  t.is(supervisor.status()[0]!.state, 'running');
});

test('unmonitor leaves running processes running and cancels a pending restart', async (t) => {
  const { supervisor, events } = t.context;
  const longDelay = new Supervisor(join(t.context.dir, 'log'), { baseMs: 60_000, maxMs: 60_000, failingCrashes: 5, windowMs: 60_000 }, GRACE_MS, (e) => events.push(e));
  t.teardown(() => longDelay.stop());
  await longDelay.load([{ job: 'job', def: shProcess('crasher', 'exit 3'), cwd: t.context.dir, env: {} }]);
  longDelay.start();
  await waitFor('the crasher to be up', () => existsSync(join(t.context.dir, 'log/job/crasher.stdout.log')) && readFileSync(join(t.context.dir, 'log/job/crasher.stdout.log'), 'utf8').includes('up'), 2000);
  process.kill(pidOf(longDelay, 'crasher')!, 'SIGTERM');
  await waitFor('the crash', () => events.some((e) => e.type === 'crashed'), 2000);
  t.is(longDelay.status()[0]!.state, 'starting');
  longDelay.unmonitor();
  t.is(longDelay.status()[0]!.state, 'stopped');

  const pids = await loadAndStart(t, [shProcess('steady', 'exit 0')]);
  supervisor.unmonitor();
  t.like(supervisor.status()[0], { state: 'running', pid: pids.get('steady') });
  // stop still stops what runs.
  await supervisor.stop();
  t.throws(() => process.kill(pids.get('steady')!, 0));
});

test('stop waits out a process\'s own stop bound instead of killing it after the grace', async (t) => {
  const { supervisor, events, dir } = t.context;
  // Each takes 300 ms to stop after SIGTERM (more than the 100 ms grace), then leaves a marker.
  const slowStop = (name: string) => `sleep 0.3; touch ${join(dir, name)}; exit 0`;
  const pids = await loadAndStart(t, [shProcess('patient', slowStop('patient'), { stop_timeout_s: 0.5 }), shProcess('hasty', slowStop('hasty'))]);
  const started = Date.now();
  await supervisor.stop();
  const took = Date.now() - started;
  t.true(existsSync(join(dir, 'patient')), 'the process with a stop bound finished its own stop');
  t.false(existsSync(join(dir, 'hasty')), 'the process without one was killed after the grace');
  t.true(took >= 300 && took < 300 + STOP_TIMEOUT_MARGIN_MS, `stop took ${took} ms`);
  t.deepEqual(events, [{ type: 'killed', job: 'job', process: 'hasty', afterMs: GRACE_MS }]);
  for (const pid of pids.values()) t.throws(() => process.kill(pid, 0));
});

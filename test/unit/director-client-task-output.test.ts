// Rendering a director task's events as BOSH does (orchestrator/client/task-output.ts): a line
// per step as it ends with its start time and duration, `failed: <error>`, the TTY status line
// and the closing summary.
import test from 'ava';
import type { Task, TaskEvent } from '../../orchestrator/client/director-types.ts';
import { formatClock, formatDate, formatDuration, TaskOutput, TaskOutputWriter } from '../../orchestrator/client/task-output.ts';

const UTC = { timeZone: 'UTC' };
// 2026-11-26T10:41:25Z
const T0 = Date.UTC(2026, 10, 26, 10, 41, 25) / 1000;

function ev(over: Partial<TaskEvent>): TaskEvent {
  return { time: T0, stage: 'Updating instance', task: 'router/0 (canary)', index: 1, total: 2, state: 'started', progress: 0, ...over };
}

function task(over: Partial<Task>): Task {
  return { id: 12, state: 'done', type: 'deploy', description: 'deploy', deployment: 'ingot', user: 'admin', result: 'ok', started_at: '2026-11-26T10:41:25.000Z', ended_at: '2026-11-26T10:41:30.500Z', timestamp: T0, ...over };
}

test('durations and clocks read like BOSH', (t) => {
  t.is(formatDuration(0), '00:00:00');
  t.is(formatDuration(3), '00:00:03');
  t.is(formatDuration(3725), '01:02:05');
  t.is(formatDuration(-4), '00:00:00');
  t.is(formatClock(T0, UTC), '10:41:25');
  t.is(formatDate(T0, UTC), 'Thu Nov 26 10:41:25 UTC 2026');
});

test('a step is one line when it ends: its start time, its label, its duration', (t) => {
  const o = new TaskOutput(12, UTC);
  t.deepEqual(o.event(ev({})), []);
  t.deepEqual(o.event(ev({ state: 'in_progress', time: T0 + 1, progress: 50 })), []);
  t.deepEqual(o.event(ev({ state: 'finished', time: T0 + 3, progress: 100 })), ['Task 12 | 10:41:25 | Updating instance router/0 (canary) (00:00:03)']);
});

test('a failed step says so with its error', (t) => {
  const o = new TaskOutput(12, UTC);
  o.event(ev({ task: 'router/1', index: 2 }));
  t.deepEqual(o.event(ev({ task: 'router/1', index: 2, state: 'failed', time: T0 + 2, data: { error: 'the job did not start' } })), [
    'Task 12 | 10:41:25 | Updating instance router/1 (00:00:02) failed: the job did not start',
  ]);
  t.deepEqual(o.event(ev({ task: 'x', state: 'failed' })), ['Task 12 | 10:41:25 | Updating instance x (00:00:00) failed: no reason given']);
});

test('steps that overlap are matched by stage, task and index', (t) => {
  const o = new TaskOutput(7, UTC);
  o.event(ev({ stage: 'Creating missing vms', task: 'dea/0', index: 1, time: T0 }));
  o.event(ev({ stage: 'Creating missing vms', task: 'dea/1', index: 2, time: T0 + 1 }));
  t.is(o.status(), 'Task 7 | 10:41:26 | Creating missing vms dea/1... (and 1 more)');
  t.deepEqual(o.event(ev({ stage: 'Creating missing vms', task: 'dea/1', index: 2, state: 'finished', time: T0 + 5 })), ['Task 7 | 10:41:26 | Creating missing vms dea/1 (00:00:04)']);
  t.is(o.status(), 'Task 7 | 10:41:25 | Creating missing vms dea/0...');
  t.deepEqual(o.event(ev({ stage: 'Creating missing vms', task: 'dea/0', index: 1, state: 'finished', time: T0 + 6 })), ['Task 7 | 10:41:25 | Creating missing vms dea/0 (00:00:06)']);
  t.is(o.status(), '');
});

test('a step seen only when it finished (following from the middle) lasts 00:00:00 at its own time', (t) => {
  const o = new TaskOutput(3, UTC);
  t.deepEqual(o.event(ev({ stage: 'Deleting deployment', task: 'doomed', state: 'finished', time: T0 + 9 })), ['Task 3 | 10:41:34 | Deleting deployment doomed (00:00:00)']);
});

test('the summary: started, finished, duration and state; an error or a cancel is its own line first', (t) => {
  const o = new TaskOutput(12, UTC);
  t.deepEqual(o.summary(task({})), ['', 'Task 12 Started  Thu Nov 26 10:41:25 UTC 2026', 'Task 12 Finished Thu Nov 26 10:41:30 UTC 2026', 'Task 12 Duration 00:00:05', 'Task 12 done']);
  const failed = o.summary(task({ state: 'error', result: 'Updating instance router/1: the job did not start' }));
  t.is(failed[0], 'Task 12 | 10:41:30 | Error: Updating instance router/1: the job did not start');
  t.is(failed.at(-1), 'Task 12 error');
  t.is(o.summary(task({ state: 'cancelled', result: 'cancelled before it started', started_at: null }))[0], 'Task 12 | 10:41:30 | Cancelled: cancelled before it started');
  t.false(o.summary(task({ state: 'cancelled', started_at: null })).some((l) => l.includes('Started')));
});

test('off a terminal the writer writes finished lines only; on one it keeps a status line in place', (t) => {
  const plain: string[] = [];
  const w = new TaskOutputWriter(new TaskOutput(12, UTC), { write: (s: string) => plain.push(s) }, false);
  w.event(ev({}));
  w.event(ev({ state: 'finished', time: T0 + 1 }));
  t.deepEqual(plain, ['Task 12 | 10:41:25 | Updating instance router/0 (canary) (00:00:01)\n']);
  t.false(plain.join('').includes('\x1b'));

  const tty: string[] = [];
  const wt = new TaskOutputWriter(new TaskOutput(12, UTC), { write: (s: string) => tty.push(s) }, true);
  wt.event(ev({}));
  t.deepEqual(tty, ['Task 12 | 10:41:25 | Updating instance router/0 (canary)...']);
  wt.event(ev({ state: 'finished', time: T0 + 1 }));
  t.deepEqual(tty.slice(1), ['\r\x1b[2K', 'Task 12 | 10:41:25 | Updating instance router/0 (canary) (00:00:01)\n']);
  wt.clear();
  t.is(tty.length, 3);
});

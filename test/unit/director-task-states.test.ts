import test from 'ava';
import { TaskStateError } from '../../orchestrator/director/errors.ts';
import { isFinished, TASK_STATES, transition, type TaskHappening, type TaskState } from '../../orchestrator/director/task-states.ts';

test('a task runs queued → processing → done | error', (t) => {
  t.is(transition('queued', 'start'), 'processing');
  t.is(transition('processing', 'succeed'), 'done');
  t.is(transition('processing', 'fail'), 'error');
});

test('a queued task is cancelled at once; a running one goes through cancelling, however its handler ends', (t) => {
  t.is(transition('queued', 'cancel'), 'cancelled');
  t.is(transition('processing', 'cancel'), 'cancelling');
  t.is(transition('cancelling', 'succeed'), 'cancelled');
  t.is(transition('cancelling', 'fail'), 'cancelled');
});

test('a task the director died under ends error (or cancelled if it was being cancelled)', (t) => {
  t.is(transition('processing', 'restart'), 'error');
  t.is(transition('cancelling', 'restart'), 'cancelled');
});

test('a finished task never moves again, and a queued one cannot finish without starting', (t) => {
  const happenings: TaskHappening[] = ['start', 'succeed', 'fail', 'cancel', 'restart'];
  for (const s of TASK_STATES.filter(isFinished)) {
    for (const h of happenings) t.throws(() => transition(s, h), { instanceOf: TaskStateError }, `${s} + ${h}`);
  }
  for (const h of ['succeed', 'fail', 'restart'] as const) t.throws(() => transition('queued', h), { instanceOf: TaskStateError });
  t.throws(() => transition('processing', 'start'), { message: 'A task in state processing cannot start' });
});

test('finished states are done, error and cancelled', (t) => {
  t.deepEqual(TASK_STATES.filter(isFinished), ['done', 'error', 'cancelled'] as TaskState[]);
});

// The task state machine, pure: which state a task moves to on each happening. The runner
// and the store only ever change a task's state through `transition`, so an impossible move
// (finishing a task twice, cancelling a finished one) is a bug caught at once.
//
//   queued ──start──▶ processing ──succeed──▶ done
//     │                  │  └──────fail────▶ error
//     │                cancel                ▲
//     │                  ▼                   │ restart (the director died while it ran)
//     └──cancel──▶ cancelled ◀──finish── cancelling
import { TaskStateError } from './errors.ts';

export const TASK_STATES = ['queued', 'processing', 'cancelling', 'done', 'error', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export type TaskHappening = 'start' | 'succeed' | 'fail' | 'cancel' | 'restart';

export const FINISHED: ReadonlySet<TaskState> = new Set(['done', 'error', 'cancelled']);

export function isFinished(state: TaskState): boolean {
  return FINISHED.has(state);
}

const table: Record<TaskState, Partial<Record<TaskHappening, TaskState>>> = {
  queued: { start: 'processing', cancel: 'cancelled' },
  processing: { succeed: 'done', fail: 'error', cancel: 'cancelling', restart: 'error' },
  // Once cancelled, however the handler ends, the task ends cancelled.
  cancelling: { succeed: 'cancelled', fail: 'cancelled', cancel: 'cancelling', restart: 'cancelled' },
  done: {},
  error: {},
  cancelled: {},
};

export function transition(state: TaskState, happening: TaskHappening): TaskState {
  const next = table[state][happening];
  if (!next) throw new TaskStateError(state, happening);
  return next;
}

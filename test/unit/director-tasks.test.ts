// The task runner on a real SQLite store: locks refused naming their holder, events persisted
// in order, cancellation through the signal, recovery after a director died mid-task.
import anyTest, { type TestFn } from 'ava';
import { join } from 'node:path';
import { pino } from 'pino';
import { LockHeldError } from '../../orchestrator/director/errors.ts';
import { DirectorStore } from '../../orchestrator/director/store.ts';
import { RESTARTED_SENTENCE, TaskRunner } from '../../orchestrator/director/task-runner.ts';
import type { TaskHandler } from '../../orchestrator/director/types.ts';
import { scratchDir } from '../helpers/tmp.ts';

const test = anyTest as TestFn<{ stores: DirectorStore[]; runners: TaskRunner[] }>;
const log = pino({ level: 'silent' });

test.beforeEach((t) => {
  t.context = { stores: [], runners: [] };
});

test.afterEach.always(async (t) => {
  for (const r of t.context.runners) await r.stop(1000);
  for (const s of t.context.stores) await s.close().catch(() => undefined);
});

async function open(t: { context: { stores: DirectorStore[] } }, file = join(scratchDir('director-unit'), 'd.sqlite')): Promise<DirectorStore> {
  const s = await DirectorStore.open(file);
  t.context.stores.push(s);
  return s;
}

function runner(t: { context: { runners: TaskRunner[] } }, store: DirectorStore, max = 2): TaskRunner {
  const r = new TaskRunner(store, log, max);
  t.context.runners.push(r);
  return r;
}

async function until(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const waitForAbort: TaskHandler = ({ signal }) =>
  new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));

test('a second task on a locked deployment is refused, naming the holder; the lock frees when it ends', async (t) => {
  const store = await open(t);
  const tasks = runner(t, store);
  const finish = new Map<string, () => void>();
  tasks.register('deploy', ({ task, signal }) =>
    new Promise((resolve, reject) => {
      finish.set(task.deployment!, () => resolve('deployed'));
      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    }),
  );
  const first = await tasks.enqueue({ type: 'deploy', description: 'create deployment ingot', deployment: 'ingot', username: 'admin', locks: ['deployment:ingot'] });
  const err = await t.throwsAsync(tasks.enqueue({ type: 'deploy', description: 'again', deployment: 'ingot', username: 'admin', locks: ['deployment:ingot'] }), { instanceOf: LockHeldError });
  t.is(err!.holderTaskId, first.id);
  t.is(err!.message, `The deployment ingot is locked by task ${first.id} (create deployment ingot)`);
  // Another deployment is not affected.
  await t.notThrowsAsync(tasks.enqueue({ type: 'deploy', description: 'other', deployment: 'other', username: 'admin', locks: ['deployment:other'] }));
  await until(async () => (await store.task(first.id))?.state === 'processing');
  finish.get('ingot')!();
  await until(async () => (await store.task(first.id))?.state === 'done');
  t.is((await store.task(first.id))!.result, 'deployed');
  t.false((await store.locks()).some((l) => l.name === 'deployment:ingot'));
});

test('events and debug lines are persisted in order; a failing handler ends the task in error with its sentence', async (t) => {
  const store = await open(t);
  const tasks = runner(t, store);
  tasks.register('steps', async ({ events, log: say }) => {
    for (let i = 1; i <= 3; i++) {
      events.emit({ stage: 'Step', task: `s${i}`, index: i, total: 3, state: 'started', progress: 0 });
      say(`step ${i}`);
    }
    throw new Error('Updating instance router/0: the job did not start');
  });
  const task = await tasks.enqueue({ type: 'steps', description: 'steps', username: 'admin' });
  await until(async () => (await store.task(task.id))?.state === 'error');
  t.is((await store.task(task.id))!.result, 'Updating instance router/0: the job did not start');
  const events = await store.taskEvents(task.id);
  t.deepEqual(events.map((e) => e.task), ['s1', 's2', 's3']);
  t.true(events.every((e) => typeof e.time === 'number'));
  t.is((await store.taskOutput(task.id, 'debug')).length, 3);
});

test('cancel: a queued task is cancelled at once; a running one through its signal', async (t) => {
  const store = await open(t);
  const tasks = runner(t, store, 1);
  tasks.register('wait', waitForAbort);
  const running = await tasks.enqueue({ type: 'wait', description: 'runs', username: 'admin', locks: ['deployment:a'] });
  const queued = await tasks.enqueue({ type: 'wait', description: 'waits', username: 'admin', locks: ['deployment:b'] });
  await until(async () => (await store.task(running.id))?.state === 'processing');
  t.is((await store.task(queued.id))!.state, 'queued');
  t.is((await tasks.cancel(queued.id))!.state, 'cancelled');
  t.is((await tasks.cancel(running.id))!.state, 'cancelling');
  await until(async () => (await store.task(running.id))?.state === 'cancelled');
  t.deepEqual(await store.locks(), []);
});

test('at most max_concurrent tasks run at once; the rest wait queued', async (t) => {
  const store = await open(t);
  const tasks = runner(t, store, 2);
  tasks.register('wait', waitForAbort);
  const ids: number[] = [];
  for (let i = 0; i < 4; i++) ids.push((await tasks.enqueue({ type: 'wait', description: `w${i}`, username: 'admin' })).id);
  await until(async () => (await store.tasks({ states: ['processing'] })).length === 2);
  await new Promise((r) => setTimeout(r, 100));
  t.is((await store.tasks({ states: ['processing'] })).length, 2);
  t.is((await store.tasks({ states: ['queued'] })).length, 2);
  await tasks.cancel(ids[0]!);
  await until(async () => (await store.task(ids[2]!))?.state === 'processing');
});

test('recovery: a task left processing by a dead director is error with the sentence, its lock free; queued tasks then run', async (t) => {
  const file = join(scratchDir('director-unit'), 'd.sqlite');
  const first = await open(t, file);
  // What a killed director leaves: one task processing with its lock, one queued.
  const dead = await first.createTask({ type: 'work', description: 'died', deployment: 'x', username: 'admin', locks: ['deployment:x'] });
  await first.moveTask(dead.id, 'start');
  const waiting = await first.createTask({ type: 'work', description: 'waits', deployment: 'y', username: 'admin', locks: ['deployment:y'] });
  await first.close();
  t.context.stores = [];

  const store = await open(t, file);
  const tasks = runner(t, store);
  t.deepEqual(await tasks.recover(), [dead.id]);
  const after = (await store.task(dead.id))!;
  t.is(after.state, 'error');
  t.is(after.result, RESTARTED_SENTENCE);
  t.deepEqual((await store.locks()).map((l) => l.name), ['deployment:y']);
  tasks.register('work', async () => 'worked');
  await until(async () => (await store.task(waiting.id))?.state === 'done');
  t.deepEqual(await store.locks(), []);
});

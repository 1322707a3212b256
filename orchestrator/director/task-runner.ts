// Runs tasks: a small in-process worker pool over the tasks table. Each task type is a
// registered handler; a task's events and debug lines are written to the store as they come
// (followers are woken after the write, so what they read is what a restart would read);
// cancellation reaches the handler through its AbortSignal. On start, tasks a killed director
// left running are failed and their locks freed, and queued tasks run.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { LockHeldError } from './errors.ts';
import type { DirectorStore, NewTask } from './store.ts';
import { isFinished } from './task-states.ts';
import type { TaskContext, TaskEvent, TaskEventInput, TaskHandler, TaskRecord } from './types.ts';

export const RESTARTED_SENTENCE = 'director restarted while the task ran';
export const STOPPED_SENTENCE = 'director stopped while the task ran';

interface Running {
  task: TaskRecord;
  abort: AbortController;
  done: Promise<void>;
  shutdown: boolean;
}

export class TaskRunner {
  private readonly handlers = new Map<string, TaskHandler>();
  private readonly running = new Map<number, Running>();
  private readonly wake = new EventEmitter();
  private stopping = false;
  private pumping = false;
  private pumpAgain = false;

  constructor(
    private readonly store: DirectorStore,
    private readonly log: Logger,
    private readonly maxConcurrent: number,
  ) {
    this.wake.setMaxListeners(0);
  }

  register(type: string, handler: TaskHandler): void {
    if (this.handlers.has(type)) throw new Error(`Registering task type ${type}: it is registered already`);
    this.handlers.set(type, handler);
    this.pump();
  }

  /** Fails what a killed director left running and frees its locks; returns the ids failed. */
  async recover(): Promise<number[]> {
    const stale = await this.store.tasks({ states: ['processing', 'cancelling'], limit: 1_000_000 });
    for (const t of stale) {
      await this.store.appendTaskOutput(t.id, 'debug', `${new Date().toISOString()} ${RESTARTED_SENTENCE}`);
      await this.store.moveTask(t.id, 'restart', t.state === 'cancelling' ? 'cancelled; the director restarted while the task ran' : RESTARTED_SENTENCE);
      this.log.warn({ task: t.id, type: t.type }, RESTARTED_SENTENCE);
    }
    return stale.map((t) => t.id);
  }

  /** Queues a task with its locks; LockHeldError names the holder. */
  async enqueue(t: NewTask): Promise<TaskRecord> {
    if (this.stopping) throw new Error('The director is stopping; no new task is accepted');
    let task: TaskRecord;
    try {
      task = await this.store.createTask(t);
    } catch (err) {
      if (err instanceof LockHeldError) this.log.info({ type: t.type, lock: err.lock, holder: err.holderTaskId }, 'task refused: lock held');
      throw err;
    }
    this.log.info({ task: task.id, type: task.type, deployment: task.deployment }, 'task queued');
    this.pump();
    return task;
  }

  /**
   * Runs `fn` as a task of its own, now, in the caller (an API request that answers when the work
   * is done): the task is created `processing` with its locks (LockHeldError names the holder),
   * so the pool never starts it; it ends done with fn's result line, or error with its message,
   * and fn's value or error is the caller's. A director killed meanwhile fails it on restart.
   */
  async runInline<T>(t: NewTask, fn: (ctx: TaskContext) => Promise<{ result: string; value: T }>): Promise<T> {
    if (this.stopping) throw new Error('The director is stopping; no new task is accepted');
    const task = await this.store.createTask({ ...t, started: true });
    this.log.info({ task: task.id, type: task.type }, 'task running inline');
    const abort = new AbortController();
    const { ctx, flush } = this.contextOf(task, abort.signal);
    try {
      const { result, value } = await fn(ctx);
      await flush();
      await this.store.moveTask(task.id, 'succeed', result);
      return value;
    } catch (err) {
      await flush();
      await this.store.moveTask(task.id, 'fail', err instanceof Error ? err.message : String(err));
      throw err;
    } finally {
      this.notify(task.id);
    }
  }

  /** Cancels a queued task at once, or asks a running one to stop. Returns the task as it now is. */
  async cancel(id: number): Promise<TaskRecord | undefined> {
    const task = await this.store.task(id);
    if (!task || isFinished(task.state)) return task;
    const run = this.running.get(id);
    if (task.state === 'queued' && !run) {
      const moved = await this.store.moveTask(id, 'cancel', 'cancelled before it started');
      this.notify(id);
      return moved;
    }
    const moved = await this.store.moveTask(id, 'cancel');
    run?.abort.abort(new Error(`task ${id} was cancelled`));
    this.notify(id);
    return moved;
  }

  /** Resolves when the task's output or state may have changed, or after `ms`. */
  waitForChange(id: number, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake.off(String(id), done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake.on(String(id), done);
    });
  }

  get active(): number[] {
    return [...this.running.keys()];
  }

  /** Starts nothing new; asks running handlers to stop and waits up to `graceMs` for them. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    const runs = [...this.running.values()];
    for (const r of runs) {
      r.shutdown = true;
      r.abort.abort(new Error(STOPPED_SENTENCE));
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(runs.map((r) => r.done)), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
  }

  private notify(id: number): void {
    this.wake.emit(String(id));
  }

  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void (async () => {
      try {
        do {
          this.pumpAgain = false;
          if (this.stopping) break;
          const free = this.maxConcurrent - this.running.size;
          if (free <= 0) break;
          const queued = (await this.store.tasks({ states: ['queued'], limit: 1_000_000 }))
            .filter((t) => !this.running.has(t.id))
            .sort((a, b) => a.id - b.id)
            .slice(0, free);
          for (const t of queued) await this.start(t);
        } while (this.pumpAgain);
      } catch (err) {
        this.log.error({ err: (err as Error).stack }, 'starting queued tasks failed');
      } finally {
        this.pumping = false;
      }
    })();
  }

  private async start(queued: TaskRecord): Promise<void> {
    const task = await this.store.moveTask(queued.id, 'start');
    const abort = new AbortController();
    const run: Running = { task, abort, done: Promise.resolve(), shutdown: false };
    this.running.set(task.id, run);
    this.notify(task.id);
    run.done = this.execute(run).finally(() => {
      this.running.delete(task.id);
      this.notify(task.id);
      this.pump();
    });
  }

  /** A handler's context; `flush` resolves once every event and debug line is written. */
  private contextOf(task: TaskRecord, signal: AbortSignal): { ctx: TaskContext; flush: () => Promise<unknown> } {
    const log = this.log.child({ task: task.id, type: task.type });
    // Writes are chained so the log keeps its order; the task ends only after the last one.
    let writes: Promise<unknown> = Promise.resolve();
    const write = (kind: 'event' | 'debug', body: string): void => {
      writes = writes
        .then(() => this.store.appendTaskOutput(task.id, kind, body))
        .then(() => this.notify(task.id))
        .catch((err) => log.error({ err: (err as Error).message }, 'writing task output failed'));
    };
    const ctx: TaskContext = {
      task,
      signal,
      logger: log,
      log: (message: string) => {
        log.debug(message);
        write('debug', `${new Date().toISOString()} ${message}`);
      },
      events: {
        emit: (e: TaskEventInput) => {
          const event: TaskEvent = { time: Math.floor(Date.now() / 1000), ...e };
          write('event', JSON.stringify(event));
        },
      },
    };
    return { ctx, flush: () => writes };
  }

  private async execute(run: Running): Promise<void> {
    const { task, abort } = run;
    const log = this.log.child({ task: task.id, type: task.type });
    const { ctx, flush } = this.contextOf(task, abort.signal);
    let outcome: { ok: true; result: string } | { ok: false; message: string };
    const handler = this.handlers.get(task.type);
    try {
      if (!handler) throw new Error(`No handler is registered for tasks of type ${task.type}`);
      outcome = { ok: true, result: await handler(ctx) };
    } catch (err) {
      outcome = { ok: false, message: err instanceof Error ? err.message : String(err) };
    }
    await flush();
    if (run.shutdown && (await this.store.task(task.id))?.state === 'processing') {
      // The director is stopping: the handler gave up because of us, not because it failed.
      await this.store.moveTask(task.id, 'fail', STOPPED_SENTENCE);
      log.warn(STOPPED_SENTENCE);
      return;
    }
    const moved = outcome.ok ? await this.store.moveTask(task.id, 'succeed', outcome.result) : await this.store.moveTask(task.id, 'fail', outcome.message);
    log.info({ state: moved.state, result: moved.result }, 'task finished');
  }
}

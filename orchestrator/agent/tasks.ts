// Long calls run as tasks: the request is answered at once with {agent_task_id, state:
// running}, and get_task polls until the value or the exception is there.
import { randomUUID } from 'node:crypto';
import { AgentError } from './errors.ts';
import type { AgentReply, TaskRunning } from './protocol.ts';

interface Task {
  id: string;
  method: string;
  done?: AgentReply;
  finishedAt?: number;
  abort: AbortController;
}

export class TaskRegistry {
  private readonly tasks = new Map<string, Task>();

  constructor(private readonly retentionMs: number) {}

  start(method: string, work: (signal: AbortSignal) => Promise<unknown>): TaskRunning {
    this.sweep();
    const task: Task = { id: randomUUID(), method, abort: new AbortController() };
    this.tasks.set(task.id, task);
    void (async () => {
      try {
        const value = await work(task.abort.signal);
        task.done = { value: value ?? null };
      } catch (err) {
        const message = task.abort.signal.aborted ? `Task ${task.id} (${task.method}) was cancelled` : err instanceof Error ? err.message : String(err);
        task.done = { exception: { message } };
      }
      task.finishedAt = Date.now();
    })();
    return { agent_task_id: task.id, state: 'running' };
  }

  /** get_task: the finished reply, or still running. */
  poll(id: string): AgentReply | { running: TaskRunning } {
    const task = this.tasks.get(id);
    if (!task) throw new AgentError('task_not_found', `Getting task ${id}: no such task`);
    return task.done ?? { running: { agent_task_id: id, state: 'running' } };
  }

  cancel(id: string): string {
    const task = this.tasks.get(id);
    if (!task) throw new AgentError('task_not_found', `Cancelling task ${id}: no such task`);
    if (!task.done) task.abort.abort();
    return 'canceled';
  }

  get running(): number {
    return [...this.tasks.values()].filter((t) => !t.done).length;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, t] of this.tasks) if (t.finishedAt !== undefined && now - t.finishedAt > this.retentionMs) this.tasks.delete(id);
  }
}

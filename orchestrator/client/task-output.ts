// A director task's events as a person reads them, BOSH's way: one line per step when it
// ends, with the time it started and how long it took —
//   Task 12 | 10:41:25 | Updating instance router/0 (canary) (00:00:03)
//   Task 12 | 10:41:28 | Updating instance router/1 (00:00:02) failed: the job did not start
// — and the task's start, end, duration and state at the end. TaskOutput is pure (events in,
// lines out); TaskOutputWriter puts them on a stream, keeping on a terminal one status line of
// the steps still running, rewritten in place (elsewhere only finished lines are written).
import type { Sink } from '../../kernel/client/progress.ts';
import type { Task, TaskEvent } from './director-types.ts';

export interface ClockOptions {
  /** An IANA zone for the times shown; the machine's own when absent. */
  timeZone?: string;
}

/** Seconds → `HH:MM:SS` (hours keep counting past 99). */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

function parts(unixSeconds: number, o: ClockOptions): Record<string, string> {
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone: o.timeZone,
    hourCycle: 'h23',
    weekday: 'short',
    month: 'short',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    year: 'numeric',
    timeZoneName: 'short',
  });
  const out: Record<string, string> = {};
  for (const p of fmt.formatToParts(new Date(unixSeconds * 1000))) out[p.type] = p.value;
  return out;
}

/** Unix seconds → `10:41:25`. */
export function formatClock(unixSeconds: number, o: ClockOptions = {}): string {
  const p = parts(unixSeconds, o);
  return `${p.hour}:${p.minute}:${p.second}`;
}

/** Unix seconds → `Thu Nov 26 22:06:12 UTC 2026`, as BOSH prints a task's start and end. */
export function formatDate(unixSeconds: number, o: ClockOptions = {}): string {
  const p = parts(unixSeconds, o);
  return `${p.weekday} ${p.month} ${p.day} ${p.hour}:${p.minute}:${p.second} ${p.timeZoneName} ${p.year}`;
}

/** What a step is called on its line: the stage, then the task it names. */
export function stepLabel(e: Pick<TaskEvent, 'stage' | 'task'>): string {
  return e.task ? `${e.stage} ${e.task}` : e.stage;
}

function stepKey(e: TaskEvent): string {
  return `${e.stage}\u0000${e.task}\u0000${e.index}`;
}

function errorOf(e: TaskEvent): string | undefined {
  const err = e.data?.error;
  if (typeof err === 'string') return err;
  if (err && typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string') return (err as { message: string }).message;
  return undefined;
}

const isoSeconds = (iso: string | null): number | undefined => (iso ? Math.floor(Date.parse(iso) / 1000) : undefined);

/** Events in, lines out. Keeps the steps that started and have not ended yet. */
export class TaskOutput {
  private readonly running = new Map<string, TaskEvent>();

  constructor(
    readonly taskId: number,
    private readonly clock: ClockOptions = {},
  ) {}

  /** The lines this event ends (none for a step that only started). */
  event(e: TaskEvent): string[] {
    const key = stepKey(e);
    if (e.state === 'started' || e.state === 'in_progress') {
      // Progress keeps the step's start time: its line shows when it started.
      if (e.state === 'started' || !this.running.has(key)) this.running.set(key, e);
      return [];
    }
    const started = this.running.get(key);
    this.running.delete(key);
    const from = started?.time ?? e.time;
    const line = `${this.prefix(from)}${stepLabel(e)} (${formatDuration(e.time - from)})`;
    if (e.state === 'failed') return [`${line} failed: ${errorOf(e) ?? 'no reason given'}`];
    return [line];
  }

  /** The newest step under way (and how many more), for a status line ('' when none). */
  status(): string {
    const steps = [...this.running.values()];
    const last = steps.at(-1);
    if (!last) return '';
    const more = steps.length > 1 ? ` (and ${steps.length - 1} more)` : '';
    return `${this.prefix(last.time)}${stepLabel(last)}...${more}`;
  }

  /** The closing lines once the task has ended: its error, start, end, duration and state. */
  summary(task: Task): string[] {
    const started = isoSeconds(task.started_at);
    const ended = isoSeconds(task.ended_at);
    const lines: string[] = [];
    if (task.state === 'error' || task.state === 'cancelled') {
      lines.push(`${this.prefix(ended ?? task.timestamp)}${task.state === 'error' ? 'Error' : 'Cancelled'}: ${task.result ?? 'no reason given'}`);
    }
    const id = `Task ${this.taskId}`;
    lines.push('');
    if (started !== undefined) lines.push(`${id} Started  ${formatDate(started, this.clock)}`);
    if (ended !== undefined) lines.push(`${id} Finished ${formatDate(ended, this.clock)}`);
    if (started !== undefined && ended !== undefined) lines.push(`${id} Duration ${formatDuration(ended - started)}`);
    lines.push(`${id} ${task.state}`);
    return lines;
  }

  private prefix(unixSeconds: number): string {
    return `Task ${this.taskId} | ${formatClock(unixSeconds, this.clock)} | `;
  }
}

/** Writes a TaskOutput's lines; on a terminal, the running steps on one line rewritten in place. */
export class TaskOutputWriter {
  private shown = '';

  constructor(
    readonly output: TaskOutput,
    private readonly out: Sink,
    private readonly tty: boolean,
  ) {}

  event(e: TaskEvent): void {
    this.lines(this.output.event(e));
  }

  lines(lines: string[]): void {
    if (this.tty) this.clear();
    for (const l of lines) this.out.write(`${l}\n`);
    if (this.tty) {
      this.shown = this.output.status();
      if (this.shown) this.out.write(this.shown);
    }
  }

  /** Removes the status line (before the summary, or an error). */
  clear(): void {
    if (this.shown) this.out.write('\r\x1b[2K');
    this.shown = '';
  }
}

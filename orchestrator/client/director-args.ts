// The director commands' flags, checked once where they enter (pure): a task id, `--recent
// [N]`, which output of a task to show, and a release or stemcell as NAME/VERSION. Each mistake
// is one sentence naming the flag or argument.
import { ClientUsageError } from '../../kernel/client/errors.ts';
import type { TaskState } from './director-types.ts';

export const DEFAULT_RECENT = 30;
export const RUNNING_STATES: TaskState[] = ['queued', 'processing', 'cancelling'];

/** A task id as typed: a whole number from 1. */
export function taskIdArg(value: unknown): number {
  const text = String(value ?? '').trim();
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new ClientUsageError(`task id "${value ?? ''}": expected a task number, e.g. ingot task 12`);
  }
  return Number(text);
}

/**
 * Which tasks `ingot tasks` lists: without --recent the ones still running (BOSH's default),
 * with `--recent` the last 30 of any state, with `--recent N` the last N.
 */
export function tasksQuery(recent: string | number | boolean | undefined, deployment: string | undefined): { states?: TaskState[]; limit: number; deployment?: string } {
  const d = deployment === undefined ? {} : { deployment: deploymentArg(deployment, 'tasks') };
  if (recent === undefined || recent === false) return { states: RUNNING_STATES, limit: 1000, ...d };
  if (recent === true || recent === '') return { limit: DEFAULT_RECENT, ...d };
  const text = String(recent).trim();
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 10_000) throw new ClientUsageError(`--recent ${recent}: expected a number of tasks from 1 to 10000`);
  return { limit: Number(text), ...d };
}

export type TaskOutputMode = 'log' | 'event' | 'debug' | 'result';

/** `--event`, `--debug` and `--result` pick one output; the rendered log when none is given. */
export function taskOutputMode(flags: { event?: boolean; debug?: boolean; result?: boolean }): TaskOutputMode {
  const picked = (['event', 'debug', 'result'] as const).filter((k) => flags[k] === true);
  if (picked.length > 1) throw new ClientUsageError(`give one of --event, --debug and --result, not ${picked.map((p) => `--${p}`).join(' and ')}`);
  return picked[0] ?? 'log';
}

/** The deployment of `-d`, or a sentence saying how to give it. */
export function deploymentArg(value: unknown, command: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw new ClientUsageError(`name the deployment: ingot ${command} -d DEPLOYMENT`);
  return value.trim();
}

const NAME_PART = /^[^/\s]+$/;

/** `delete-release`'s argument: `NAME` (every version) or `NAME/VERSION`. */
export function releaseArg(value: unknown): { name: string; version?: string } {
  const text = String(value ?? '').trim();
  const [name, version, ...rest] = text.split('/');
  if (!name || !NAME_PART.test(name) || rest.length > 0 || (version !== undefined && !NAME_PART.test(version))) {
    throw new ClientUsageError(`release "${value ?? ''}": expected NAME or NAME/VERSION, e.g. ingot delete-release ingot/0.1.0`);
  }
  return version === undefined ? { name } : { name, version };
}

/** `delete-stemcell`'s argument: `NAME/VERSION`. */
export function stemcellArg(value: unknown): { name: string; version: string } {
  const text = String(value ?? '').trim();
  const [name, version, ...rest] = text.split('/');
  if (!name || !NAME_PART.test(name) || version === undefined || !NAME_PART.test(version) || rest.length > 0) {
    throw new ClientUsageError(`stemcell "${value ?? ''}": expected NAME/VERSION, e.g. ingot delete-stemcell ingot-local/1`);
  }
  return { name, version };
}

// What the app commands share: flag parsing (sizes), printing (lines, JSON), the push
// renderer bound to this process's terminal, and "do it, then wait for the instances".
import type { App } from '../api-types.ts';
import { ClientUsageError, step } from '../errors.ts';
import { crashBaseline, waitForInstances } from '../instances.ts';
import { PushRenderer } from '../progress.ts';
import { DEFAULT_STAGING_TIMEOUT_S, DEFAULT_STARTUP_TIMEOUT_S, openLogs, type Emit } from '../push.ts';
import { targetRouterBase, type SpaceSession } from '../session.ts';
import { parseSizeMb } from '../size.ts';
import { appSummary, type AppSummary } from '../summary.ts';

export const jsonOption = { type: 'boolean', default: false, describe: 'Print JSON' } as const;
export const forceOption = { alias: 'force', type: 'boolean', default: false, describe: 'Do not ask for confirmation' } as const;

/** A size flag in MB, or a one-line error naming the flag (`-m 12XB: …`). */
export function sizeFlag(value: string | number | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const r = parseSizeMb(value);
  if ('error' in r) throw new ClientUsageError(`${flag} ${value}: ${r.error}`);
  return r.mb;
}

/** A name argument or flag that passes `problem`, or a one-line error naming it (`--path shop: …`). */
export function nameArg(label: string, value: string, problem: (v: string) => string | null): string {
  const why = problem(value);
  if (why) throw new ClientUsageError(`${label} ${value === '' || /\s/.test(value) ? JSON.stringify(value) : value}: ${why}`);
  return value;
}

export function countFlag(value: number | undefined, flag: string, max = 1000): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 0 || value > max) throw new ClientUsageError(`${flag} ${value}: expected a whole number from 0 to ${max}`);
  return value;
}

export function print(lines: string | string[]): void {
  process.stdout.write(`${(Array.isArray(lines) ? lines : [lines]).join('\n')}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function renderer(): PushRenderer {
  return new PushRenderer(process.stdout, process.stderr, { tty: process.stdout.isTTY === true });
}

function secondsFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new ClientUsageError(`${name}=${raw}: expected a number of seconds`);
  return n;
}

/** How long to wait for instances to run (INGOT_STARTUP_TIMEOUT, seconds; cf's CF_STARTUP_TIMEOUT). */
export function startupTimeoutMs(): number {
  return secondsFromEnv('INGOT_STARTUP_TIMEOUT', DEFAULT_STARTUP_TIMEOUT_S) * 1000;
}

export function stagingTimeoutMs(): number {
  return secondsFromEnv('INGOT_STAGING_TIMEOUT', DEFAULT_STAGING_TIMEOUT_S) * 1000;
}

/**
 * Runs an action that (re)starts instances, then waits until every instance of the app's
 * current version runs, printing the counts as they change; ends with the app's summary.
 */
export async function actThenWait(s: SpaceSession, app: App, what: string, action: () => Promise<unknown>, opts: { verb?: string; emit?: Emit } = {}): Promise<AppSummary> {
  const r = renderer();
  const emit: Emit = opts.emit ?? ((e) => r.handle(e));
  const known = await crashBaseline(s.client, app.guid);
  const logs = await openLogs(s.client, app, (e) => (e.type === 'warning' ? emit(e) : undefined));
  try {
    await step(what, action);
    const now = await s.client.app(app.guid);
    if (now.state === 'STARTED') {
      await waitForInstances(s.client, app, {
        timeoutMs: startupTimeoutMs(),
        knownCrashes: known,
        apiErrors: () => logs.apiErrors,
        onCounts: (counts) => emit({ type: 'instances', counts, verb: opts.verb ?? 'running' }),
      });
    }
  } finally {
    logs.close();
  }
  const summary = await appSummary(s.client, await s.client.app(app.guid), targetRouterBase(s));
  emit({ type: 'summary', summary });
  r.flush();
  return summary;
}

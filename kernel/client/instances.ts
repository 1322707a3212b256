// Waiting for an app's instances: polls the web process's stats until every desired index of
// the current version is RUNNING, reporting counts as they change ("1 of 3 instances running,
// 2 starting"). A crash of the app meanwhile (a CRASHED instance, or a new crash event) or an
// instance no DEA would take ends the wait at once with the reason; so does the deadline.
import type { CloudControllerClient } from './api-client.ts';
import type { InstanceStats, LogLine } from './api-types.ts';
import { ClientError } from './errors.ts';

export interface InstanceCounts {
  total: number;
  running: number;
  starting: number;
  crashed: number;
  down: number;
}

export function countInstances(stats: readonly InstanceStats[]): InstanceCounts {
  const c: InstanceCounts = { total: stats.length, running: 0, starting: 0, crashed: 0, down: 0 };
  for (const s of stats) {
    if (s.state === 'RUNNING') c.running++;
    else if (s.state === 'STARTING') c.starting++;
    else if (s.state === 'CRASHED') c.crashed++;
    else c.down++;
  }
  return c;
}

/** `1 of 3 instances running, 2 starting` */
export function describeCounts(c: InstanceCounts, verb = 'running'): string {
  const parts = [`${c.running} of ${c.total} ${c.total === 1 ? 'instance' : 'instances'} ${verb}`];
  if (c.starting) parts.push(`${c.starting} starting`);
  if (c.crashed) parts.push(`${c.crashed} crashed`);
  if (c.down) parts.push(`${c.down} down`);
  return parts.join(', ');
}

export interface WaitOptions {
  timeoutMs: number;
  pollMs?: number;
  onCounts?: (c: InstanceCounts) => void;
  /** Crash events that existed before the action: only newer ones count. */
  knownCrashes: ReadonlySet<string>;
  /** API error lines seen on the app's log stream meanwhile (placement failures). */
  apiErrors?: () => readonly LogLine[];
}

/** Crash events of the app now, to tell later ones apart. */
export async function crashBaseline(client: CloudControllerClient, appGuid: string): Promise<Set<string>> {
  return new Set((await client.crashEvents(appGuid)).map((e) => e.guid));
}

export async function waitForInstances(client: CloudControllerClient, app: { guid: string; name: string }, o: WaitOptions): Promise<InstanceStats[]> {
  const deadline = Date.now() + o.timeoutMs;
  let last = '';
  for (;;) {
    const stats = await client.stats(app.guid);
    const counts = countInstances(stats);
    const key = JSON.stringify(counts);
    if (key !== last) {
      last = key;
      o.onCounts?.(counts);
    }
    if (counts.running === counts.total) return stats;
    const crashed = stats.find((s) => s.state === 'CRASHED');
    const events = (await client.crashEvents(app.guid)).filter((e) => !o.knownCrashes.has(e.guid));
    if (crashed || events.length > 0) {
      const e = events[0];
      const why = e
        ? `instance ${e.data.index ?? '?'} exited${e.data.exit_status != null ? ` with status ${e.data.exit_status}` : ''}${e.data.exit_description ? ` (${e.data.exit_description})` : ''}`
        : `instance ${crashed!.index} crashed`;
      throw new ClientError('start_failed', `${app.name} crashed while starting: ${why}; see ingot logs ${app.name} --recent`);
    }
    const unplaced = o.apiErrors?.().find((l) => /^No DEA could run instance/.test(l.line));
    if (unplaced) throw new ClientError('start_failed', `${app.name} could not start: ${unplaced.line}`);
    if (Date.now() > deadline) {
      throw new ClientError('timeout', `${app.name} did not start within ${Math.round(o.timeoutMs / 1000)} s (${describeCounts(counts)}); see ingot logs ${app.name} --recent`);
    }
    await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
  }
}

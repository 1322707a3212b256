// The health manager's judgement, as one pure function: the intended state (from the
// controller), the real state (from heartbeats and exits) and what has already been asked,
// at a given moment, in; the START and STOP requests to send, and a report per app, out.
// No I/O and no clock of its own, so it is tested exhaustively (test/unit/hm-analysis.test.ts).
//
// The rules, per app (DESIGN.md §3):
// - a desired index with no instance, not heard of for the heartbeat timeout → START;
// - a crashed index → START at once for the first few crashes, then after a doubling
//   back-off (backoff.ts); such an index is flapping;
// - an evacuating instance → START its index at once; once the replacement is RUNNING,
//   STOP the evacuating one (a duplicate where the evacuating one is the one stopped);
// - an instance beyond the desired count, of a stopped app, or of an old version → STOP
//   (an old version at a desired index only once the current version runs there, so the
//   index is never left dark); two instances of one index → STOP the newer; an app unknown
//   to the controller → STOP after a grace period;
// - an app that changed in the last few seconds is left alone: the controller is acting on it;
// - evacuations first, then crashes, then missing instances, then stops; at most `budget`.
//
// Requests are idempotent and the controller applies one only while it still agrees, so a
// request repeated (another HM, a lost reply) is harmless; `asked` keeps the HM from
// repeating itself while the effect of a request cannot have been heard yet.
import { crashStatus } from './backoff.ts';
import {
  crashKey,
  startKey,
  type Analysis,
  type AnalysisPolicy,
  type AppReport,
  type AskedSnapshot,
  type DesiredApp,
  type IntendedSnapshot,
  type ObservedInstance,
  type PlannedRequest,
  type RealSnapshot,
} from './types.ts';

/** Lower goes first. */
export const PRIORITY = { evacuation: 0, crash: 1, missing: 2, stop: 3 } as const;

export interface AnalysisContext {
  asked: AskedSnapshot;
  policy: AnalysisPolicy;
  /** Most requests this round may carry (the rate limiter's tokens). */
  budget: number;
}

type Stop = Extract<PlannedRequest, { op: 'STOP' }>;
type Start = Extract<PlannedRequest, { op: 'START' }>;

const isUp = (i: ObservedInstance): boolean => i.state === 'STARTING' || i.state === 'RUNNING';
/** Serving or about to: what an extra or duplicate is judged on. */
const isLive = (i: ObservedInstance): boolean => isUp(i) || i.state === 'EVACUATING';

export function analyze(intended: IntendedSnapshot, real: RealSnapshot, now: number, ctx: AnalysisContext): Analysis {
  const { policy, asked } = ctx;
  const fresh = groupByApp(real.instances.filter((i) => now - i.heard_at < policy.heartbeat_timeout_ms));
  const all = groupByApp(real.instances);
  const candidates: PlannedRequest[] = [];
  const apps = new Map<string, AppReport>();

  const recentlyAsked = (at: number | undefined): boolean => at !== undefined && now - at < policy.heartbeat_timeout_ms;
  const stop = (out: PlannedRequest[], i: ObservedInstance, reason: Stop['reason'], priority: number, dueAt: number): void => {
    if (recentlyAsked(asked.stops.get(i.instance_id))) return;
    out.push({ op: 'STOP', app_id: i.app_id, version: i.version, instance_id: i.instance_id, index: i.index, reason, priority, due_at: dueAt });
  };

  for (const app of intended.apps.values()) {
    const mine: PlannedRequest[] = [];
    const report = judgeApp(app, fresh.get(app.app_id) ?? [], all.get(app.app_id) ?? [], mine);
    apps.set(app.app_id, report);
    if (!report.quiet) candidates.push(...mine);
  }

  // Apps the controller does not know: stopped once the controller has been heard in full
  // and the instances have outlived the grace (the app may be too new for the last load).
  for (const [appId, instances] of fresh) {
    if (intended.apps.has(appId)) continue;
    const live = instances.filter(isLive);
    apps.set(appId, {
      app_id: appId,
      version: undefined,
      desired: 0,
      running: distinctIndices(live.filter((i) => i.state !== 'STARTING')).size,
      starting: live.filter((i) => i.state === 'STARTING').length,
      evacuating: live.filter((i) => i.state === 'EVACUATING').length,
      missing: [],
      crashed: instances.filter((i) => i.state === 'CRASHED'),
      flapping: [],
      quiet: false,
    });
    if (intended.loaded_at === undefined) continue;
    for (const i of live) {
      const since = Math.max(i.first_heard_at, intended.loaded_at);
      if (now - since >= policy.unknown_app_grace_ms) stop(candidates, i, 'unknown_app', PRIORITY.stop, since + policy.unknown_app_grace_ms);
    }
  }

  candidates.sort(byUrgency);
  const budget = Math.max(0, Math.floor(ctx.budget));
  return { requests: candidates.slice(0, budget), deferred: Math.max(0, candidates.length - budget), apps };

  function judgeApp(app: DesiredApp, instances: ObservedInstance[], everHeard: ObservedInstance[], out: PlannedRequest[]): AppReport {
    const quiet = app.changed_at !== undefined && now - app.changed_at < policy.quiet_period_ms;
    const current = instances.filter((i) => i.version === app.version);
    const desired = app.state === 'STARTED' ? app.instances : 0;
    const inRange = current.filter((i) => i.index < desired);
    const report: AppReport = {
      app_id: app.app_id,
      version: app.version,
      desired,
      running: distinctIndices(inRange.filter((i) => i.state === 'RUNNING' || i.state === 'EVACUATING')).size,
      starting: 0,
      evacuating: current.filter((i) => i.state === 'EVACUATING').length,
      missing: [],
      crashed: current.filter((i) => i.state === 'CRASHED'),
      flapping: [],
      quiet,
    };

    if (app.state === 'STOPPED') {
      for (const i of instances.filter(isLive)) stop(out, i, 'stopped_app', PRIORITY.stop, app.changed_at ?? now);
      return report;
    }

    const currentAt = groupBy(current, (i) => i.index);
    const heardAt = groupBy(
      everHeard.filter((i) => i.version === app.version),
      (i) => i.index,
    );
    const runningAt = new Set<number>();
    for (let index = 0; index < desired; index++) {
      const here = currentAt.get(index) ?? [];
      const up = here.filter(isUp);
      const evacuating = here.filter((i) => i.state === 'EVACUATING');
      const running = up.filter((i) => i.state === 'RUNNING');
      const record = real.crashes.get(crashKey(app.app_id, app.version, index));
      const crash = crashStatus(record, here, now, policy.backoff);
      const lastAsk = asked.starts.get(startKey(app.app_id, app.version, index));
      // A crash not yet answered by a START (one sent before it was for the previous crash).
      const unanswered = crash !== undefined && record!.last_crash_at > (lastAsk ?? -Infinity);
      const waitingOutCrash = unanswered && up.length === 0 && crash.restart_at > now;

      if (crash?.flapping) {
        report.flapping.push({
          index,
          version: app.version,
          crash_count: crash.count,
          since: record!.first_crash_at,
          next_restart_at: waitingOutCrash ? crash.restart_at : undefined,
        });
      }

      if (running.length > 0) {
        runningAt.add(index);
        // The replacement runs: the evacuating instance has served its purpose.
        for (const e of evacuating) stop(out, e, 'evacuated', PRIORITY.evacuation, e.evacuating_since ?? e.first_heard_at);
        // Two of one index: keep the one that has run longest, stop the newer.
        const [, ...newer] = [...up].sort(byKeepFirst);
        for (const n of newer) stop(out, n, 'duplicate', PRIORITY.stop, n.first_heard_at);
      }
      if (up.length > 0) {
        if (running.length === 0) report.starting++;
        continue;
      }
      if (!waitingOutCrash && evacuating.length === 0) report.missing.push(index);
      if (app.package_state !== 'STAGED') continue; // nothing to start it from; the controller would refuse

      if (evacuating.length > 0) {
        const since = Math.min(...evacuating.map((e) => e.evacuating_since ?? e.first_heard_at));
        if (lastAsk === undefined || lastAsk < since || !recentlyAsked(lastAsk)) out.push(start(app, index, 'evacuating', PRIORITY.evacuation, since));
        continue;
      }
      if (crash && unanswered) {
        if (crash.restart_at <= now) out.push(start(app, index, 'crashed', PRIORITY.crash, crash.restart_at));
        continue;
      }
      // Missing: no sign of life for a whole timeout since the last thing that could explain
      // the silence (a heartbeat, our own START, the app's change, the HM starting to listen).
      const baseline = Math.max(
        real.listening_since,
        app.changed_at ?? -Infinity,
        lastAsk ?? -Infinity,
        ...(heardAt.get(index) ?? []).map((i) => i.active_heard_at ?? -Infinity),
      );
      if (now - baseline >= policy.heartbeat_timeout_ms) out.push(start(app, index, 'missing', PRIORITY.missing, baseline + policy.heartbeat_timeout_ms));
    }

    for (const i of instances.filter(isLive)) {
      if (i.version === app.version) {
        if (i.index >= desired) stop(out, i, 'extra_index', PRIORITY.stop, i.first_heard_at);
        // An old version is stopped beyond the desired count at once, and within it only once
        // the current version runs at its index, so replacing it never leaves the index dark.
      } else if (i.index >= desired || runningAt.has(i.index)) {
        stop(out, i, 'old_version', PRIORITY.stop, i.first_heard_at);
      }
    }
    return report;
  }
}

function start(app: DesiredApp, index: number, reason: Start['reason'], priority: number, dueAt: number): Start {
  return { op: 'START', app_id: app.app_id, version: app.version, index, reason, priority, due_at: dueAt };
}

function groupByApp(instances: readonly ObservedInstance[]): Map<string, ObservedInstance[]> {
  return groupBy(instances, (i) => i.app_id);
}

function groupBy<K>(instances: readonly ObservedInstance[], key: (i: ObservedInstance) => K): Map<K, ObservedInstance[]> {
  const out = new Map<K, ObservedInstance[]>();
  for (const i of instances) {
    const k = key(i);
    const list = out.get(k);
    if (list) list.push(i);
    else out.set(k, [i]);
  }
  return out;
}

function distinctIndices(instances: readonly ObservedInstance[]): Set<number> {
  return new Set(instances.map((i) => i.index));
}

/** RUNNING before STARTING, then the one running longest (the DEA's clock), then a stable order. */
function byKeepFirst(a: ObservedInstance, b: ObservedInstance): number {
  const rank = (i: ObservedInstance): number => (i.state === 'RUNNING' ? 0 : 1);
  return rank(a) - rank(b) || a.state_timestamp - b.state_timestamp || a.first_heard_at - b.first_heard_at || cmp(a.instance_id, b.instance_id);
}

/** Priority, then the longest overdue, then a stable order so every round agrees with the last. */
function byUrgency(a: PlannedRequest, b: PlannedRequest): number {
  return (
    a.priority - b.priority ||
    a.due_at - b.due_at ||
    cmp(a.app_id, b.app_id) ||
    a.index - b.index ||
    cmp(a.op === 'STOP' ? a.instance_id : '', b.op === 'STOP' ? b.instance_id : '')
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

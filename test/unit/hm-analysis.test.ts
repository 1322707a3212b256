// The health manager's analysis, rule by rule, through a small harness: a world of desired
// apps, DEA heartbeats and exits fed to the real RealState, and rounds whose requests are
// remembered as sent (as the component does). Then property tests over arbitrary worlds.
import test from 'ava';
import fc from 'fast-check';
import type { DeaHeartbeat, DropletExited, InstanceState } from '../../kernel/bus/mod.ts';
import { analyze, PRIORITY } from '../../kernel/health-manager/analysis.ts';
import { AskedMemory } from '../../kernel/health-manager/asked.ts';
import { RealState } from '../../kernel/health-manager/real-state.ts';
import {
  crashKey,
  startKey,
  type AnalysisPolicy,
  type CrashRecord,
  type DesiredApp,
  type ObservedInstance,
  type PlannedRequest,
  type RealSnapshot,
} from '../../kernel/health-manager/types.ts';

const S = 1000;
const T0 = 1_700_000_000_000;
const policy: AnalysisPolicy = {
  heartbeat_timeout_ms: 30 * S,
  quiet_period_ms: 5 * S,
  unknown_app_grace_ms: 60 * S,
  backoff: { immediate_restarts: 3, base_delay_ms: 30 * S, max_delay_ms: 960 * S, reset_after_ms: 300 * S },
};

type HbInstance = DeaHeartbeat['instances'][number];

const fixtures = {
  app(over: Partial<DesiredApp> = {}): DesiredApp {
    return { app_id: 'app-1', name: 'web', version: 'v1', instances: 2, state: 'STARTED', package_state: 'STAGED', changed_at: undefined, ...over };
  },
  /** One instance line of a heartbeat; the id says app, version and index unless given. */
  hb(over: Partial<HbInstance> = {}): HbInstance {
    const base = { app_id: 'app-1', version: 'v1', index: 0, state: 'RUNNING' as InstanceState, state_timestamp: T0 / 1000, ...over };
    return { instance_id: `${base.app_id}-${base.version}-${base.index}`, ...base, ...over };
  },
  heartbeat(deaId: string, instances: HbInstance[]): DeaHeartbeat {
    return { dea_id: deaId, instances };
  },
  exited(reason: DropletExited['reason'], over: Partial<DropletExited> = {}): DropletExited {
    return { app_id: 'app-1', version: 'v1', instance_id: 'app-1-v1-0', index: 0, reason, ...over };
  },
  /** An observed instance, for snapshots built by hand (property tests). */
  instance(over: Partial<ObservedInstance> = {}): ObservedInstance {
    return {
      app_id: 'app-1', version: 'v1', instance_id: 'i-0', index: 0, state: 'RUNNING', state_timestamp: T0 / 1000, dea_id: 'dea-a',
      first_heard_at: T0, heard_at: T0, active_heard_at: T0, running_since: T0, evacuating_since: undefined, ...over,
    };
  },
};

/** A world the HM watches: desired apps, DEAs' messages, and rounds that "send" their requests. */
class World {
  readonly apps = new Map<string, DesiredApp>();
  readonly real: RealState;
  readonly asked = new AskedMemory();
  loadedAt: number | undefined;
  sent: Array<PlannedRequest & { at: number }> = [];

  constructor(opts: { listeningSince?: number; loadedAt?: number } = {}) {
    this.real = new RealState(opts.listeningSince ?? T0 - 10 * 60 * S, policy.backoff);
    this.loadedAt = 'loadedAt' in opts ? opts.loadedAt : T0 - 10 * 60 * S;
  }

  app(over: Partial<DesiredApp> = {}): DesiredApp {
    const a = fixtures.app(over);
    this.apps.set(a.app_id, a);
    return a;
  }

  heartbeat(deaId: string, instances: HbInstance[], at: number): this {
    this.real.onHeartbeat(fixtures.heartbeat(deaId, instances), at);
    return this;
  }

  exit(msg: DropletExited, at: number): this {
    this.real.onExited(msg, at);
    return this;
  }

  analyze(at: number, budget = 1000) {
    return analyze({ apps: this.apps, loaded_at: this.loadedAt }, this.real.snapshot(), at, { asked: this.asked.snapshot(), policy, budget });
  }

  /** Analyses and records the requests as sent, as the component does. */
  round(at: number, budget = 1000): PlannedRequest[] {
    const { requests } = this.analyze(at, budget);
    for (const r of requests) {
      this.asked.record(
        r.op === 'START'
          ? { op: 'START', app_id: r.app_id, version: r.version, indices: [r.index], reason: r.reason }
          : { op: 'STOP', app_id: r.app_id, version: r.version, instance_ids: [r.instance_id], reason: r.reason },
        at,
      );
      this.sent.push({ ...r, at });
    }
    return requests;
  }
}

const brief = (rs: PlannedRequest[]) => rs.map((r) => (r.op === 'START' ? `START ${r.app_id}#${r.index} ${r.reason}` : `STOP ${r.instance_id} ${r.reason}`));

// ---- a healthy app, and missing instances --------------------------------------------------

test('a healthy app: every index RUNNING, nothing asked', (t) => {
  const w = new World();
  w.app();
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 }), fixtures.hb({ index: 1 })], T0);
  const a = w.analyze(T0 + S);
  t.deepEqual(a.requests, []);
  t.like(a.apps.get('app-1'), { desired: 2, running: 2, missing: [], flapping: [], quiet: false });
});

test('missing: an index never heard of is started once the HM has listened a whole timeout', (t) => {
  const w = new World({ listeningSince: T0 });
  w.app();
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 })], T0 + 29 * S);
  t.deepEqual(w.round(T0 + 29 * S), [], 'not before a whole timeout of listening');
  t.deepEqual(w.analyze(T0 + 29 * S).apps.get('app-1')?.missing, [1]);
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 })], T0 + 30 * S);
  const rs = w.round(T0 + 30 * S);
  t.deepEqual(brief(rs), ['START app-1#1 missing']);
  t.like(rs[0], { op: 'START', version: 'v1', priority: PRIORITY.missing });
});

test('missing: an instance whose heartbeats stop is started again a timeout after its last one', (t) => {
  const w = new World();
  w.app({ instances: 1 });
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 })], T0);
  t.deepEqual(w.round(T0 + 29 * S), []);
  t.deepEqual(brief(w.round(T0 + 30 * S)), ['START app-1#0 missing']);
});

test('missing: an instance its DEA stops listing is gone at once', (t) => {
  const w = new World();
  w.app({ instances: 2 });
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 }), fixtures.hb({ index: 1 })], T0);
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 })], T0 + 10 * S);
  t.deepEqual(brief(w.round(T0 + 10 * S)), ['START app-1#1 missing']);
});

test('missing: a DEA shutting down (DEA_SHUTDOWN) has its instances started elsewhere at once', (t) => {
  const w = new World();
  w.app({ instances: 1 });
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 })], T0);
  w.exit(fixtures.exited('DEA_SHUTDOWN'), T0 + S);
  t.deepEqual(brief(w.round(T0 + S)), ['START app-1#0 missing']);
});

test('missing: a START is not repeated while its instance may still be on its way, and is after a timeout', (t) => {
  const w = new World();
  w.app({ instances: 1 });
  t.deepEqual(brief(w.round(T0)), ['START app-1#0 missing']);
  t.deepEqual(w.round(T0 + 29 * S), []);
  t.deepEqual(brief(w.round(T0 + 30 * S)), ['START app-1#0 missing'], 'the placement never came: ask again');
});

test('missing: STARTING counts as present; STOPPING, STOPPED and CRASHED do not', (t) => {
  const w = new World();
  w.app({ instances: 4 });
  w.heartbeat('dea-a', [
    fixtures.hb({ index: 0, state: 'STARTING' }),
    fixtures.hb({ index: 1, state: 'STOPPING' }),
    fixtures.hb({ index: 2, state: 'STOPPED' }),
    fixtures.hb({ index: 3, state: 'CRASHED' }),
  ], T0 + 60 * S);
  const a = w.analyze(T0 + 60 * S);
  t.deepEqual(brief(a.requests), ['START app-1#1 missing', 'START app-1#2 missing', 'START app-1#3 missing']);
  t.like(a.apps.get('app-1'), { starting: 1, running: 0, missing: [1, 2, 3] });
});

test('missing: a scale-up is given a timeout from the change before its new indices are missing', (t) => {
  const w = new World();
  w.app({ instances: 1 });
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 })], T0);
  w.app({ instances: 3, changed_at: T0 });
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 })], T0 + 20 * S);
  t.deepEqual(w.round(T0 + 20 * S), []);
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 })], T0 + 30 * S);
  t.deepEqual(brief(w.round(T0 + 30 * S)), ['START app-1#1 missing', 'START app-1#2 missing']);
});

test('an app without a staged droplet is never started, but its extras are still stopped', (t) => {
  const w = new World();
  w.app({ instances: 1, package_state: 'PENDING' });
  w.heartbeat('dea-a', [fixtures.hb({ index: 3 })], T0);
  t.deepEqual(brief(w.round(T0)), ['STOP app-1-v1-3 extra_index']);
  t.deepEqual(w.analyze(T0).apps.get('app-1')?.missing, [0]);
});

// ---- crashes and back-off ------------------------------------------------------------------

/** Crashes instance `n` of index 0 at `at` (the DEA's exit, then its heartbeat). */
function crash(w: World, n: number, at: number): void {
  const id = `app-1-v1-0-${n}`;
  w.heartbeat('dea-a', [fixtures.hb({ instance_id: id })], at - 1);
  w.exit(fixtures.exited('CRASHED', { instance_id: id, crash_timestamp: at / 1000 }), at);
  w.heartbeat('dea-a', [fixtures.hb({ instance_id: id, state: 'CRASHED' })], at);
}

test('crashes: three immediate restarts, then 30 s doubling, and the index shows as flapping', (t) => {
  const w = new World();
  w.app({ instances: 1 });
  let at = T0;
  for (let n = 1; n <= 3; n++) {
    crash(w, n, at);
    const rs = w.round(at);
    t.deepEqual(brief(rs), ['START app-1#0 crashed'], `crash ${n} restarted at once`);
    t.is(rs[0]!.priority, PRIORITY.crash);
    t.deepEqual(w.analyze(at).apps.get('app-1')?.flapping, [], 'not flapping within the immediate restarts');
    at += 2 * S;
  }
  for (const [n, waitS] of [[4, 30], [5, 60], [6, 120], [7, 240], [8, 480], [9, 960], [10, 960]] as const) {
    crash(w, n, at);
    t.deepEqual(w.round(at), [], `crash ${n} waits`);
    const report = w.analyze(at).apps.get('app-1')!;
    t.deepEqual(report.flapping, [{ index: 0, version: 'v1', crash_count: n, since: T0, next_restart_at: at + waitS * S }]);
    t.deepEqual(report.missing, [], 'an index waiting out its back-off is flapping, not missing');
    t.deepEqual(w.round(at + waitS * S - 1), [], `crash ${n}: not before ${waitS} s`);
    t.deepEqual(brief(w.round(at + waitS * S)), ['START app-1#0 crashed'], `crash ${n}: restarted after ${waitS} s`);
    at += waitS * S + 2 * S;
  }
});

test('crashes: a repeated exit message for one instance is one crash', (t) => {
  const w = new World();
  w.app({ instances: 1 });
  for (let k = 0; k < 5; k++) w.exit(fixtures.exited('CRASHED', { instance_id: 'same' }), T0 + k);
  t.is(w.real.snapshot().crashes.get(crashKey('app-1', 'v1', 0))?.count, 1);
});

test('crashes: a heartbeat sent before the crash does not revive the instance', (t) => {
  const w = new World();
  w.app({ instances: 1 });
  w.exit(fixtures.exited('CRASHED'), T0);
  w.heartbeat('dea-a', [fixtures.hb({ state: 'RUNNING' })], T0 + 1);
  t.is(w.real.snapshot().instances[0]?.state, 'CRASHED');
  t.deepEqual(brief(w.round(T0 + 2)), ['START app-1#0 crashed']);
});

test('crashes: the count is forgotten once the index has run for the reset period', (t) => {
  const w = new World();
  w.app({ instances: 1 });
  for (let n = 1; n <= 5; n++) crash(w, n, T0 + n * S);
  t.is(w.analyze(T0 + 5 * S).apps.get('app-1')?.flapping[0]?.crash_count, 5);
  // It comes back and runs: still flapping until it has run the reset period.
  w.heartbeat('dea-a', [fixtures.hb({ instance_id: 'stable' })], T0 + 100 * S);
  w.heartbeat('dea-a', [fixtures.hb({ instance_id: 'stable' })], T0 + 399 * S);
  t.is(w.analyze(T0 + 399 * S).apps.get('app-1')?.flapping.length, 1);
  w.heartbeat('dea-a', [fixtures.hb({ instance_id: 'stable' })], T0 + 400 * S);
  t.deepEqual(w.analyze(T0 + 400 * S).apps.get('app-1')?.flapping, []);
  // The next crash is a first crash again: restarted at once.
  w.exit(fixtures.exited('CRASHED', { instance_id: 'stable' }), T0 + 401 * S);
  t.deepEqual(brief(w.round(T0 + 401 * S)), ['START app-1#0 crashed']);
});

test('crashes: a restart that never comes is asked again after a timeout, even in back-off', (t) => {
  const w = new World();
  w.app({ instances: 1 });
  for (let n = 1; n <= 4; n++) crash(w, n, T0);
  t.deepEqual(brief(w.round(T0 + 30 * S)), ['START app-1#0 crashed']);
  t.deepEqual(w.round(T0 + 59 * S), []);
  t.deepEqual(brief(w.round(T0 + 60 * S)), ['START app-1#0 missing']);
});

test('crashes of an old version do not hold back the current one', (t) => {
  const w = new World();
  w.app({ instances: 1, version: 'v2' });
  for (let n = 1; n <= 6; n++) w.exit(fixtures.exited('CRASHED', { version: 'v1', instance_id: `old-${n}` }), T0);
  t.deepEqual(brief(w.round(T0)), ['START app-1#0 missing']);
  t.deepEqual(w.analyze(T0).apps.get('app-1')?.flapping, []);
});

// ---- evacuation ----------------------------------------------------------------------------

test('evacuation: START the index elsewhere at once; STOP the evacuating one when the replacement runs', (t) => {
  const w = new World();
  w.app({ instances: 2 });
  const old = fixtures.hb({ index: 1, instance_id: 'old-1' });
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 }), old], T0);
  w.exit(fixtures.exited('DEA_EVACUATION', { index: 1, instance_id: 'old-1' }), T0 + S);
  const first = w.round(T0 + S);
  t.deepEqual(brief(first), ['START app-1#1 evacuating']);
  t.is(first[0]!.priority, PRIORITY.evacuation);
  t.deepEqual(w.analyze(T0 + S).apps.get('app-1')?.missing, [], 'an evacuating instance still serves');

  // The DEA's heartbeat says EVACUATING; the replacement starts elsewhere.
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 }), { ...old, state: 'EVACUATING' }], T0 + 2 * S);
  t.deepEqual(w.round(T0 + 2 * S), [], 'not asked twice');
  w.heartbeat('dea-b', [fixtures.hb({ index: 1, instance_id: 'new-1', state: 'STARTING' })], T0 + 3 * S);
  t.deepEqual(w.round(T0 + 3 * S), [], 'the replacement is not running yet');
  w.heartbeat('dea-b', [fixtures.hb({ index: 1, instance_id: 'new-1', state: 'RUNNING', state_timestamp: T0 / 1000 + 4 })], T0 + 4 * S);
  const second = w.round(T0 + 4 * S);
  t.deepEqual(brief(second), ['STOP old-1 evacuated'], 'the evacuating one is stopped, though it is the older');
  t.is(second[0]!.priority, PRIORITY.evacuation);
});

test('evacuation: an evacuating instance of an index beyond the count is simply stopped', (t) => {
  const w = new World();
  w.app({ instances: 1 });
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 }), fixtures.hb({ index: 1, state: 'EVACUATING' })], T0);
  t.deepEqual(brief(w.round(T0)), ['STOP app-1-v1-1 extra_index']);
});

test('evacuation: a START lost on the way is asked again after a timeout', (t) => {
  const w = new World();
  w.app({ instances: 1 });
  w.heartbeat('dea-a', [fixtures.hb({ state: 'EVACUATING' })], T0);
  t.deepEqual(brief(w.round(T0)), ['START app-1#0 evacuating']);
  w.heartbeat('dea-a', [fixtures.hb({ state: 'EVACUATING' })], T0 + 20 * S);
  t.deepEqual(w.round(T0 + 20 * S), []);
  w.heartbeat('dea-a', [fixtures.hb({ state: 'EVACUATING' })], T0 + 30 * S);
  t.deepEqual(brief(w.round(T0 + 30 * S)), ['START app-1#0 evacuating']);
});

// ---- extras --------------------------------------------------------------------------------

test('extra: an index at or beyond the desired count is stopped', (t) => {
  const w = new World();
  w.app({ instances: 2 });
  w.heartbeat('dea-a', [0, 1, 2, 3].map((index) => fixtures.hb({ index })), T0);
  const rs = w.round(T0);
  t.deepEqual(brief(rs), ['STOP app-1-v1-2 extra_index', 'STOP app-1-v1-3 extra_index']);
  t.true(rs.every((r) => r.priority === PRIORITY.stop && r.version === 'v1'));
});

test('extra: a scale to zero stops every instance', (t) => {
  const w = new World();
  w.app({ instances: 0 });
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 }), fixtures.hb({ index: 1 })], T0);
  t.deepEqual(brief(w.round(T0)), ['STOP app-1-v1-0 extra_index', 'STOP app-1-v1-1 extra_index']);
});

test('extra: every instance of a stopped app is stopped, once the quiet period is over', (t) => {
  const w = new World();
  w.app({ state: 'STOPPED', changed_at: T0 });
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 }), fixtures.hb({ index: 1, version: 'v0' })], T0 + S);
  t.deepEqual(w.round(T0 + S), [], 'the controller is stopping it itself');
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 }), fixtures.hb({ index: 1, version: 'v0' })], T0 + 5 * S);
  t.deepEqual(brief(w.round(T0 + 5 * S)), ['STOP app-1-v1-0 stopped_app', 'STOP app-1-v0-1 stopped_app']);
});

test('extra: an old version is stopped beyond the count at once, within it once the current version runs there', (t) => {
  const w = new World();
  w.app({ instances: 2, version: 'v2' });
  w.heartbeat('dea-a', [fixtures.hb({ version: 'v1', index: 0 }), fixtures.hb({ version: 'v1', index: 1 }), fixtures.hb({ version: 'v1', index: 2 })], T0);
  w.heartbeat('dea-b', [fixtures.hb({ version: 'v2', index: 0 }), fixtures.hb({ version: 'v2', index: 1, state: 'STARTING' })], T0);
  t.deepEqual(brief(w.round(T0)), ['STOP app-1-v1-0 old_version', 'STOP app-1-v1-2 old_version'], 'index 1 keeps serving until v2 runs there');
  w.heartbeat('dea-b', [fixtures.hb({ version: 'v2', index: 0 }), fixtures.hb({ version: 'v2', index: 1 })], T0 + S);
  t.deepEqual(brief(w.round(T0 + S)), ['STOP app-1-v1-1 old_version']);
});

test('extra: two instances of one index, the newer is stopped; RUNNING is kept over STARTING; two STARTING wait', (t) => {
  const w = new World();
  w.app({ instances: 3 });
  w.heartbeat('dea-a', [
    fixtures.hb({ index: 0, instance_id: 'a-old', state_timestamp: 100 }),
    fixtures.hb({ index: 1, instance_id: 'b-starting', state: 'STARTING', state_timestamp: 50 }),
    fixtures.hb({ index: 2, instance_id: 'c-1', state: 'STARTING' }),
  ], T0);
  w.heartbeat('dea-b', [
    fixtures.hb({ index: 0, instance_id: 'a-new', state_timestamp: 200 }),
    fixtures.hb({ index: 1, instance_id: 'b-running', state_timestamp: 300 }),
    fixtures.hb({ index: 2, instance_id: 'c-2', state: 'STARTING' }),
  ], T0);
  t.deepEqual(brief(w.round(T0)), ['STOP a-new duplicate', 'STOP b-starting duplicate']);
});

test('extra: a STOP is not repeated while the instance may still be stopping, and is after a timeout', (t) => {
  const w = new World();
  w.app({ instances: 1 });
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 }), fixtures.hb({ index: 1 })], T0);
  t.deepEqual(brief(w.round(T0)), ['STOP app-1-v1-1 extra_index']);
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 }), fixtures.hb({ index: 1 })], T0 + 10 * S);
  t.deepEqual(w.round(T0 + 10 * S), []);
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 }), fixtures.hb({ index: 1 })], T0 + 30 * S);
  t.deepEqual(brief(w.round(T0 + 30 * S)), ['STOP app-1-v1-1 extra_index']);
});

test('unknown app: stopped after the grace period, counted from the first heartbeat or the first full load', (t) => {
  const w = new World({ loadedAt: T0 + 30 * S });
  w.heartbeat('dea-a', [fixtures.hb({ app_id: 'ghost', index: 0 })], T0);
  w.heartbeat('dea-a', [fixtures.hb({ app_id: 'ghost', index: 0 })], T0 + 89 * S);
  t.deepEqual(w.round(T0 + 89 * S), [], 'the grace runs from the load, which came after the first heartbeat');
  t.like(w.analyze(T0 + 89 * S).apps.get('ghost'), { version: undefined, desired: 0, running: 1 });
  w.heartbeat('dea-a', [fixtures.hb({ app_id: 'ghost', index: 0 })], T0 + 90 * S);
  const rs = w.round(T0 + 90 * S);
  t.deepEqual(brief(rs), ['STOP ghost-v1-0 unknown_app']);
  t.like(rs[0], { app_id: 'ghost', version: 'v1' });
});

test('unknown app: never stopped before the controller has been read in full', (t) => {
  const w = new World({ loadedAt: undefined });
  w.heartbeat('dea-a', [fixtures.hb({ app_id: 'ghost' })], T0 + 3600 * S);
  t.deepEqual(w.round(T0 + 3600 * S), []);
});

// ---- quiet period, priorities, the rate limit ------------------------------------------------

test('an app changed in the last few seconds is left alone, and reported so', (t) => {
  const w = new World();
  w.app({ instances: 1, changed_at: T0 });
  w.heartbeat('dea-a', [fixtures.hb({ index: 0 }), fixtures.hb({ index: 5 })], T0);
  w.exit(fixtures.exited('CRASHED', { index: 0 }), T0);
  const a = w.analyze(T0 + 4 * S);
  t.deepEqual(a.requests, []);
  t.true(a.apps.get('app-1')!.quiet);
  t.deepEqual(brief(w.round(T0 + 5 * S)), ['START app-1#0 crashed', 'STOP app-1-v1-5 extra_index']);
});

test('priority: evacuations, then crashes, then missing, then stops; the rate limit keeps the most urgent', (t) => {
  const w = new World();
  w.app({ app_id: 'a-stop', instances: 0 });
  w.app({ app_id: 'b-missing', instances: 1 });
  w.app({ app_id: 'c-crash', instances: 1 });
  w.app({ app_id: 'd-evac', instances: 1 });
  w.heartbeat('dea-a', [fixtures.hb({ app_id: 'a-stop' }), fixtures.hb({ app_id: 'd-evac', state: 'EVACUATING' })], T0);
  w.exit(fixtures.exited('CRASHED', { app_id: 'c-crash', instance_id: 'c' }), T0);
  const all = w.analyze(T0);
  t.deepEqual(brief(all.requests), ['START d-evac#0 evacuating', 'START c-crash#0 crashed', 'START b-missing#0 missing', 'STOP a-stop-v1-0 extra_index']);
  t.is(all.deferred, 0);
  const limited = w.analyze(T0, 2);
  t.deepEqual(brief(limited.requests), ['START d-evac#0 evacuating', 'START c-crash#0 crashed']);
  t.is(limited.deferred, 2);
  t.deepEqual(w.analyze(T0, 0).requests, []);
});

test('within one priority the longest overdue goes first', (t) => {
  const w = new World();
  w.app({ app_id: 'z', instances: 1 });
  w.app({ app_id: 'a', instances: 1 });
  w.heartbeat('dea-a', [fixtures.hb({ app_id: 'z' })], T0);
  w.heartbeat('dea-b', [fixtures.hb({ app_id: 'a' })], T0 + 10 * S);
  t.deepEqual(brief(w.analyze(T0 + 60 * S).requests), ['START z#0 missing', 'START a#0 missing']);
});

// ---- properties ----------------------------------------------------------------------------

const APPS = ['a', 'b', 'c'];
const arbApp = (appId: string) =>
  fc.record({
    app_id: fc.constant(appId),
    name: fc.constant(appId),
    version: fc.constantFrom('v1', 'v2'),
    instances: fc.integer({ min: 0, max: 4 }),
    state: fc.constantFrom('STARTED' as const, 'STARTED' as const, 'STOPPED' as const),
    package_state: fc.constantFrom('STAGED', 'STAGED', 'PENDING'),
    changed_at: fc.option(fc.integer({ min: T0 - 20 * S, max: T0 }), { nil: undefined }),
  });
const arbInstance = fc
  .record({
    app_id: fc.constantFrom(...APPS, 'ghost'),
    version: fc.constantFrom('v1', 'v2'),
    index: fc.integer({ min: 0, max: 5 }),
    state: fc.constantFrom<InstanceState>('STARTING', 'RUNNING', 'RUNNING', 'CRASHED', 'STOPPING', 'EVACUATING'),
    state_timestamp: fc.integer({ min: 0, max: 1000 }),
    heard_ago: fc.integer({ min: 0, max: 60 * S }),
    first_ago: fc.integer({ min: 0, max: 200 * S }),
    running_ago: fc.option(fc.integer({ min: 0, max: 600 * S }), { nil: undefined }),
  })
  .map((r) => r);
const arbCrash = fc.record({
  app_id: fc.constantFrom(...APPS),
  version: fc.constantFrom('v1', 'v2'),
  index: fc.integer({ min: 0, max: 5 }),
  count: fc.integer({ min: 1, max: 12 }),
  last_ago: fc.integer({ min: 0, max: 2000 * S }),
});
const arbWorld = fc.record({
  apps: fc.tuple(...APPS.map((a) => fc.option(arbApp(a), { nil: undefined }))),
  instances: fc.array(arbInstance, { maxLength: 14 }),
  crashes: fc.array(arbCrash, { maxLength: 5 }),
  startsAsked: fc.array(fc.tuple(fc.constantFrom(...APPS), fc.constantFrom('v1', 'v2'), fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 60 * S })), { maxLength: 4 }),
  listeningAgo: fc.integer({ min: 0, max: 100 * S }),
  loaded: fc.boolean(),
  budget: fc.integer({ min: 0, max: 25 }),
});
type ArbWorld = typeof arbWorld extends fc.Arbitrary<infer W> ? W : never;

function build(wd: ArbWorld, now: number) {
  const apps = new Map<string, DesiredApp>();
  for (const a of wd.apps) if (a) apps.set(a.app_id, a);
  const instances = wd.instances.map((r, n) =>
    fixtures.instance({
      app_id: r.app_id, version: r.version, index: r.index, state: r.state, state_timestamp: r.state_timestamp, instance_id: `i${n}`,
      heard_at: now - r.heard_ago, first_heard_at: now - r.heard_ago - r.first_ago,
      active_heard_at: r.state === 'CRASHED' || r.state === 'STOPPING' ? now - r.heard_ago - r.first_ago : now - r.heard_ago,
      running_since: r.state === 'RUNNING' && r.running_ago !== undefined ? now - r.running_ago : undefined,
      evacuating_since: r.state === 'EVACUATING' ? now - r.heard_ago - 1 : undefined,
    }),
  );
  const crashes = new Map<string, CrashRecord>();
  for (const c of wd.crashes) {
    crashes.set(crashKey(c.app_id, c.version, c.index), { ...c, first_crash_at: now - c.last_ago - S, last_crash_at: now - c.last_ago, instance_ids: [] });
  }
  const real: RealSnapshot = { instances, crashes, listening_since: now - wd.listeningAgo };
  const starts = new Map(wd.startsAsked.map(([a, v, i, ago]) => [startKey(a, v, i), now - ago]));
  return { intended: { apps, loaded_at: wd.loaded ? now - 300 * S : undefined }, real, asked: { starts, stops: new Map<string, number>() } };
}

const run = (wd: ArbWorld, now: number, budget = wd.budget, asked?: ReturnType<typeof build>['asked']) => {
  const w = build(wd, now);
  return analyze(w.intended, w.real, now, { asked: asked ?? w.asked, policy, budget });
};

test('property: never START and STOP the same index of an app in one round', (t) => {
  fc.assert(
    fc.property(arbWorld, (wd) => {
      const { requests } = run(wd, T0, 1000);
      const started = new Set(requests.filter((r) => r.op === 'START').map((r) => `${r.app_id}/${r.index}`));
      return requests.every((r) => r.op === 'START' || !started.has(`${r.app_id}/${r.index}`));
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('property: never more requests than the budget; what is held back is counted; a smaller budget sends a prefix', (t) => {
  fc.assert(
    fc.property(arbWorld, (wd) => {
      const full = run(wd, T0, 1000);
      const limited = run(wd, T0);
      if (limited.requests.length > wd.budget) return false;
      if (limited.requests.length + limited.deferred !== full.requests.length) return false;
      return JSON.stringify(limited.requests) === JSON.stringify(full.requests.slice(0, limited.requests.length));
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('property: requests come in priority order, each at most once, and the same world gives the same answer', (t) => {
  fc.assert(
    fc.property(arbWorld, (wd) => {
      const a = run(wd, T0, 1000);
      const b = run(wd, T0, 1000);
      if (JSON.stringify(a.requests) !== JSON.stringify(b.requests)) return false;
      const keys = a.requests.map((r) => (r.op === 'START' ? startKey(r.app_id, r.version, r.index) : r.instance_id));
      if (new Set(keys).size !== keys.length) return false;
      return a.requests.every((r, i) => i === 0 || a.requests[i - 1]!.priority <= r.priority);
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('property: every START is for a desired index of a started, staged, settled app; every STOP names a live instance heard lately', (t) => {
  fc.assert(
    fc.property(arbWorld, (wd) => {
      const w = build(wd, T0);
      const { requests } = analyze(w.intended, w.real, T0, { asked: w.asked, policy, budget: 1000 });
      return requests.every((r) => {
        const app = w.intended.apps.get(r.app_id);
        if (r.op === 'START') {
          return (
            app !== undefined && app.state === 'STARTED' && app.package_state === 'STAGED' && r.version === app.version && r.index < app.instances &&
            (app.changed_at === undefined || T0 - app.changed_at >= policy.quiet_period_ms)
          );
        }
        const i = w.real.instances.find((x) => x.instance_id === r.instance_id);
        return i !== undefined && ['STARTING', 'RUNNING', 'EVACUATING'].includes(i.state) && T0 - i.heard_at < policy.heartbeat_timeout_ms && r.version === i.version;
      });
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('property: once sent, a request is not sent again by a later round while nothing else changes (within a timeout)', (t) => {
  fc.assert(
    fc.property(arbWorld, fc.integer({ min: 1, max: 29 * S }), (wd, later) => {
      const w = build(wd, T0);
      const first = analyze(w.intended, w.real, T0, { asked: w.asked, policy, budget: 1000 });
      const memory = new AskedMemory();
      for (const [k, at] of w.asked.starts) {
        const [a, v, i] = k.split('/');
        memory.record({ op: 'START', app_id: a!, version: v!, indices: [Number(i)], reason: 'x' }, at);
      }
      for (const r of first.requests) {
        memory.record(r.op === 'START' ? { op: 'START', app_id: r.app_id, version: r.version, indices: [r.index], reason: r.reason } : { op: 'STOP', app_id: r.app_id, version: r.version, instance_ids: [r.instance_id], reason: r.reason }, T0);
      }
      // Time passes; heartbeats keep coming for whatever was heard recently; nothing else changes.
      const real: RealSnapshot = {
        ...w.real,
        instances: w.real.instances.map((i) => ({ ...i, heard_at: i.heard_at + later, active_heard_at: ['STARTING', 'RUNNING', 'EVACUATING'].includes(i.state) ? (i.active_heard_at ?? 0) + later : i.active_heard_at })),
      };
      const second = analyze(w.intended, real, T0 + later, { asked: memory.snapshot(), policy, budget: 1000 });
      const sent = new Set(first.requests.map((r) => (r.op === 'START' ? `S ${startKey(r.app_id, r.version, r.index)}` : `X ${r.instance_id}`)));
      return second.requests.every((r) => !sent.has(r.op === 'START' ? `S ${startKey(r.app_id, r.version, r.index)}` : `X ${r.instance_id}`));
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('property: an index waiting out its back-off is never started before its time', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 4, max: 15 }), fc.integer({ min: 0, max: 2000 * S }), fc.integer({ min: 1, max: 3 }), (count, elapsed, instances) => {
      const w = new World();
      w.app({ instances });
      const last = T0;
      for (let n = 1; n <= count; n++) w.exit(fixtures.exited('CRASHED', { instance_id: `c${n}` }), n === count ? last : last - (count - n));
      // The other indices run, so only index 0 is judged.
      const others = Array.from({ length: instances - 1 }, (_, k) => fixtures.hb({ index: k + 1 }));
      w.heartbeat('dea-a', others, T0 + elapsed);
      const due = last + Math.min(policy.backoff.base_delay_ms * 2 ** (count - 4), policy.backoff.max_delay_ms);
      const starts = w.analyze(T0 + elapsed).requests.filter((r) => r.op === 'START' && r.index === 0);
      return T0 + elapsed < due ? starts.length === 0 : starts.length === 1 && starts[0]!.reason === 'crashed';
    }),
    { numRuns: 300 },
  );
  t.pass();
});

// ---- convergence ---------------------------------------------------------------------------

/**
 * A simulated world the HM's requests act on: DEAs holding instances, which heartbeat what
 * they hold each round; a START makes a RUNNING instance appear, a STOP makes one disappear.
 * A DEA reports a CRASHED or STOPPING instance once and then forgets it, and a STARTING one
 * is RUNNING by the next round. Crash back-off stays out: no exits, so no crash records.
 */
interface SimInstance {
  instance_id: string;
  app_id: string;
  version: string;
  index: number;
  state: InstanceState;
  state_timestamp: number;
  dea: string;
}

const SIM_DEAS = ['dea-a', 'dea-b'];
/** One round per step: past the heartbeat timeout and the quiet period. */
const SIM_STEP = policy.heartbeat_timeout_ms + policy.quiet_period_ms + S;
/** Stops of extras, then missing STARTs, then what waits on them (old versions, evacuations, the unknown app's grace), with room to spare. */
const SIM_ROUNDS = 8;

const arbSimWorld = fc.record({
  // Only staged apps: a started app without a droplet cannot be brought to its desired state.
  apps: fc.tuple(...APPS.map((a) => fc.option(arbApp(a).map((app) => ({ ...app, package_state: 'STAGED' })), { nil: undefined }))),
  instances: fc.array(
    fc.record({
      app_id: fc.constantFrom(...APPS, 'ghost'),
      version: fc.constantFrom('v1', 'v2'),
      index: fc.integer({ min: 0, max: 5 }),
      state: fc.constantFrom<InstanceState>('STARTING', 'RUNNING', 'RUNNING', 'CRASHED', 'STOPPING', 'EVACUATING'),
      state_timestamp: fc.integer({ min: 0, max: 1000 }),
      dea: fc.constantFrom(...SIM_DEAS),
    }),
    { maxLength: 14 },
  ),
});

const upState = (s: InstanceState) => s === 'STARTING' || s === 'RUNNING';

function simulate(wd: typeof arbSimWorld extends fc.Arbitrary<infer W> ? W : never): string | undefined {
  const w = new World({ listeningSince: T0, loadedAt: T0 - 300 * S });
  for (const a of wd.apps) if (a) w.apps.set(a.app_id, a);
  let world: SimInstance[] = wd.instances.map((i, n) => ({ ...i, instance_id: `seed-${n}` }));
  let made = 0;
  let now = T0;
  let lastRequests: PlannedRequest[] = [];
  const wanted = (i: SimInstance): boolean => {
    const app = w.apps.get(i.app_id);
    return app !== undefined && app.state === 'STARTED' && i.version === app.version && i.index < app.instances;
  };
  const upAt = (appId: string, version: string, index: number) =>
    world.filter((x) => x.app_id === appId && x.version === version && x.index === index && upState(x.state));

  for (let round = 0; round < SIM_ROUNDS; round++) {
    for (const dea of SIM_DEAS) {
      w.heartbeat(dea, world.filter((i) => i.dea === dea).map(({ dea: _, ...hb }) => fixtures.hb(hb)), now);
    }
    const requests = w.round(now);
    lastRequests = requests;
    const at = `round ${round}: ${JSON.stringify(brief(requests))}`;

    // Never more STARTs in flight for an app than its desired count, none for an index already up.
    for (const app of w.apps.values()) {
      const starts = requests.filter((r) => r.op === 'START' && r.app_id === app.app_id);
      if (starts.length > (app.state === 'STARTED' ? app.instances : 0)) return `${at}: more STARTs than ${app.instances} desired`;
      if (new Set(starts.map((r) => r.index)).size !== starts.length) return `${at}: one index started twice`;
      for (const r of starts) if (upAt(app.app_id, app.version, r.index).length > 0) return `${at}: START of index ${r.index} that is up`;
    }
    // Never STOP a healthy wanted instance: RUNNING, current version, in range, alone at its index.
    const stopped = new Set(requests.flatMap((r) => (r.op === 'STOP' ? [r.instance_id] : [])));
    for (const i of world) {
      if (!stopped.has(i.instance_id) || !wanted(i) || i.state !== 'RUNNING') continue;
      const peers = upAt(i.app_id, i.version, i.index);
      if (peers.length === 1) return `${at}: STOP of healthy ${i.instance_id}`;
      if (peers.every((p) => stopped.has(p.instance_id))) return `${at}: every instance of ${i.app_id}#${i.index} stopped`;
    }

    // The controller carries the requests out.
    world = world.filter((i) => !stopped.has(i.instance_id));
    for (const r of requests) {
      if (r.op !== 'START') continue;
      made++;
      world.push({ instance_id: `made-${made}`, app_id: r.app_id, version: r.version, index: r.index, state: 'RUNNING', state_timestamp: now / 1000, dea: SIM_DEAS[made % SIM_DEAS.length]! });
    }
    // The DEAs: a crashed or stopping instance reported once is forgotten; a starting one runs.
    world = world.filter((i) => i.state !== 'CRASHED' && i.state !== 'STOPPING').map((i) => (i.state === 'STARTING' ? { ...i, state: 'RUNNING' } : i));
    now += SIM_STEP;
  }

  if (lastRequests.length > 0) return `still asking in the last round: ${JSON.stringify(brief(lastRequests))}`;
  const expected = [...w.apps.values()]
    .filter((a) => a.state === 'STARTED')
    .flatMap((a) => Array.from({ length: a.instances }, (_, index) => `${a.app_id}/${a.version}/${index}/RUNNING`))
    .sort();
  const actual = world.map((i) => `${i.app_id}/${i.version}/${i.index}/${i.state}`).sort();
  return JSON.stringify(actual) === JSON.stringify(expected) ? undefined : `after ${SIM_ROUNDS} rounds: ${JSON.stringify(actual)}, wanted ${JSON.stringify(expected)}`;
}

test('property: carrying out each round\'s requests converges on exactly the desired instances, never stopping a healthy one', (t) => {
  fc.assert(
    fc.property(arbSimWorld, (wd) => {
      const problem = simulate(wd);
      if (problem) throw new Error(problem);
    }),
    { numRuns: 400 },
  );
  t.pass();
});

// Crash back-off and the request rate limit of the health manager.
import test from 'ava';
import fc from 'fast-check';
import { backoffSchedule, crashStatus, isFlapping, restartDelayMs } from '../../kernel/health-manager/backoff.ts';
import { TokenBucket } from '../../kernel/health-manager/rate-limit.ts';
import type { BackoffPolicy, CrashRecord, ObservedInstance } from '../../kernel/health-manager/types.ts';

const S = 1000;
const policy: BackoffPolicy = { immediate_restarts: 3, base_delay_ms: 30 * S, max_delay_ms: 960 * S, reset_after_ms: 300 * S };

const record = (over: Partial<CrashRecord> = {}): CrashRecord => ({
  app_id: 'a', version: 'v1', index: 0, count: 1, first_crash_at: 0, last_crash_at: 1000 * S, instance_ids: [], ...over,
});
const running = (since: number | undefined, over: Partial<ObservedInstance> = {}): ObservedInstance => ({
  app_id: 'a', version: 'v1', instance_id: 'i', index: 0, state: 'RUNNING', state_timestamp: 0, dea_id: 'd',
  first_heard_at: 0, heard_at: 0, active_heard_at: 0, running_since: since, evacuating_since: undefined, ...over,
});

test('the schedule: 3 at once, then 30 s doubling to a 16 min cap', (t) => {
  t.deepEqual(backoffSchedule(11, policy).map((ms) => ms / S), [0, 0, 0, 30, 60, 120, 240, 480, 960, 960, 960]);
  t.is(restartDelayMs(10_000, policy), 960 * S, 'no overflow far past the cap');
  t.deepEqual(backoffSchedule(3, { ...policy, immediate_restarts: 0 }).map((ms) => ms / S), [30, 60, 120]);
});

test('property: the delay never shrinks with more crashes and never passes the cap', (t) => {
  fc.assert(
    fc.property(
      fc.record({ immediate_restarts: fc.integer({ min: 0, max: 10 }), base_delay_ms: fc.integer({ min: 1, max: 100_000 }), extra: fc.integer({ min: 0, max: 10_000_000 }) }),
      fc.integer({ min: 0, max: 200 }),
      (p, n) => {
        const pol = { ...p, max_delay_ms: p.base_delay_ms + p.extra, reset_after_ms: 1 };
        const a = restartDelayMs(n, pol);
        const b = restartDelayMs(n + 1, pol);
        return a <= b && b <= pol.max_delay_ms && (n + 1 > pol.immediate_restarts ? b >= pol.base_delay_ms : b === 0);
      },
    ),
  );
  t.pass();
});

test('flapping: past the immediate restarts', (t) => {
  t.false(isFlapping(3, policy));
  t.true(isFlapping(4, policy));
});

test('crash status: the restart time, and a reset once the index has run the reset period since the last crash', (t) => {
  const r = record({ count: 5, last_crash_at: 1000 * S });
  t.deepEqual(crashStatus(r, [], 1000 * S, policy), { count: 5, flapping: true, restart_at: 1060 * S });
  t.is(crashStatus(undefined, [], 0, policy), undefined);
  // Running since after the crash, but not yet for the whole period.
  t.truthy(crashStatus(r, [running(1001 * S)], 1300 * S, policy));
  t.is(crashStatus(r, [running(1001 * S)], 1301 * S, policy), undefined);
  // Running since before the last crash is another (older) instance: no reset.
  t.truthy(crashStatus(r, [running(900 * S)], 5000 * S, policy));
  // Another version, or not RUNNING, does not count.
  t.truthy(crashStatus(r, [running(1001 * S, { version: 'v2' })], 5000 * S, policy));
  t.truthy(crashStatus(r, [running(1001 * S, { state: 'STARTING' })], 5000 * S, policy));
});

test('rate limit: a burst at once, then the steady rate; never negative, never above the burst', (t) => {
  const b = new TokenBucket(10, 50, 0);
  t.is(b.available(0), 50);
  b.take(50, 0);
  t.is(b.available(0), 0);
  t.is(b.available(100), 1);
  t.is(b.available(1000), 10);
  b.take(100, 1000);
  t.is(b.available(1000), 0);
  t.is(b.available(60_000), 50);
  t.is(b.available(30_000), 50, 'a clock going backwards adds nothing');
});

test('property: over any window, no more than burst + rate × time goes out', (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 100 })), { maxLength: 60 }), (steps) => {
      const b = new TokenBucket(5, 20, 0);
      let now = 0;
      let sent = 0;
      for (const [dt, want] of steps) {
        now += dt;
        const n = Math.min(want, b.available(now));
        b.take(n, now);
        sent += n;
      }
      return sent <= 20 + Math.floor((now / 1000) * 5);
    }),
  );
  t.pass();
});

import test from 'ava';
import fc from 'fast-check';
import { isFailing, recentCrashes, restartDelay, type RestartPolicy } from '../../orchestrator/agent/backoff.ts';

const policy: RestartPolicy = { baseMs: 100, maxMs: 1000, failingCrashes: 5, windowMs: 60_000 };

test('the delay doubles with each crash in the window, up to the cap', (t) => {
  t.deepEqual([1, 2, 3, 4, 5, 6].map((n) => restartDelay(policy, n)), [100, 200, 400, 800, 1000, 1000]);
  t.is(restartDelay(policy, 0), 100);
});

test('the delay is always within [base, max] and never shrinks as crashes grow', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 10_000 }), (n) => {
      const d = restartDelay(policy, n);
      return d >= policy.baseMs && d <= policy.maxMs && restartDelay(policy, n + 1) >= d;
    }),
  );
  t.pass();
});

test('only crashes inside the window count; five make it failing', (t) => {
  t.deepEqual(recentCrashes([0, 50_000, 100_000, 119_999], 120_000, 60_000), [100_000, 119_999]);
  t.false(isFailing(policy, 4));
  t.true(isFailing(policy, 5));
});

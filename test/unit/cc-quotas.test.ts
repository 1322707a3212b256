// Quotas, pure (quotas.ts): what counts toward usage (only started apps' memory × instances and
// instances; every route), and whether a change fits the space's and the org's quota — by
// example, with the refusal's exact words, and as properties over random usages and changes.
import test from 'ava';
import fc from 'fast-check';
import type { QuotaLimits } from '../../kernel/cloud-controller/db/mod.ts';
import { checkQuotas, contribution, delta, NO_USAGE, usageOf, type AppliedQuota, type Usage } from '../../kernel/cloud-controller/quotas.ts';
import { limitsOf } from '../../kernel/cloud-controller/api/quotas.ts';

const unlimited: QuotaLimits = { total_memory_in_mb: null, total_instances: null, total_routes: null, total_service_instances: null };
const quota = (scope: AppliedQuota['scope'], name: string, limits: Partial<QuotaLimits>, usage: Partial<Usage> = {}): AppliedQuota => ({
  scope,
  name,
  limits: { ...unlimited, ...limits },
  usage: { ...NO_USAGE, ...usage },
});

test('usage counts started processes only: memory × instances, and every route', (t) => {
  const u = usageOf(
    [
      { started: true, instances: 3, memory_in_mb: 256 },
      { started: false, instances: 10, memory_in_mb: 1024 },
      { started: true, instances: 1, memory_in_mb: 512 },
    ],
    4,
  );
  t.deepEqual(u, { memory_in_mb: 1280, instances: 4, routes: 4 });
  t.deepEqual(contribution({ started: false, instances: 2, memory_in_mb: 64 }), NO_USAGE);
});

test('a start past the space memory quota is refused naming the quota and both numbers', (t) => {
  const refusal = checkQuotas([quota('space', 'small', { total_memory_in_mb: 1024 }, { memory_in_mb: 512 })], { ...NO_USAGE, memory_in_mb: 1024, instances: 1 });
  t.deepEqual(refusal, { cfName: 'SpaceQuotaMemoryLimitExceeded', message: "memory quota exceeded: space quota 'small' allows 1024 MB, the space would use 1536 MB" });
});

test('the space quota is checked before the org quota; memory before instances before routes', (t) => {
  const quotas = [quota('organization', 'org', { total_memory_in_mb: 100, total_instances: 1 }), quota('space', 'sp', { total_instances: 1, total_routes: 0 })];
  const r = checkQuotas(quotas, { memory_in_mb: 200, instances: 2, routes: 1 });
  t.is(r?.cfName, 'SpaceQuotaInstanceLimitExceeded');
  t.is(r?.message, "instance quota exceeded: space quota 'sp' allows 1 instance, the space would use 2 instances");
  t.is(checkQuotas([quota('organization', 'org', { total_memory_in_mb: 100 })], { memory_in_mb: 200, instances: 2, routes: 0 })?.cfName, 'AppMemoryQuotaExceeded');
  t.is(checkQuotas([quota('organization', 'org', { total_instances: 0 })], { ...NO_USAGE, instances: 1 })?.cfName, 'QuotaInstanceLimitExceeded');
  t.is(checkQuotas([quota('organization', 'o', { total_routes: 2 }, { routes: 2 })], { ...NO_USAGE, routes: 1 })?.message, "route quota exceeded: organization quota 'o' allows 2 routes, the organization would use 3 routes");
});

test('what a change does not increase is never refused, even past a lowered limit', (t) => {
  const over = quota('space', 'tight', { total_memory_in_mb: 100, total_instances: 1 }, { memory_in_mb: 500, instances: 5 });
  t.is(checkQuotas([over], { memory_in_mb: -200, instances: -2, routes: 0 }), undefined, 'scaling down');
  t.is(checkQuotas([over], NO_USAGE), undefined);
  t.is(checkQuotas([], { memory_in_mb: 1e9, instances: 1e6, routes: 1e6 }), undefined, 'no quota: unlimited');
});

test('delta: what a scale adds', (t) => {
  const before = contribution({ started: true, instances: 2, memory_in_mb: 256 });
  const after = contribution({ started: true, instances: 3, memory_in_mb: 512 });
  t.deepEqual(delta(before, after), { memory_in_mb: 1024, instances: 1, routes: 0 });
});

test('limitsOf: a new quota is unlimited where the body is silent; a patch keeps what it does not name', (t) => {
  t.deepEqual(limitsOf({ apps: { total_memory_in_mb: 1024 } }), { ...unlimited, total_memory_in_mb: 1024 });
  const current = { ...unlimited, total_memory_in_mb: 1024, total_routes: 5 };
  t.deepEqual(limitsOf({ routes: { total_routes: null }, apps: { total_instances: 3 } }, current), { ...unlimited, total_memory_in_mb: 1024, total_instances: 3 });
});

const nat = fc.integer({ min: 0, max: 100_000 });
const limit = fc.option(nat, { nil: null });
const usage = fc.record({ memory_in_mb: nat, instances: nat, routes: nat });
const change = fc.record({ memory_in_mb: fc.integer({ min: -1000, max: 1000 }), instances: fc.integer({ min: -10, max: 10 }), routes: fc.integer({ min: -3, max: 3 }) });
const applied = fc.record({
  scope: fc.constantFrom('space' as const, 'organization' as const),
  name: fc.string({ minLength: 1, maxLength: 8 }),
  limits: fc.record({ total_memory_in_mb: limit, total_instances: limit, total_routes: limit, total_service_instances: limit }),
  usage,
});

test('property: accepted exactly when every increased resource stays within every limit', (t) => {
  fc.assert(
    fc.property(fc.array(applied, { maxLength: 2 }), change, (quotas, c) => {
      const fits = quotas.every((q) =>
        (['memory_in_mb', 'instances', 'routes'] as const).every((r) => {
          const l = q.limits[r === 'memory_in_mb' ? 'total_memory_in_mb' : r === 'instances' ? 'total_instances' : 'total_routes'];
          return l === null || c[r] <= 0 || q.usage[r] + c[r] <= l;
        }),
      );
      const refusal = checkQuotas(quotas, c);
      if (fits !== (refusal === undefined)) return false;
      // A refusal names a quota that was given, and the number it would reach.
      return refusal === undefined || quotas.some((q) => refusal.message.includes(`${q.scope} quota '${q.name}'`));
    }),
  );
  t.pass();
});

test('property: the usage of started processes is the sum of their contributions', (t) => {
  const proc = fc.record({ started: fc.boolean(), instances: fc.integer({ min: 0, max: 100 }), memory_in_mb: fc.integer({ min: 1, max: 4096 }) });
  fc.assert(
    fc.property(fc.array(proc, { maxLength: 10 }), (ps) => {
      const whole = usageOf(ps, 0);
      const summed = ps.map(contribution).reduce((a, b) => ({ memory_in_mb: a.memory_in_mb + b.memory_in_mb, instances: a.instances + b.instances, routes: 0 }), NO_USAGE);
      return whole.memory_in_mb === summed.memory_in_mb && whole.instances === summed.instances;
    }),
  );
  t.pass();
});

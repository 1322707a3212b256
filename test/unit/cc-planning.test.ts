// The cloud controller's pure planning: scaling, rolling order, the health managers'
// agreement rules, route names, per-instance stats and which plan changes a service instance may make.
import test from 'ava';
import fc from 'fast-check';
import type { DeaFindDropletReply, HmRequest } from '../../kernel/bus/mod.ts';
import { decideStart, decideStop, type DesiredApp } from '../../kernel/cloud-controller/hm-requests.ts';
import { invalidHost, invalidPath, isReserved, routeUri, uriTooLong } from '../../kernel/cloud-controller/route-names.ts';
import { planProcessChange, planScale, rollingOrder } from '../../kernel/cloud-controller/scaling.ts';
import { refusePlanChange, type PlanChain } from '../../kernel/cloud-controller/services/operations.ts';
import { instanceStats } from '../../kernel/cloud-controller/stats.ts';

test('scaling up starts the new indices, scaling down stops the highest', (t) => {
  t.deepEqual(planScale(1, 3), { start: [1, 2], stop: [] });
  t.deepEqual(planScale(3, 1), { start: [], stop: [1, 2] });
  t.deepEqual(planScale(2, 2), { start: [], stop: [] });
  t.deepEqual(planScale(0, 1), { start: [0], stop: [] });
  t.throws(() => planScale(-1, 2), { instanceOf: RangeError });
});

test('after any scale the indices are exactly 0…n-1 (property)', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 200 }), (from, to) => {
      const plan = planScale(from, to);
      const running = new Set(Array.from({ length: from }, (_, i) => i));
      for (const i of plan.stop) running.delete(i);
      for (const i of plan.start) {
        if (running.has(i)) return false;
        running.add(i);
      }
      return running.size === to && [...running].every((i) => i < to) && (plan.start.length === 0 || plan.stop.length === 0);
    }),
  );
  t.pass();
});

test('process changes: count → scale, limits → restart, stopped apps → nothing', (t) => {
  const shape = { instances: 2, memory_in_mb: 256, disk_in_mb: 1024 };
  t.deepEqual(planProcessChange(false, shape, { ...shape, instances: 5 }), { kind: 'none' });
  t.deepEqual(planProcessChange(true, shape, { ...shape, instances: 3 }), { kind: 'scale', plan: { start: [2], stop: [] } });
  t.deepEqual(planProcessChange(true, shape, { ...shape, memory_in_mb: 512 }), { kind: 'restart' });
  t.deepEqual(planProcessChange(true, shape, { ...shape, disk_in_mb: 2048, instances: 1 }), { kind: 'restart' });
  t.deepEqual(planProcessChange(true, shape, shape), { kind: 'none' });
  t.deepEqual(rollingOrder(3), [0, 1, 2]);
});

const app = (over: Partial<DesiredApp> = {}): DesiredApp => ({ state: 'STARTED', version: 'v2', instances: 3, has_droplet: true, rolling: false, ...over });
const req = (over: Partial<HmRequest>): HmRequest => ({ op: 'START', app_id: 'a', version: 'v2', reason: 'missing', ...over }) as HmRequest;

test('hm START is agreed only for a started app at its current version and indices below its count', (t) => {
  t.deepEqual(decideStart(app(), req({ indices: [1] })), { act: true, indices: [1] });
  t.deepEqual(decideStart(app(), req({ indices: [2, 1, 2] })), { act: true, indices: [1, 2] });
  t.like(decideStart(app(), req({ indices: [1, 5] })), { act: true, indices: [1] });
  t.like(decideStart(app(), req({ indices: [3] })), { act: false });
  t.like(decideStart(app(), req({ version: 'v1', indices: [0] })), { act: false });
  t.like(decideStart(app({ state: 'STOPPED' }), req({ indices: [0] })), { act: false });
  t.like(decideStart(app({ has_droplet: false }), req({ indices: [0] })), { act: false });
  t.like(decideStart(app({ rolling: true }), req({ indices: [0] })), { act: false });
  t.like(decideStart(undefined, req({ indices: [0] })), { act: false });
  t.like(decideStart(app(), req({})), { act: false });
});

test('hm START never starts an index at or beyond the desired count (property)', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 10 }), fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 10 }), (instances, indices) => {
      const d = decideStart(app({ instances }), req({ indices }));
      return !d.act || (d.indices ?? []).every((i) => i < instances && indices.includes(i));
    }),
  );
  t.pass();
});

const stop = (over: Partial<HmRequest>): HmRequest => req({ op: 'STOP', reason: 'extra', ...over });
const seen = (instance_id: string, index: number, version = 'v2', state = 'RUNNING') => ({ instance_id, index, version, state });

test('hm STOP is agreed only for extra instances', (t) => {
  t.deepEqual(decideStop(app(), stop({ indices: [3, 4] })), { act: true, indices: [3, 4], version: 'v2' });
  t.deepEqual(decideStop(app(), stop({ indices: [1, 3] })), { act: true, indices: [3], version: 'v2' });
  t.like(decideStop(app(), stop({ indices: [0, 2] })), { act: false });
  t.deepEqual(decideStop(app(), stop({ version: 'v1', indices: [0] })), { act: true, indices: [0], version: 'v1' });
  t.deepEqual(decideStop(app({ state: 'STOPPED' }), stop({ indices: [0] })), { act: true, indices: [0], version: 'v2' });
  t.deepEqual(decideStop(undefined, stop({ instance_ids: ['x'] })), { act: true, instance_ids: ['x'] });
  t.deepEqual(decideStop(app(), stop({ version: 'v1' })), { act: true, version: 'v1' });
  t.like(decideStop(app(), stop({})), { act: false });
  t.like(decideStop(app({ rolling: true }), stop({ version: 'v1', indices: [0] })), { act: false });
});

test('hm STOP by instance id stops duplicates, stale and extra instances, never the only one of an index', (t) => {
  const observed = [seen('a0', 0), seen('b0', 0, 'v2', 'EVACUATING'), seen('a1', 1), seen('old', 2, 'v1'), seen('x5', 5)];
  t.deepEqual(decideStop(app(), stop({ instance_ids: ['b0'] }), observed), { act: true, instance_ids: ['b0'] }, 'the evacuating duplicate');
  t.deepEqual(decideStop(app(), stop({ instance_ids: ['old', 'x5'] }), observed), { act: true, instance_ids: ['old', 'x5'] });
  t.like(decideStop(app(), stop({ instance_ids: ['a1'] }), observed), { act: false }, 'the only instance of index 1');
  t.like(decideStop(app(), stop({ instance_ids: ['unknown'] }), observed), { act: false });
  t.like(decideStop(app(), stop({ instance_ids: ['a1', 'x5'] }), observed), { act: true, instance_ids: ['x5'] });
});

test('route hosts and paths', (t) => {
  t.is(invalidHost('my-app'), null);
  t.is(invalidHost(''), null);
  t.truthy(invalidHost('-app'));
  t.truthy(invalidHost('app-'));
  t.truthy(invalidHost('My_App'));
  t.truthy(invalidHost('a.b'));
  t.truthy(invalidHost('a'.repeat(64)));
  t.is(invalidHost('a'.repeat(63)), null);
  t.is(invalidPath(''), null);
  t.is(invalidPath('/v1/api'), null);
  t.truthy(invalidPath('v1'));
  t.truthy(invalidPath('/'));
  t.truthy(invalidPath('/a?b'));
  t.truthy(invalidPath('/a/../b'));
  t.true(isReserved('api', 'sys.example', 'sys.example', ['api']));
  t.true(isReserved('', 'sys.example', 'sys.example', ['api']));
  t.false(isReserved('api', 'apps.example', 'sys.example', ['api']));
  t.false(isReserved('shop', 'sys.example', 'sys.example', ['api']));
  t.is(routeUri('shop', 'apps.example', '/v1'), 'shop.apps.example/v1');
  t.is(routeUri('', 'apps.example'), 'apps.example');
  t.true(uriTooLong('a'.repeat(63), `${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`));
});

test('stats: one row per desired index, the best reply, DOWN where none answered', (t) => {
  const r = (index: number, state: DeaFindDropletReply['state'], ts: number, stats = true): DeaFindDropletReply => ({
    dea_id: 'd',
    app_id: 'a',
    version: 'v',
    instance_id: `i${index}${state}${ts}`,
    index,
    state,
    state_timestamp: ts,
    host: '10.0.0.1',
    port: 61000 + index,
    ...(stats ? { stats: { uptime_s: 10.4, cpu_percent: 50, memory_bytes: 100, memory_quota_bytes: 200, disk_bytes: 300, disk_quota_bytes: 400 } } : {}),
  });
  const rows = instanceStats('web', 3, [r(0, 'CRASHED', 5), r(0, 'RUNNING', 1), r(2, 'STARTING', 1, false), r(7, 'RUNNING', 1)], { memory_in_mb: 1, disk_in_mb: 2 }, new Date('2024-01-01T00:00:00.123Z'));
  t.is(rows.length, 3);
  t.like(rows[0], { index: 0, state: 'RUNNING', host: '10.0.0.1', port: 61000, uptime: 10, mem_quota: 200, usage: { cpu: 0.5, mem: 100, disk: 300, time: '2024-01-01T00:00:00Z' } });
  t.like(rows[1], { index: 1, state: 'DOWN', host: null, mem_quota: 1024 * 1024 });
  t.like(rows[2], { index: 2, state: 'STARTING', usage: {} });
});

test("stats: a flapping index shows as CRASHED with the health manager's count and next restart", (t) => {
  const now = new Date('2024-01-01T00:00:00Z');
  const nowS = now.getTime() / 1000;
  const limits = { memory_in_mb: 1, disk_in_mb: 2 };
  const flapping = [
    { index: 0, version: 'v', crash_count: 5, since: nowS - 60, next_restart_at: nowS + 12 },
    { index: 1, version: 'v', crash_count: 4, since: nowS - 60 },
  ];
  const running: DeaFindDropletReply = { dea_id: 'd', app_id: 'a', version: 'v', instance_id: 'i1', index: 1, state: 'RUNNING', state_timestamp: 1 };
  const rows = instanceStats('web', 3, [running], limits, now, flapping);
  t.like(rows[0], { index: 0, state: 'CRASHED', details: 'flapping: crashed 5 times, next restart in 12 s' });
  // Running again, yet still counted as flapping until it has been stable a while.
  t.like(rows[1], { index: 1, state: 'RUNNING', details: 'flapping: crashed 4 times' });
  t.like(rows[2], { index: 2, state: 'DOWN', details: null });
});

const chainOf = (offering: string, plan: string, planUpdateable: boolean): PlanChain =>
  ({ plan: { guid: `${offering}/${plan}`, name: plan }, offering: { guid: offering, name: offering, plan_updateable: planUpdateable }, broker: { guid: 'b' } }) as unknown as PlanChain;

test('a plan change: within one plan_updateable offering; parameters alone always; another offering never', (t) => {
  t.is(refusePlanChange(chainOf('redis', 'small', true), chainOf('redis', 'large', true)), undefined);
  t.is(refusePlanChange(chainOf('db', 'small', false), chainOf('db', 'small', false)), undefined, 'the same plan: a parameters change');
  t.is(refusePlanChange(chainOf('db', 'small', false), chainOf('db', 'large', false)), 'service offering db does not support changing plans (its broker says plan_updateable: false)');
  t.is(refusePlanChange(chainOf('redis', 'small', true), chainOf('db', 'small', true)), 'plan small is a plan of service offering db, not of redis');
});

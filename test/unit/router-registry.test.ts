// The primary's routing state: registrations become ops the workers apply, pruning stops
// while NATS is away, a worker's snapshot rebuilds the same table, and the config refuses
// combinations that cannot work.
import test from 'ava';
import fc from 'fast-check';
import { parseConfig } from '../../kernel/component/mod.ts';
import { ConfigError } from '../../kernel/component/errors.ts';
import { proxySettings, routerConfig, staleThresholdS } from '../../kernel/router/config.ts';
import { applyRouteOps, type RouteOp } from '../../kernel/router/ipc.ts';
import { RouteRegistry } from '../../kernel/router/registry.ts';
import { RouteTable } from '../../kernel/router/route-table.ts';

const reg = (port: number, uris: string[], extra: Record<string, unknown> = {}) => ({ host: '10.0.0.9', port, uris, ...extra });

function dump(table: RouteTable): string[] {
  const out: string[] = [];
  for (const [key, pool] of table.pools()) for (const e of pool.endpoints) out.push(`${key.key} ${e.address} ${e.appId ?? '-'} ${e.stickyId ?? '-'} ${e.index ?? '-'}`);
  return out.sort();
}

test('registrations reach workers as ops; refreshes send nothing', (t) => {
  const sent: RouteOp[][] = [];
  const registry = new RouteRegistry(60_000, (ops) => sent.push(ops));
  registry.register(reg(1, ['A.com', 'b.com/api', 'not a uri'], { app_id: 'app', instance_id: 'i1', index: 0 }), 0);
  registry.flush();
  t.deepEqual(sent, [[['+', 'a.com', '10.0.0.9', 1, 'app', 'i1', null, 0], ['+', 'b.com/api', '10.0.0.9', 1, 'app', 'i1', null, 0]]]);
  t.is(registry.counters.invalid_uris, 1);
  registry.register(reg(1, ['a.com'], { app_id: 'app', instance_id: 'i1', index: 0 }), 10);
  registry.flush();
  t.is(sent.length, 1, 'a refresh changes nothing downstream');
  registry.unregister(reg(1, ['a.com', 'nowhere.com']));
  registry.flush();
  t.deepEqual(sent[1], [['-', 'a.com', '10.0.0.9:1']]);
});

test('pruning is suspended while NATS is unreachable, and the stale clock restarts when it is back', (t) => {
  const sent: RouteOp[][] = [];
  const registry = new RouteRegistry(3_000, (ops) => sent.push(ops));
  registry.register(reg(1, ['a.com']), 0);
  registry.register(reg(2, ['a.com'], { stale_threshold_in_seconds: 100 }), 0);
  registry.flush();
  registry.suspendPruning();
  t.deepEqual(registry.prune(60_000), [], 'nothing is pruned during an outage');
  registry.resumePruning(60_000);
  t.deepEqual(registry.prune(62_000), [], 'a whole threshold to re-register after the outage');
  const removed = registry.prune(63_500);
  t.deepEqual(removed.map((r) => r.endpoint.port), [1], 'the endpoint with its own longer threshold stays');
  registry.flush();
  t.deepEqual(sent.at(-1), [['-', 'a.com', '10.0.0.9:1']]);
  t.is(registry.counters.pruned, 1);
});

test("a worker's table, rebuilt from the snapshot plus the ops that follow, equals the primary's", (t) => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('reg' as const), port: fc.integer({ min: 1, max: 4 }), uri: fc.constantFrom('a.com', 'b.com/x', '*.c.com', 'a.com/y'), inst: fc.constantFrom('i1', 'i2') }),
    fc.record({ kind: fc.constant('unreg' as const), port: fc.integer({ min: 1, max: 4 }), uri: fc.constantFrom('a.com', 'b.com/x', '*.c.com', 'a.com/y') }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 30 }), fc.nat(30), (ops, cut) => {
      const worker = new RouteTable();
      let synced = false;
      const registry = new RouteRegistry(60_000, (batch) => synced && applyRouteOps(worker, batch, 0));
      ops.forEach((o, i) => {
        if (i === cut) {
          registry.flush();
          for (const batch of registry.snapshot()) applyRouteOps(worker, batch, 0);
          synced = true;
        }
        if (o.kind === 'reg') registry.register(reg(o.port, [o.uri], { app_id: 'app', private_instance_id: o.inst }), i);
        else registry.unregister(reg(o.port, [o.uri]));
      });
      registry.flush();
      if (!synced) for (const batch of registry.snapshot()) applyRouteOps(worker, batch, 0);
      return JSON.stringify(dump(worker)) === JSON.stringify(dump(registry.table));
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('/routes lists every route with its endpoints', (t) => {
  const registry = new RouteRegistry(60_000, () => undefined);
  registry.register(reg(1, ['a.com'], { app_id: 'app', instance_id: 'i1', index: 3, tags: { component: 'dea' } }), Date.UTC(2024, 0, 1));
  t.deepEqual(Object.fromEntries(registry.listing(60)), {
    'a.com': [{ address: '10.0.0.9:1', app_id: 'app', instance_id: 'i1', private_instance_id: undefined, index: 3, tags: { component: 'dea' }, updated_at: '2024-01-01T00:00:00.000Z', stale_after_s: 60 }],
  });
});

const nats = 'nats: { servers: ["nats://127.0.0.1:4222"], user: u, password: p }\n';

test('config: defaults, derived settings, and refusals that name the key', (t) => {
  const c = parseConfig(nats, 'router.yml', routerConfig);
  t.is(c.port, 8080);
  t.is(c.minimum_register_interval_s, 20);
  t.is(staleThresholdS(c), 60);
  const s = proxySettings({ ...c, workers: 2 });
  t.is(s.connectTimeoutMs, 5000);
  t.is(s.appLogLinesPerS, 50, "the router's limit is shared by its workers");
  const e1 = t.throws(() => parseConfig(nats + 'drain_wait_s: 40\n', 'router.yml', routerConfig), { instanceOf: ConfigError });
  t.regex(e1!.message, /router\.yml:\d+ drain_wait_s: must be shorter than drain_timeout_s/);
  const e2 = t.throws(() => parseConfig(nats + 'minimum_register_interval_s: 10\nprune_stale_after_s: 5\n', 'router.yml', routerConfig), { instanceOf: ConfigError });
  t.regex(e2!.message, /prune_stale_after_s: must be longer than minimum_register_interval_s/);
  const e3 = t.throws(() => parseConfig(nats + 'prot: 80\n', 'router.yml', routerConfig), { instanceOf: ConfigError });
  t.regex(e3!.message, /unknown key \(prot\)/);
});

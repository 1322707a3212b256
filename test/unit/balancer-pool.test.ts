// The balancer's pure core: least connections with round robin among ties, the health state
// machine (out at once, back after `rise` good checks) and reloads that keep state.
import test from 'ava';
import { applyCheck, backendKey, newBackend, pickBackend, reconcileBackends, type BackendState } from '../../orchestrator/cpi/local/balancer-pool.ts';
import type { BackendConfig } from '../../orchestrator/cpi/local/balancer-config.ts';

const backend = (port: number): BackendConfig => ({ host: '127.0.0.1', port, health: { port: port + 1, path: '/healthz' } });
const up = (port: number, active = 0): BackendState => ({ ...newBackend(backend(port)), health: 'up', active });

/** Picks n times, counting each pick as one more open connection (none close). */
function pickMany(backends: BackendState[], n: number): number[] {
  let cursor = 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = pickBackend(backends, cursor);
    if (!p) throw new Error('none picked');
    cursor = p.cursor;
    backends[p.index]!.active++;
    out.push(backends[p.index]!.config.port);
  }
  return out;
}

test('ties go round robin', (t) => {
  const backends = [up(1000), up(2000), up(3000)];
  let cursor = 0;
  const ports: number[] = [];
  for (let i = 0; i < 6; i++) {
    const p = pickBackend(backends, cursor)!;
    cursor = p.cursor;
    ports.push(backends[p.index]!.config.port); // connections closed at once: active stays 0
  }
  t.deepEqual(ports, [1000, 2000, 3000, 1000, 2000, 3000]);
});

test('the fewest active connections win', (t) => {
  const backends = [up(1000, 5), up(2000, 1), up(3000, 3)];
  t.deepEqual(pickMany(backends, 4), [2000, 2000, 3000, 2000]); // 3000 wins the 3-3 tie: the cursor is past 2000
  t.deepEqual(backends.map((b) => b.active), [5, 4, 4]);
});

test('only backends up are picked; none up gives null', (t) => {
  const backends = [{ ...up(1000), health: 'down' as const }, newBackend(backend(2000)), up(3000)];
  t.deepEqual(pickMany(backends, 3), [3000, 3000, 3000]);
  t.is(pickBackend([{ ...up(1000), health: 'down' }, newBackend(backend(2000))], 0), null);
  t.is(pickBackend([], 0), null);
});

test('an excluded backend (its connect just failed) is skipped', (t) => {
  const backends = [up(1000), up(2000)];
  t.is(pickBackend(backends, 0, new Set([backendKey(backend(1000))]))!.index, 1);
  t.is(pickBackend(backends, 0, new Set(backends.map((b) => b.key))), null);
});

test('one failed check takes a backend out; rise good checks bring it back', (t) => {
  let b = up(1000);
  b = applyCheck(b, false, 2, '/healthz answered 503');
  t.is(b.health, 'down');
  t.is(b.lastError, '/healthz answered 503');
  b = applyCheck(b, true, 2);
  t.is(b.health, 'down');
  t.is(b.rises, 1);
  b = applyCheck(b, false, 2);
  t.is(b.rises, 0, 'a bad check resets the run of good ones');
  b = applyCheck(applyCheck(b, true, 2), true, 2);
  t.is(b.health, 'up');
  t.is(b.lastError, undefined);
  t.is(applyCheck(b, true, 2), b, 'up stays up unchanged');
});

test('a new backend enters on its first good check, or goes down on a bad one', (t) => {
  t.is(applyCheck(newBackend(backend(1000)), true, 5).health, 'up');
  t.is(applyCheck(newBackend(backend(1000)), false, 5).health, 'down');
});

test('applyCheck does not change its input', (t) => {
  const b = up(1000, 3);
  applyCheck(b, false, 2);
  t.is(b.health, 'up');
});

test('a reload keeps the state of backends still listed, adds new ones unknown, drops the rest', (t) => {
  const current = [up(1000, 2), { ...up(2000), health: 'down' as const }];
  const next = reconcileBackends(current, [backend(2000), backend(3000), backend(3000)]);
  t.deepEqual(next.map((b) => [b.config.port, b.health, b.active]), [
    [2000, 'down', 0],
    [3000, 'unknown', 0],
  ]);
  t.is(next[0], current[1]);
});

test('a changed health endpoint is a new backend', (t) => {
  const next = reconcileBackends([up(1000)], [{ ...backend(1000), health: { port: 1001, path: '/other' } }]);
  t.is(next[0]!.health, 'unknown');
});

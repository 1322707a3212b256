// Choosing an endpoint: random among the healthy, sticky while the instance is registered,
// never one this request already tried, and a failed one only when nothing else is left.
import test from 'ava';
import fc from 'fast-check';
import { chooseEndpoint, EndpointPool, makeEndpoint } from '../../kernel/router/endpoint-pool.ts';

function pool(n: number): EndpointPool {
  const p = new EndpointPool('app.example.com');
  for (let i = 0; i < n; i++) p.put(makeEndpoint({ host: '10.0.0.1', port: 6000 + i, instanceId: `i${i}`, privateInstanceId: `p${i}` }, 0));
  return p;
}

/** A deterministic "random" sequence. */
function seq(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

test('an empty pool yields nothing', (t) => {
  t.is(chooseEndpoint(new EndpointPool('x')), undefined);
});

test('the choice is spread over every endpoint', (t) => {
  const p = pool(4);
  const seen = new Map<number, number>();
  for (let i = 0; i < 4000; i++) {
    const e = chooseEndpoint(p)!;
    seen.set(e.port, (seen.get(e.port) ?? 0) + 1);
  }
  t.is(seen.size, 4);
  for (const n of seen.values()) t.true(n > 700 && n < 1300, `roughly uniform: ${[...seen.values()].join(', ')}`);
});

test('a sticky session goes to its instance while it is registered, and elsewhere once it is gone', (t) => {
  const p = pool(3);
  for (let i = 0; i < 20; i++) t.is(chooseEndpoint(p, { stickyId: 'p2' })!.port, 6002);
  p.remove('10.0.0.1:6002');
  const e = chooseEndpoint(p, { stickyId: 'p2', random: seq(0.9) })!;
  t.not(e.port, 6002);
});

test('a sticky instance that failed or was tried is not insisted on', (t) => {
  const p = pool(3);
  t.not(chooseEndpoint(p, { stickyId: 'p1', tried: ['10.0.0.1:6001'] })!.port, 6001);
  t.not(chooseEndpoint(p, { stickyId: 'p1', isFailed: (a) => a === '10.0.0.1:6001' })!.port, 6001);
});

test('tried endpoints are skipped; failed ones are used only when nothing else is left', (t) => {
  const p = pool(3);
  const failed = (a: string) => a === '10.0.0.1:6000';
  t.is(chooseEndpoint(p, { tried: ['10.0.0.1:6001'], isFailed: failed, random: seq(0) })!.port, 6002);
  t.is(chooseEndpoint(p, { tried: ['10.0.0.1:6001', '10.0.0.1:6002'], isFailed: failed })!.port, 6000);
  t.is(chooseEndpoint(p, { tried: ['10.0.0.1:6000', '10.0.0.1:6001', '10.0.0.1:6002'] }), undefined);
});

test('put refreshes or updates in place; remove honours the instance it names', (t) => {
  const p = new EndpointPool('x');
  t.is(p.put(makeEndpoint({ host: 'h', port: 1, instanceId: 'a' }, 1)), 'added');
  t.is(p.put(makeEndpoint({ host: 'h', port: 1, instanceId: 'a' }, 9)), 'refreshed');
  t.is(p.find('h:1')!.updatedAt, 9);
  t.is(p.put(makeEndpoint({ host: 'h', port: 1, instanceId: 'b', tags: { k: 'v' } }, 9)), 'updated');
  t.is(p.put(makeEndpoint({ host: 'h', port: 1, instanceId: 'b', tags: { k: 'v' } }, 9)), 'refreshed');
  t.is(p.remove('h:1', 'a'), undefined);
  t.is(p.remove('h:1', 'b')?.instanceId, 'b');
  t.is(p.size, 0);
});

test('the chosen endpoint is never a tried one, and is healthy whenever a healthy untried one exists', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 8 }),
      fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 8 }),
      fc.option(fc.integer({ min: 0, max: 9 })),
      fc.double({ min: 0, max: 0.999999, noNaN: true }),
      (n, triedIdx, failedIdx, sticky, r) => {
        const p = pool(n);
        const tried = triedIdx.map((i) => `10.0.0.1:${6000 + i}`);
        const failed = new Set(failedIdx.map((i) => `10.0.0.1:${6000 + i}`));
        const e = chooseEndpoint(p, { tried, isFailed: (a) => failed.has(a), stickyId: sticky === null ? undefined : `p${sticky}`, random: () => r });
        const untried = p.endpoints.filter((x) => !tried.includes(x.address));
        if (untried.length === 0) return e === undefined;
        if (e === undefined || tried.includes(e.address)) return false;
        const healthy = untried.filter((x) => !failed.has(x.address));
        if (healthy.length > 0 && failed.has(e.address)) return false;
        const stickyEp = sticky === null ? undefined : untried.find((x) => x.stickyId === `p${sticky}` && !failed.has(x.address));
        return stickyEp === undefined || e === stickyEp;
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});

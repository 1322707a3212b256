import test from 'ava';
import fc from 'fast-check';
import { defaultTaintWeights, fits, taintMs, type PlacementState } from '../../kernel/dea/placement.ts';

const dea = (over: Partial<PlacementState> = {}): PlacementState => ({
  stacks: ['bookworm'],
  draining: false,
  totalMemoryMb: 4096,
  availableMemoryMb: 4096,
  totalDiskMb: 20_000,
  availableDiskMb: 20_000,
  appCounts: {},
  cpuLoad: 0,
  ...over,
});
const req = { app_id: 'app', memory_mb: 256, disk_mb: 1024, stack: 'bookworm' };

test('six sequential placements of one app spread 2-2-2 over three DEAs', (t) => {
  // The controller takes the first reply: the DEA with the smallest taint wins each round.
  const deas = [dea(), dea({ availableMemoryMb: 3000 }), dea({ cpuLoad: 0.5 })];
  for (let round = 0; round < 6; round++) {
    const delays = deas.map((d) => (fits(d, req).ok ? taintMs(d, 'app') : Infinity));
    const winner = delays.indexOf(Math.min(...delays));
    const d = deas[winner]!;
    d.appCounts.app = (d.appCounts.app ?? 0) + 1;
    d.availableMemoryMb -= req.memory_mb;
  }
  t.deepEqual(deas.map((d) => d.appCounts.app), [2, 2, 2]);
});

test('a DEA that does not fit never answers', (t) => {
  t.deepEqual(fits(dea({ draining: true }), req), { ok: false, reason: 'draining' });
  t.false(fits(dea({ stacks: ['other'] }), req).ok);
  t.regex((fits(dea({ availableMemoryMb: 100 }), req) as { reason: string }).reason, /needs 256 MB memory, 100 MB free/);
  t.false(fits(dea({ availableDiskMb: 10 }), req).ok);
  t.true(fits(dea(), req).ok);
});

test('taint grows with instances of the same app and with load, and is capped', (t) => {
  fc.assert(
    fc.property(fc.nat(50), fc.nat(4096), fc.double({ min: 0, max: 1, noNaN: true }), (same, freeMb, cpu) => {
      const s = dea({ appCounts: { app: same }, availableMemoryMb: freeMb, cpuLoad: cpu });
      const more = dea({ appCounts: { app: same + 1 }, availableMemoryMb: freeMb, cpuLoad: cpu });
      const base = taintMs(s, 'app');
      return base >= 0 && base <= defaultTaintWeights.maxMs && taintMs(more, 'app') >= base && taintMs(s, 'other') <= base;
    }),
  );
  t.pass();
});

// mapLimit: the bounded fan-out the controller uses for blob lookups of a push.
import test from 'ava';
import { mapLimit } from '../../kernel/cloud-controller/map-limit.ts';

test('results keep the order of the items, and at most `limit` calls are in flight', async (t) => {
  let inFlight = 0;
  let most = 0;
  const out = await mapLimit([50, 10, 30, 0, 20, 5, 40], 3, async (ms, i) => {
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((r) => setTimeout(r, ms));
    inFlight--;
    return `${i}:${ms}`;
  });
  t.deepEqual(out, ['0:50', '1:10', '2:30', '3:0', '4:20', '5:5', '6:40']);
  t.is(most, 3);
});

test('the first failure rejects; an empty list and a bad limit', async (t) => {
  await t.throwsAsync(mapLimit([1, 2, 3], 2, async (n) => {
    if (n === 2) throw new Error('two failed');
    return n;
  }), { message: 'two failed' });
  t.deepEqual(await mapLimit([], 4, async () => 1), []);
  await t.throwsAsync(mapLimit([1], 0, async (n) => n), { instanceOf: RangeError });
});

// The log-line rate limiter and line splitting used on instances' stdout/stderr.

import test from 'ava';
import fc from 'fast-check';
import { PassThrough } from 'node:stream';
import { LineSplitter, LogRateLimiter, droppedNotice, pipeLines } from '../../kernel/dea/container/log-limiter.ts';

test('admits a burst, then the rate; drops and counts the excess', (t) => {
  const l = new LogRateLimiter({ linesPerSecond: 10, burst: 5 });
  const first = Array.from({ length: 8 }, () => l.admit(1000).admitted);
  t.deepEqual(first, [true, true, true, true, true, false, false, false]);
  t.is(l.dropped, 3);
  // 100 ms later one token has come back; the admitted line reports the gap.
  t.deepEqual(l.admit(1100), { admitted: true, droppedBefore: 3 });
  t.deepEqual(l.admit(1100), { admitted: false, droppedBefore: 0 });
  t.deepEqual(l.admit(1300), { admitted: true, droppedBefore: 1 });
  t.is(l.dropped, 4);
});

test('the bucket never holds more than the burst, however long it was idle', (t) => {
  const l = new LogRateLimiter({ linesPerSecond: 2, burst: 3 });
  const admitted = Array.from({ length: 10 }, () => l.admit(1_000_000).admitted).filter(Boolean).length;
  t.is(admitted, 3);
});

test('time going backwards grants nothing', (t) => {
  const l = new LogRateLimiter({ linesPerSecond: 1, burst: 1 });
  t.true(l.admit(5000).admitted);
  t.false(l.admit(4000).admitted);
  t.false(l.admit(5000).admitted);
  t.true(l.admit(6000).admitted);
});

test('property: admitted lines never exceed burst + rate × elapsed', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 500 }),
      fc.integer({ min: 1, max: 50 }),
      fc.array(fc.integer({ min: 0, max: 2000 }), { minLength: 1, maxLength: 300 }),
      (rate, burst, gaps) => {
        const l = new LogRateLimiter({ linesPerSecond: rate, burst });
        let now = 0;
        let admitted = 0;
        for (const g of gaps) {
          now += g;
          if (l.admit(now).admitted) admitted++;
        }
        return admitted <= burst + (rate * now) / 1000 + 1e-9 && admitted + l.dropped === gaps.length;
      },
    ),
  );
  t.pass();
});

test('rejects a non-positive rate', (t) => {
  t.throws(() => new LogRateLimiter({ linesPerSecond: 0 }), { instanceOf: RangeError });
});

test('lines are split across chunks, CRLF trimmed, long lines cut', (t) => {
  const s = new LineSplitter(5);
  t.deepEqual(s.push('ab'), []);
  t.deepEqual(s.push('c\r\nde\nfghijklm'), ['abc', 'de', 'fghij']);
  t.deepEqual(s.push('\n'), ['klm']);
  t.deepEqual(s.push('tail'), []);
  t.deepEqual(s.end(), ['tail']);
  t.deepEqual(s.end(), []);
});

test('pipeLines delivers admitted lines and a notice where lines went missing', async (t) => {
  const stream = new PassThrough();
  const limiter = new LogRateLimiter({ linesPerSecond: 1, burst: 2 });
  let now = 0;
  const lines: string[] = [];
  pipeLines(stream, limiter, (l) => lines.push(l), () => now);
  stream.write('1\n2\n3\n4\n');
  await new Promise((r) => setImmediate(r));
  now = 1000;
  stream.end('5\nlast');
  await new Promise((r) => stream.on('end', r));
  t.deepEqual(lines, ['1', '2', droppedNotice(2, 1), '5']);
  t.is(limiter.dropped, 3);
  t.is(droppedNotice(1, 100), '[ingot] 1 log line dropped (limit 100 lines/s)');
});

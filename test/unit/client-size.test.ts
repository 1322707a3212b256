import test from 'ava';
import { formatBytes, formatMb, parseSizeMb } from '../../kernel/client/size.ts';

test('sizes in M, MB, G, GB (any case) and bare megabytes', (t) => {
  t.deepEqual(parseSizeMb('256M'), { mb: 256 });
  t.deepEqual(parseSizeMb('256MB'), { mb: 256 });
  t.deepEqual(parseSizeMb('1G'), { mb: 1024 });
  t.deepEqual(parseSizeMb('2gb'), { mb: 2048 });
  t.deepEqual(parseSizeMb('512'), { mb: 512 });
  t.deepEqual(parseSizeMb(512), { mb: 512 });
  t.deepEqual(parseSizeMb(' 64m '), { mb: 64 });
  t.deepEqual(parseSizeMb('1T'), { mb: 1024 * 1024 });
});

test('anything else is refused with a sentence naming the value', (t) => {
  for (const bad of ['12XB', '1.5G', '-1G', 'G', '', 'lots', '1 G B', '0x10M', '256K']) {
    const r = parseSizeMb(bad);
    t.true('error' in r, bad);
    if ('error' in r) t.regex(r.error, /is not a size; expected a whole number with M or G, such as 256M, 1G or 512 \(MB\)/, bad);
  }
  t.deepEqual(parseSizeMb('0M'), { error: '"0M" must be more than 0' });
  t.true('error' in parseSizeMb('99999999999999999G'));
});

test('formats sizes the way cf prints them', (t) => {
  t.is(formatMb(256), '256M');
  t.is(formatMb(1024), '1G');
  t.is(formatMb(1536), '1536M');
  t.is(formatBytes(0), '0');
  t.is(formatBytes(512), '512B');
  t.is(formatBytes(1536), '1.5K');
  t.is(formatBytes(12.3 * 1024 * 1024), '12.3M');
  t.is(formatBytes(256 * 1024 * 1024), '256M');
  t.is(formatBytes(1024 ** 3), '1G');
});

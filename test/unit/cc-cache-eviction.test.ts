// The controller's resource cache eviction (HTTP blobstore mode): least recently used first,
// down to the bound, never a file used within the grace.
import test from 'ava';
import { cacheEviction, type CachedFile } from '../../kernel/cloud-controller/cache-eviction.ts';

const MIN = 60_000;
const file = (path: string, size: number, usedMinutesAgo: number): CachedFile => ({ path, size, usedAtMs: 100 * MIN - usedMinutesAgo * MIN });

test('oldest use first, until what is left fits', (t) => {
  const files = [file('a', 40, 30), file('b', 40, 60), file('c', 40, 45), file('d', 40, 20)];
  t.deepEqual(cacheEviction(files, 100, 100 * MIN, 10 * MIN).map((f) => f.path), ['b', 'c']);
  t.deepEqual(cacheEviction(files, 160, 100 * MIN, 10 * MIN), [], 'nothing when it fits');
});

test('a file used within the grace is never removed, even over the bound', (t) => {
  const files = [file('old', 10, 90), file('fresh1', 500, 2), file('fresh2', 500, 5)];
  t.deepEqual(cacheEviction(files, 100, 100 * MIN, 10 * MIN).map((f) => f.path), ['old']);
  t.deepEqual(cacheEviction([], 0, 100 * MIN, 10 * MIN), []);
});

test('the HTTP blobstore trims its cache at open: the least recently used beyond the bound, the recent kept', async (t) => {
  const { mkdtempSync, mkdirSync, writeFileSync, utimesSync, existsSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { HttpBlobstore } = await import('../../kernel/cloud-controller/blobstore-http.ts');
  const scratch = mkdtempSync('/tmp/cc-cache-');
  const keys = ['a', 'b', 'c', 'd'].map((c) => c.repeat(40));
  const ages = [120, 90, 60, 1]; // minutes since last use
  for (const [i, key] of keys.entries()) {
    mkdirSync(join(scratch, 'cache/resources', key.slice(0, 2)), { recursive: true });
    const path = join(scratch, 'cache/resources', key.slice(0, 2), key);
    writeFileSync(path, Buffer.alloc(1024));
    const at = new Date(Date.now() - ages[i]! * 60_000);
    utimesSync(path, at, at);
  }
  await HttpBlobstore.open({ url: 'http://127.0.0.1:9', user: 'u', password: 'p', timeoutMs: 1000, scratchDir: scratch, index: 0, cacheMaxBytes: 2048 });
  t.deepEqual(keys.map((k) => existsSync(join(scratch, 'cache/resources', k.slice(0, 2), k))), [false, false, true, true]);
});

// Disk usage of container directories: du-like, hard links once, symlinks not followed, bounded.

import test from 'ava';
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assessDisk, diskUsage } from '../../kernel/dea/container/disk-usage.ts';

let root = '';

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ingot-du-'));
  await mkdir(join(root, 'a/b'), { recursive: true });
  await writeFile(join(root, 'a/one'), Buffer.alloc(100_000, 1));
  await writeFile(join(root, 'a/b/two'), Buffer.alloc(200_000, 2));
  await link(join(root, 'a/b/two'), join(root, 'a/b/two-again'));
  await symlink('/usr', join(root, 'a/usr-link'));
});

test.after.always(async () => {
  await rm(root, { recursive: true, force: true });
});

test('counts allocated bytes once per inode, without following symlinks', async (t) => {
  const u = await diskUsage([join(root, 'a')]);
  t.true(u.complete);
  t.true(u.bytes >= 300_000, `${u.bytes}`);
  t.true(u.bytes < 600_000, `hard link counted twice or symlink followed: ${u.bytes}`);
  t.is(u.entries, 6); // a, a/b, one, two, two-again, usr-link
  const twice = await diskUsage([join(root, 'a'), join(root, 'a/b')]);
  t.is(twice.bytes, u.bytes, 'overlapping roots are counted once');
});

test('the walk stops at maxEntries and says so', async (t) => {
  const u = await diskUsage([join(root, 'a')], { maxEntries: 2 });
  t.false(u.complete);
  t.is(u.entries, 2);
});

test('missing roots count as empty', async (t) => {
  t.deepEqual(await diskUsage([join(root, 'nope')]), { bytes: 0, entries: 0, complete: true });
});

test('over quota means strictly more than the quota', (t) => {
  t.deepEqual(assessDisk({ bytes: 10, entries: 1, complete: true }, 10), { usedBytes: 10, quotaBytes: 10, overQuota: false, complete: true });
  t.true(assessDisk({ bytes: 11, entries: 1, complete: false }, 10).overQuota);
});

// Cgroup v1 and v2 drivers against fixture trees in a tmpdir: what they write, what they read.

import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  detectCgroupVersion,
  openCgroups,
  parseFlatKeyed,
  parsePids,
  statsV1,
  statsV2,
} from '../../kernel/dea/container/cgroups.ts';
import { CONTAINER_OVERHEAD_PROCESSES, cgroupWrites, sharesToWeight } from '../../kernel/dea/container/limits.ts';

const limits = { memoryBytes: 64 * 1024 * 1024, pids: 20, cpuShares: 512, diskBytes: 1 << 30 };
const dirs: string[] = [];

async function fixture(kind: 1 | 2): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), `ingot-cgroup-v${kind}-`));
  dirs.push(root);
  if (kind === 1) {
    for (const c of ['memory', 'pids', 'cpu', 'cpuacct']) await mkdir(join(root, c));
  } else {
    await writeFile(join(root, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc\n');
    await writeFile(join(root, 'cgroup.subtree_control'), '');
  }
  return root;
}

test.after.always(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('the version is told by cgroup.controllers at the root', async (t) => {
  t.is(await detectCgroupVersion(await fixture(1)), 1);
  t.is(await detectCgroupVersion(await fixture(2)), 2);
  t.is(await detectCgroupVersion(join(tmpdir(), 'no-such-cgroup-root')), null);
});

test('limits in v1 and v2 spelling; pids makes room for launcher and init', (t) => {
  t.deepEqual(
    cgroupWrites(1, limits).map((w) => [w.controller, w.file, w.value]),
    [
      ['memory', 'memory.limit_in_bytes', '67108864'],
      ['memory', 'memory.memsw.limit_in_bytes', '67108864'],
      ['pids', 'pids.max', String(20 + CONTAINER_OVERHEAD_PROCESSES)],
      ['cpu', 'cpu.shares', '512'],
    ],
  );
  t.deepEqual(
    cgroupWrites(2, limits).map((w) => [w.file, w.value]),
    [
      ['memory.max', '67108864'],
      ['memory.swap.max', '0'],
      ['memory.oom.group', '1'],
      ['pids.max', '22'],
      ['cpu.weight', String(sharesToWeight(512))],
    ],
  );
});

test('cpu shares convert to weights as runc does', (t) => {
  t.is(sharesToWeight(2), 1);
  t.is(sharesToWeight(1024), 39);
  t.is(sharesToWeight(262144), 10000);
  t.is(sharesToWeight(1), 1);
});

test('v1: one directory per hierarchy, limits written, optional files skipped when absent', async (t) => {
  const root = await fixture(1);
  const cg = await openCgroups(root);
  t.is(cg.version, 1);
  const path = 'ingot/ingot-t1/web-0';
  // Swap accounting present for this one: memsw must be written too.
  await mkdir(join(root, 'memory', path), { recursive: true });
  await writeFile(join(root, 'memory', path, 'memory.memsw.limit_in_bytes'), '9223372036854771712');
  await cg.create(path, limits);
  const read = (c: string, f: string) => readFile(join(root, c, path, f), 'utf8');
  t.is(await read('memory', 'memory.limit_in_bytes'), '67108864');
  t.is(await read('memory', 'memory.memsw.limit_in_bytes'), '67108864');
  t.is(await read('pids', 'pids.max'), '22');
  t.is(await read('cpu', 'cpu.shares'), '512');
  t.deepEqual(cg.procsFiles(path), ['memory', 'pids', 'cpu', 'cpuacct'].map((c) => join(root, c, path, 'cgroup.procs')));
  t.deepEqual((await cg.children('ingot/ingot-t1')).sort(), ['web-0']);
});

test('v1: stats from usage, memory.stat, cpuacct.usage and the oom_kill counter', async (t) => {
  const root = await fixture(1);
  const cg = await openCgroups(root);
  const path = 'ingot/p/c';
  await cg.create(path, limits);
  await writeFile(join(root, 'memory', path, 'memory.usage_in_bytes'), '10485760\n');
  await writeFile(join(root, 'memory', path, 'memory.stat'), 'cache 4096\ninactive_file 1\ntotal_inactive_file 2097152\n');
  await writeFile(join(root, 'memory', path, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
  await writeFile(join(root, 'cpuacct', path, 'cpuacct.usage'), '123456789\n');
  await writeFile(join(root, 'memory', path, 'cgroup.procs'), '10\n11\n');
  await writeFile(join(root, 'pids', path, 'cgroup.procs'), '11\n12\n');
  t.deepEqual(await cg.stats(path), { memoryUsageBytes: 10485760, memoryWorkingSetBytes: 8388608, cpuNanos: 123456789, oomKills: 2 });
  t.deepEqual((await cg.pids(path)).sort(), [10, 11, 12]);
  t.false(existsSync(join(root, 'memory', path, 'memory.memsw.limit_in_bytes')), 'no swap accounting, no memsw write');
});

test('v2: controllers delegated down every ancestor, limits written in the leaf', async (t) => {
  const root = await fixture(2);
  const cg = await openCgroups(root);
  t.is(cg.version, 2);
  const path = 'ingot/ingot-t1/web-0';
  await writeFile(join(root, 'cgroup.controllers'), 'cpu memory pids\n');
  await mkdir(join(root, path), { recursive: true });
  await writeFile(join(root, path, 'memory.swap.max'), 'max');
  await cg.create(path, limits);
  for (const dir of ['', 'ingot', 'ingot/ingot-t1']) {
    t.is(await readFile(join(root, dir, 'cgroup.subtree_control'), 'utf8'), '+memory +pids +cpu', `${dir || '/'}`);
  }
  const read = (f: string) => readFile(join(root, path, f), 'utf8');
  t.is(await read('memory.max'), '67108864');
  t.is(await read('memory.swap.max'), '0');
  t.is(await read('pids.max'), '22');
  t.is(await read('cpu.weight'), String(sharesToWeight(512)));
  t.deepEqual(cg.procsFiles(path), [join(root, path, 'cgroup.procs')]);
});

test('v2: stats from memory.current, memory.stat, cpu.stat and memory.events', async (t) => {
  const root = await fixture(2);
  const cg = await openCgroups(root);
  const path = 'ingot/p/c';
  await cg.create(path, limits);
  await writeFile(join(root, path, 'memory.current'), '5000000\n');
  await writeFile(join(root, path, 'memory.stat'), 'anon 3000000\nfile 2000000\ninactive_file 1000000\n');
  await writeFile(join(root, path, 'cpu.stat'), 'usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n');
  await writeFile(join(root, path, 'memory.events'), 'low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 1\n');
  t.deepEqual(await cg.stats(path), { memoryUsageBytes: 5000000, memoryWorkingSetBytes: 4000000, cpuNanos: 2500000, oomKills: 1 });
});

test('parsers: flat keyed files, pids, raw stats', (t) => {
  t.deepEqual(parseFlatKeyed('a 1\nb 22\n\nweird line here\nc x\n'), { a: 1, b: 22 });
  t.deepEqual(parsePids('1\n2\n\n30\n'), [1, 2, 30]);
  t.deepEqual(statsV1({ usage: '100', memoryStat: '', cpuacctUsage: '5', oomControl: 'oom_kill_disable 0\n' }), {
    memoryUsageBytes: 100,
    memoryWorkingSetBytes: 100,
    cpuNanos: 5,
    oomKills: 0,
  });
  t.is(statsV2({ current: '10', memoryStat: 'inactive_file 20', cpuStat: '', events: '' }).memoryWorkingSetBytes, 0);
});

test('removing a cgroup that does not exist is a no-op', async (t) => {
  const cg = await openCgroups(await fixture(1));
  await t.notThrowsAsync(cg.destroy('ingot/none/here', 1000));
});

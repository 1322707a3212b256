import test from 'ava';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LineSplitter, ProcessSandbox, type StagingDirs } from '../../kernel/dea/staging/sandbox.ts';
import { eventually } from '../helpers/component-process.ts';
import { scratchDir } from '../helpers/tmp.ts';

const root = scratchDir('staging-sandbox');
test.after.always(() => rm(root, { recursive: true, force: true }));
const PATH = '/usr/local/bin:/usr/bin:/bin';

test('lines: split on \\n, \\r\\n and \\r, across chunks and multi-byte characters', (t) => {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l), 8);
  const euro = Buffer.from('€');
  s.push(Buffer.from('one\ntw'));
  s.push(Buffer.from('o\r'));
  s.push(Buffer.from('\nthree\r'));
  s.push(Buffer.concat([Buffer.from('x'), euro.subarray(0, 1)]));
  s.push(Buffer.concat([euro.subarray(1), Buffer.from('\n\nabcdefghijk')]));
  s.end();
  t.deepEqual(lines, ['one', 'two', 'three', 'x€', '', 'abcdefgh', 'ijk']);
});

test('a command\'s lines arrive as they are produced, each on its stream', async (t) => {
  const box = await ProcessSandbox.factory()({ dirs: oneDir(root), buildpacks: [], memoryMb: 256, diskMb: 256 });
  const flag = join(root, 'go');
  const seen: Array<[string, string]> = [];
  // The command waits for a file the test only writes once the first line has arrived.
  const done = box.run(['bash', '-c', `echo first; echo oops >&2; while [ ! -f ${flag} ]; do sleep 0.02; done; echo second; exit 3`], {
    cwd: root,
    env: { PATH },
    timeoutMs: 10_000,
    onLine: (line, stream) => void seen.push([line, stream]),
  });
  await eventually(() => seen.some(([l]) => l === 'first'), 5000, 'first line');
  await writeFile(flag, '');
  const exit = await done;
  t.deepEqual(exit, { exitCode: 3, signal: null });
  t.deepEqual(seen.filter(([, s]) => s === 'out').map(([l]) => l), ['first', 'second']);
  t.deepEqual(seen.filter(([, s]) => s === 'err').map(([l]) => l), ['oops']);
  t.is(box.pathInside(join(root, 'x')), join(root, 'x'));
  t.throws(() => box.pathInside('/etc'), { message: /not among the sandbox's directories/ });
  await box.close();
});

test('a timeout kills the command and whatever it started', async (t) => {
  const box = await ProcessSandbox.factory()({ dirs: oneDir(root), buildpacks: [], memoryMb: 256, diskMb: 256 });
  const pidFile = join(root, 'child.pid');
  const exit = await box.run(['bash', '-c', `sleep 60 & echo $! > ${pidFile}; wait`], { cwd: root, env: { PATH }, timeoutMs: 500, onLine: () => {} });
  t.is(exit.reason, 'timeout');
  t.is(exit.signal, 'SIGKILL');
  const pid = Number(await readFile(pidFile, 'utf8'));
  await eventually(() => !alive(pid), 5000, 'the background child to be gone');
  t.pass();
});

test('the memory limit stops a command that allocates past it', async (t) => {
  const box = await ProcessSandbox.factory()({ dirs: oneDir(root), buildpacks: [], memoryMb: 128, diskMb: 256 });
  const exit = await box.run(['node', '-e', 'const a = []; for (let i = 0; i < 64; i++) a.push(Buffer.alloc(8 << 20, 1)); console.log("allocated")'], {
    cwd: root,
    env: { PATH },
    timeoutMs: 20_000,
    onLine: () => {},
  });
  t.not(exit.exitCode, 0, JSON.stringify(exit));
});

test('a command that cannot start says why', async (t) => {
  const box = await ProcessSandbox.factory({ memoryLimit: false })({ dirs: oneDir(root), buildpacks: [], memoryMb: 256, diskMb: 256 });
  const exit = await box.run([join(root, 'missing')], { cwd: root, env: { PATH }, timeoutMs: 5000, onLine: () => {} });
  t.is(exit.exitCode, null);
  t.regex(exit.reason ?? '', /could not start .*missing: .*ENOENT/);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every staging directory role played by one directory. */
function oneDir(dir: string): StagingDirs {
  return { app: dir, deps: dir, cache: dir, home: dir, tmp: dir };
}

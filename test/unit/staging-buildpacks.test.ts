import test from 'ava';
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectBuildpack, installedBuildpacks, orderBuildpacks, parseBuildpackRequest } from '../../kernel/dea/staging/buildpacks.ts';
import { StagingError } from '../../kernel/dea/staging/errors.ts';
import { DEFAULT_BUILDPACK_ORDER, builtinBuildpacksDir, compileStagerOptions } from '../../kernel/dea/staging/options.ts';
import { ProcessSandbox, type StagingDirs } from '../../kernel/dea/staging/sandbox.ts';
import type { Buildpack } from '../../kernel/dea/staging/types.ts';
import { scratchDir } from '../helpers/tmp.ts';
import { zipBuffer } from '../helpers/zip.ts';

const EXAMPLES = fileURLToPath(new URL('../../examples', import.meta.url));
const root = scratchDir('staging-buildpacks');
test.after.always(() => rm(root, { recursive: true, force: true }));

test('the buildpack field: nothing, a name, a directory or a git URL (with a ref)', (t) => {
  t.deepEqual(parseBuildpackRequest(undefined), { kind: 'detect' });
  t.deepEqual(parseBuildpackRequest('  '), { kind: 'detect' });
  t.deepEqual(parseBuildpackRequest('nodejs'), { kind: 'name', name: 'nodejs' });
  t.deepEqual(parseBuildpackRequest('/opt/buildpacks/go/'), { kind: 'directory', path: '/opt/buildpacks/go/' });
  t.deepEqual(parseBuildpackRequest('https://github.com/cloudfoundry/nodejs-buildpack.git'), {
    kind: 'git',
    url: 'https://github.com/cloudfoundry/nodejs-buildpack.git',
    ref: undefined,
  });
  t.deepEqual(parseBuildpackRequest('https://example.com/bp.git#v1.2.3'), { kind: 'git', url: 'https://example.com/bp.git', ref: 'v1.2.3' });
  t.deepEqual(parseBuildpackRequest('file:///srv/bp.git'), { kind: 'git', url: 'file:///srv/bp.git', ref: undefined });
  t.deepEqual(parseBuildpackRequest('git@github.com:org/bp.git'), { kind: 'git', url: 'git@github.com:org/bp.git', ref: undefined });
  for (const bad of ['../nodejs', 'node js', 'https://x/bp.git#--upload-pack=evil', '-c core.x']) {
    const err = t.throws(() => parseBuildpackRequest(bad), { instanceOf: StagingError }, bad);
    t.is(err!.code, 'buildpack_unavailable');
  }
});

test('detection order: the configured names first, then the others by name', (t) => {
  t.deepEqual(orderBuildpacks(['binary', 'zeta', 'java', 'nodejs', 'alpha', 'python', 'staticfile'], DEFAULT_BUILDPACK_ORDER), [
    'nodejs',
    'python',
    'java',
    'staticfile',
    'binary',
    'alpha',
    'zeta',
  ]);
  t.deepEqual(orderBuildpacks(['binary', 'nodejs'], DEFAULT_BUILDPACK_ORDER), ['nodejs', 'binary'], 'names not installed are skipped');
});

test('the built-in buildpacks are installed in the default order', async (t) => {
  const installed = await installedBuildpacks(builtinBuildpacksDir(), DEFAULT_BUILDPACK_ORDER);
  t.deepEqual(
    installed.map((b) => b.name),
    ['nodejs', 'python', 'java', 'staticfile', 'binary'],
  );
  t.true(installed.every((b) => b.origin === 'builtin'));
});

test('detection takes the first candidate that accepts, with the name it printed', async (t) => {
  const bp = (name: string): Buildpack => ({ name, dir: `/bp/${name}`, origin: 'builtin' });
  const asked: string[] = [];
  const found = await detectBuildpack([bp('a'), bp('b'), bp('c')], async (b) => {
    asked.push(b.name);
    return { accepted: b.name !== 'a', output: b.name === 'b' ? 'B framework 1.0\n' : '' };
  });
  t.deepEqual(asked, ['a', 'b'], 'stops at the first that accepts');
  t.is(found?.buildpack.name, 'b');
  t.is(found?.detected, 'B framework 1.0');
  t.is(await detectBuildpack([bp('a')], async () => ({ accepted: false, output: '' })), undefined);
});

/** Runs the built-in bin/detect scripts, in order, on `dir` as the stager would. */
async function detectWithBuiltins(dir: string): Promise<string | undefined> {
  const candidates = await installedBuildpacks(builtinBuildpacksDir(), DEFAULT_BUILDPACK_ORDER);
  const sandbox = await ProcessSandbox.factory()({ dirs: oneDir(dir), buildpacks: candidates.map((c) => c.dir), memoryMb: 512, diskMb: 512 });
  const { path } = compileStagerOptions({ workDir: root });
  try {
    const found = await detectBuildpack(candidates, async (bp) => {
      const out: string[] = [];
      const exit = await sandbox.run([join(bp.dir, 'bin/detect'), dir], {
        cwd: dir,
        env: { PATH: path },
        timeoutMs: 10_000,
        onLine: (l, s) => (s === 'out' ? out.push(l) : undefined),
      });
      return { accepted: exit.exitCode === 0, output: out.join('\n') };
    });
    return found?.detected;
  } finally {
    await sandbox.close();
  }
}

async function appDir(label: string, files: Record<string, string | Buffer | { content: string; mode: number }> = {}, example?: string): Promise<string> {
  const dir = join(root, label);
  await mkdir(dir, { recursive: true });
  if (example) await cp(join(EXAMPLES, example), dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    if (typeof content === 'object' && !Buffer.isBuffer(content)) await writeFile(join(dir, name), content.content, { mode: content.mode });
    else await writeFile(join(dir, name), content);
  }
  return dir;
}

const manifest = (main: string) => ({ name: 'META-INF/MANIFEST.MF', content: `Manifest-Version: 1.0\r\nMain-Class: ${main}\r\n` });

test('the built-in detect scripts recognize each example app', async (t) => {
  t.is(await detectWithBuiltins(await appDir('node', {}, 'node-hello')), 'nodejs');
  t.is(await detectWithBuiltins(await appDir('python', {}, 'python-hello')), 'python');
  t.is(await detectWithBuiltins(await appDir('static', {}, 'static-site')), 'staticfile');
  t.is(await detectWithBuiltins(await appDir('binary', { 'hello-server': { content: '\x7fELF', mode: 0o755 } }, 'binary-hello')), 'binary');
  t.is(await detectWithBuiltins(await appDir('jar', { 'app.jar': await zipBuffer([manifest('hello.Hello')]) })), 'java');
  t.is(await detectWithBuiltins(await appDir('exploded-jar', { [manifest('hello.Hello').name]: manifest('hello.Hello').content })), 'java');
});

test('detection follows the order and refuses what no built-in knows', async (t) => {
  t.is(await detectWithBuiltins(await appDir('node-with-html', { 'package.json': '{}', 'index.html': '<p>' })), 'nodejs', 'nodejs comes before staticfile');
  t.is(await detectWithBuiltins(await appDir('python-with-html', { 'app.py': '', 'index.html': '<p>' })), 'python');
  t.is(await detectWithBuiltins(await appDir('jar-without-main', { 'lib.jar': await zipBuffer([{ name: 'META-INF/MANIFEST.MF', content: 'Manifest-Version: 1.0\n' }]) })), undefined);
  t.is(await detectWithBuiltins(await appDir('procfile-not-executable', { Procfile: 'web: ./server\n', server: 'x' })), undefined);
  t.is(await detectWithBuiltins(await appDir('procfile-system-command', { Procfile: 'web: /bin/sleep 1000\n' })), undefined);
  t.is(await detectWithBuiltins(await appDir('nothing', { 'README.txt': 'hi' })), undefined);
});

test('stager options: defaults, and every problem reported at once', (t) => {
  const o = compileStagerOptions({ workDir: '/var/vcap/data/dea/staging' });
  t.is(o.timeoutMs, 15 * 60_000);
  t.is(o.memoryMb, 1024);
  t.deepEqual(o.buildpackOrder, DEFAULT_BUILDPACK_ORDER);
  t.false(o.allowLocalBuildpacks);
  t.is(o.uploadMethod, 'PUT');
  t.regex(o.path, /\/usr\/bin/);
  const err = t.throws(() =>
    compileStagerOptions({ workDir: 'relative', timeoutMs: -1, npmRegistry: 'ftp://x', archive: { maxRatio: 0 }, buildpackOrder: ['../x'] }),
  );
  for (const part of ['workDir: expected an absolute path', 'timeoutMs: expected a positive number', 'npmRegistry: expected an http(s) URL', 'archive.maxRatio', 'buildpackOrder']) {
    t.true(err!.message.includes(part), part);
  }
});

/** Every staging directory role played by one directory. */
function oneDir(dir: string): StagingDirs {
  return { app: dir, deps: dir, cache: dir, home: dir, tmp: dir };
}

import test from 'ava';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import yauzl from 'yauzl';
import { IgnoreRules } from '../../kernel/client/cfignore.ts';
import { describeResources, fingerprint, matchedResources, missingEntries, zipEntriesToBuffer } from '../../kernel/client/resources.ts';
import { scratchDir } from '../helpers/tmp.ts';
import { zipBuffer } from '../helpers/zip.ts';

const sha1 = (s: string): string => createHash('sha1').update(s).digest('hex');

function app(files: Record<string, string>, cfignore?: string): string {
  const dir = scratchDir('client-bits');
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  if (cfignore !== undefined) writeFileSync(join(dir, '.cfignore'), cfignore);
  return dir;
}

test('fingerprints every file with sha1, size and mode; skips .git and the default ignores', async (t) => {
  const dir = app({ 'server.js': 'hello', 'lib/a.js': 'a', '.git/HEAD': 'ref', 'manifest.yml': 'x', 'sub/manifest.yml': 'kept', '.gitignore': 'x', 'node_modules/m/index.js': 'm' });
  chmodSync(join(dir, 'server.js'), 0o755);
  const bits = await fingerprint(dir);
  const files = describeResources(bits);
  t.deepEqual(
    files.map((f) => f.path),
    ['lib/a.js', 'node_modules/m/index.js', 'server.js', 'sub/manifest.yml'],
  );
  t.deepEqual(files.find((f) => f.path === 'server.js'), { checksum: { value: sha1('hello') }, size_in_bytes: 5, path: 'server.js', mode: '0755' });
  t.is(files.find((f) => f.path === 'lib/a.js')!.mode, '0644');
  t.is(bits.files, 4);
  t.is(bits.bytes, 5 + 1 + 1 + 4);
  t.deepEqual(bits.ignored.sort(), ['.git', '.gitignore', 'manifest.yml']);
});

test('.cfignore: globs, directories, anchors, negation and **', async (t) => {
  const dir = app(
    {
      'app.js': '1',
      'debug.log': '2',
      'logs/today.txt': '3',
      'src/logs/keep.txt': '4',
      'tmp/a/b.txt': '5',
      'important.log': '6',
      'docs/x.md': '7',
      'docs/deep/y.md': '8',
      'build/out.js': '9',
      'src/build': '10',
    },
    ['# comments and blank lines are skipped', '', '*.log', '!important.log', '/logs/', 'tmp', 'docs/**/*.md', 'build/'].join('\n'),
  );
  const paths = describeResources(await fingerprint(dir)).map((f) => f.path);
  t.deepEqual(paths, ['app.js', 'important.log', 'src/build', 'src/logs/keep.txt']);
});

test('ignore rules match like gitignore', (t) => {
  const r = new IgnoreRules(['*.tmp', '/root-only.txt', 'cache/', 'a/**/z', '!keep.tmp', 'q?.txt', '[ab].txt']);
  t.true(r.ignores('x.tmp', false));
  t.true(r.ignores('deep/x.tmp', false));
  t.false(r.ignores('keep.tmp', false));
  t.true(r.ignores('root-only.txt', false));
  t.false(r.ignores('sub/root-only.txt', false));
  t.true(r.ignores('cache', true));
  t.false(r.ignores('cache', false), 'a trailing slash matches directories only');
  t.true(r.ignores('cache/file', false), 'everything under an ignored directory');
  t.true(r.ignores('a/z', false));
  t.true(r.ignores('a/b/c/z', false));
  t.true(r.ignores('q1.txt', false));
  t.false(r.ignores('q12.txt', false));
  t.true(r.ignores('a.txt', false));
  t.false(r.ignores('c.txt', false));
});

test('only files the controller lacks go in the zip, with empty directories and links', async (t) => {
  const dir = app({ 'a.txt': 'aaa', 'b/b.txt': 'bbb', 'c.txt': 'ccc' });
  mkdirSync(join(dir, 'empty'));
  symlinkSync('a.txt', join(dir, 'link'));
  const bits = await fingerprint(dir);
  const matched = [{ checksum: { value: sha1('aaa') }, size_in_bytes: 3, path: 'a.txt', mode: '0644' }, { checksum: { value: sha1('zzz') }, size_in_bytes: 3, path: 'c.txt' }];
  const held = matchedResources(bits, matched);
  t.deepEqual(held.map((r) => r.path), ['a.txt'], 'a match must agree on path and sha1');
  const missing = missingEntries(bits, held);
  t.deepEqual(missing.map((e) => `${e.kind}:${e.path}`), ['dir:empty', 'file:b/b.txt', 'file:c.txt', 'symlink:link']);
  const zip = await zipEntriesToBuffer(missing);
  const entries = await listZip(zip);
  t.deepEqual(entries, [
    { name: 'empty/', mode: 0o40755 },
    { name: 'b/b.txt', mode: 0o100644 },
    { name: 'c.txt', mode: 0o100644 },
    { name: 'link', mode: 0o120777 },
  ]);
  t.deepEqual(await zipEntriesToBuffer(missing), zip, 'the same files make the same zip');
});

test('an archive (.zip, .jar) is pushed as the files it holds', async (t) => {
  const dir = scratchDir('client-archive');
  const file = join(dir, 'app.jar');
  writeFileSync(file, await zipBuffer([{ type: 'dir', name: 'META-INF' }, { name: 'META-INF/MANIFEST.MF', content: 'Main-Class: x\n' }, { name: 'run.sh', content: 'exit 0', mode: 0o755 }]));
  const files = describeResources(await fingerprint(file));
  t.deepEqual(files, [
    { checksum: { value: sha1('Main-Class: x\n') }, size_in_bytes: 14, path: 'META-INF/MANIFEST.MF', mode: '0644' },
    { checksum: { value: sha1('exit 0') }, size_in_bytes: 6, path: 'run.sh', mode: '0755' },
  ]);
  await t.throwsAsync(fingerprint(join(dir, 'missing')), { message: /cannot read the app at .*missing \(ENOENT\)/ });
});

async function listZip(zip: Buffer): Promise<Array<{ name: string; mode: number }>> {
  const z = await yauzl.fromBufferPromise(zip, { lazyEntries: true });
  const out: Array<{ name: string; mode: number }> = [];
  await new Promise<void>((resolve, reject) => {
    z.on('entry', (e: yauzl.Entry) => {
      out.push({ name: e.fileName, mode: (e.externalFileAttributes >>> 16) & 0xffff });
      z.readEntry();
    });
    z.on('end', () => resolve());
    z.on('error', reject);
    z.readEntry();
  });
  return out;
}

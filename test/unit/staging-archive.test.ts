import test from 'ava';
import fc from 'fast-check';
import { lstat, mkdir, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkLinkTarget, entryKind, planEntries, safeEntryPath, unpackZip } from '../../kernel/dea/staging/archive.ts';
import { leadsOutside } from '../../kernel/archive/links.ts';
import { StagingError, UnsafeEntryError } from '../../kernel/dea/staging/errors.ts';
import { DEFAULT_ARCHIVE_LIMITS } from '../../kernel/dea/staging/options.ts';
import { scratchDir } from '../helpers/tmp.ts';
import { maliciousZips, zipBuffer, type ZipEntrySpec } from '../helpers/zip.ts';

const root = scratchDir('staging-archive');
test.after.always(() => rm(root, { recursive: true, force: true }));

let n = 0;
/** A fresh `<case>/app` destination inside the scratch dir, and the zip written next to it. */
async function unpack(entries: ZipEntrySpec[], limits = DEFAULT_ARCHIVE_LIMITS) {
  const dir = join(root, `case-${n++}`);
  const app = join(dir, 'app');
  await mkdir(app, { recursive: true });
  const zip = join(dir, 'package.zip');
  await writeFile(zip, await zipBuffer(entries));
  return { dir, app, run: () => unpackZip(zip, app, limits) };
}

test('entry names: relative paths are normalized, escapes are refused with the entry named', (t) => {
  t.is(safeEntryPath('a/b.txt'), 'a/b.txt');
  t.is(safeEntryPath('./a//b/'), 'a/b');
  t.is(safeEntryPath('a/../b'), 'b', 'a .. that stays inside is harmless');
  t.is(safeEntryPath('./'), '');
  t.is(safeEntryPath('dir\\file'), 'dir/file', 'backslashes read as separators');
  const refused: Array<[string, RegExp]> = [
    ['../evil', /entry \.\.\/evil leads outside the app directory/],
    ['a/../../evil', /leads outside/],
    ['..\\evil', /leads outside/],
    ['/etc/passwd', /is an absolute path/],
    ['C:/x', /is an absolute path/],
    ['a\0b', /NUL/],
    ['', /empty name/],
  ];
  for (const [name, message] of refused) {
    const err = t.throws(() => safeEntryPath(name), { instanceOf: UnsafeEntryError }, name);
    t.regex(err!.message, message);
  }
});

test('entry names: whatever is accepted stays inside the app directory', (t) => {
  const segment = fc.constantFrom('a', 'b', '..', '.', '', 'c.txt', '...');
  fc.assert(
    fc.property(fc.array(segment, { minLength: 1, maxLength: 8 }), (parts) => {
      const name = parts.join('/');
      let path: string;
      try {
        path = safeEntryPath(name);
      } catch (err) {
        return err instanceof UnsafeEntryError;
      }
      return !path.split('/').includes('..') && !path.startsWith('/');
    }),
  );
  t.pass();
});

test('entry kinds and modes come from the unix external attributes', (t) => {
  const unix = (3 << 8) | 20;
  t.deepEqual(entryKind('run.sh', unix, (0o100755 << 16) >>> 0), { kind: 'file', mode: 0o755 });
  t.deepEqual(entryKind('ro.txt', unix, (0o100444 << 16) >>> 0), { kind: 'file', mode: 0o644 }, 'the owner keeps write');
  t.deepEqual(entryKind('suid', unix, (0o104755 << 16) >>> 0), { kind: 'file', mode: 0o755 }, 'setuid dropped');
  t.deepEqual(entryKind('d/', unix, (0o040700 << 16) >>> 0), { kind: 'directory', mode: 0o700 });
  t.is(entryKind('link', unix, (0o120777 << 16) >>> 0).kind, 'symlink');
  t.deepEqual(entryKind('win.txt', 20, 0x20), { kind: 'file', mode: 0o644 }, 'no unix attributes: a plain file');
  t.throws(() => entryKind('fifo', unix, (0o010644 << 16) >>> 0), { message: /special file/ });
  t.throws(() => entryKind('dev', unix, (0o020644 << 16) >>> 0), { message: /special file/ });
});

test('link targets: relative and inside, or refused', (t) => {
  t.notThrows(() => checkLinkTarget('bin/x', 'node_modules/.bin/x', '../pkg/cli.js'));
  t.throws(() => checkLinkTarget('etc', 'etc', '/etc'), { message: /entry etc is a symbolic link to the absolute path \/etc/ });
  t.throws(() => checkLinkTarget('x', 'x', '../../x'), { message: /leading outside the app directory/ });
  t.throws(() => checkLinkTarget('a/b', 'a/b', '../..'), { message: /leading outside/ });
});

test('links are followed through other links to tell where they land', (t) => {
  const links = new Map([
    ['a/up', '..'],
    ['s', 'a/up'],
    ['esc', 's/..'],
    ['ok', 's/a'],
    ['loop1', 'loop2'],
    ['loop2', 'loop1'],
    ['abs', 'a/../../etc'],
  ]);
  t.false(leadsOutside(links, 'a/up'));
  t.false(leadsOutside(links, 's'));
  t.false(leadsOutside(links, 'ok'));
  t.true(leadsOutside(links, 'esc'), 's/.. is the root\'s parent');
  t.true(leadsOutside(links, 'loop1'), 'a loop counts as outside');
  t.true(leadsOutside(links, 'abs'));
  t.true(leadsOutside(new Map([['x', '/etc']]), 'x'));
});

test('nothing may lie under a link', (t) => {
  const unix = (3 << 8) | 20;
  const e = (name: string, mode: number) => ({ name, versionMadeBy: unix, externalFileAttributes: (mode << 16) >>> 0, compressedSize: 1, uncompressedSize: 1, encrypted: false });
  t.throws(() => planEntries([e('lib', 0o120777), e('lib/x.js', 0o100644)], DEFAULT_ARCHIVE_LIMITS), { message: /entry lib\/x\.js lies under the symbolic link lib/ });
  t.notThrows(() => planEntries([e('lib', 0o120777), e('libx/y', 0o100644)], DEFAULT_ARCHIVE_LIMITS));
});

test('limits: entry count, total bytes and compression ratio are checked before anything is written', (t) => {
  const entry = (name: string, uncompressedSize: number, compressedSize = uncompressedSize) => ({
    name,
    versionMadeBy: (3 << 8) | 20,
    externalFileAttributes: (0o100644 << 16) >>> 0,
    compressedSize,
    uncompressedSize,
    encrypted: false,
  });
  const limits = { ...DEFAULT_ARCHIVE_LIMITS, maxEntries: 3, maxUnpackedBytes: 1000, maxRatio: 10, ratioFloorBytes: 100 };
  t.is(planEntries([entry('a', 10), entry('b', 10), entry('c', 10)], limits).length, 3);
  t.throws(() => planEntries([entry('a', 1), entry('b', 1), entry('c', 1), entry('d', 1)], limits), { message: /entry d is beyond the limit of 3 entries/ });
  t.throws(() => planEntries([entry('a', 600), entry('b', 600)], limits), { message: /entry b makes the package unpack to more than 1000 B/ });
  t.throws(() => planEntries([entry('bomb', 500, 5)], limits), { message: /entry bomb expands 100-fold, beyond the limit of 10-fold/ });
  t.notThrows(() => planEntries([entry('small', 99, 1)], limits), 'small files may compress very well');
  t.throws(() => planEntries([{ ...entry('secret', 10), encrypted: true }], limits), { message: /is encrypted/ });
});

test('unpacks files, directories, exec bits and links that stay inside', async (t) => {
  const { app, run } = await unpack([
    { type: 'dir', name: 'bin' },
    { name: 'bin/start', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
    { name: 'lib/deep/data.txt', content: 'data', mode: 0o640 },
    { type: 'symlink', name: 'current', target: 'lib/deep' },
    { type: 'symlink', name: 'lib/up', target: '../bin/start' },
    { type: 'symlink', name: 'dangling', target: 'not/there' },
  ]);
  const summary = await run();
  t.deepEqual(summary, { files: 2, directories: 1, symlinks: 3, bytes: 22 });
  t.is((await stat(join(app, 'bin/start'))).mode & 0o777, 0o755);
  t.is((await stat(join(app, 'lib/deep/data.txt'))).mode & 0o777, 0o640);
  t.is(await readlink(join(app, 'current')), 'lib/deep');
  t.is(await readFile(join(app, 'current/data.txt'), 'utf8'), 'data');
  t.is(await readFile(join(app, 'lib/up'), 'utf8'), '#!/bin/sh\necho hi\n');
  t.true((await lstat(join(app, 'dangling'))).isSymbolicLink());
});

for (const [label, { entry, entries }] of Object.entries(maliciousZips)) {
  test(`refuses a malicious package (${label}) naming entry ${entry}, writing nothing outside`, async (t) => {
    const { dir, run } = await unpack(entries, { ...DEFAULT_ARCHIVE_LIMITS });
    const err = await t.throwsAsync(run(), { instanceOf: StagingError });
    t.is(err!.code, 'unsafe_archive', err!.message);
    t.is(err!.step, 'unpack');
    t.is(err!.entry, entry);
    t.regex(err!.message, /^Unpacking the app package: entry /);
    t.deepEqual((await readdir(dir)).sort(), ['app', 'package.zip'], 'nothing beside the app directory');
    t.false(existsSync('/tmp/ingot-evil-absolute'));
    t.false(existsSync('/tmp/ingot-evil-through-link'));
  });
}

test('refuses a package larger than the unpack limit', async (t) => {
  const { run } = await unpack([{ name: 'big.bin', content: Buffer.alloc(300_000, 7), compress: false }], { ...DEFAULT_ARCHIVE_LIMITS, maxUnpackedBytes: 100_000 });
  const err = await t.throwsAsync(run(), { instanceOf: StagingError });
  t.is(err!.code, 'unsafe_archive');
  t.is(err!.entry, 'big.bin');
  t.regex(err!.message, /more than 97\.7 KiB/);
});

test('an entry that appears twice, or a file where a directory must be, is an invalid archive', async (t) => {
  const twice = await unpack([
    { name: 'a.txt', content: '1' },
    { name: 'a.txt', content: '2' },
  ]);
  const e1 = await t.throwsAsync(twice.run(), { instanceOf: StagingError });
  t.is(e1!.code, 'invalid_archive');
  t.regex(e1!.message, /entry a\.txt: it appears twice/);
  const clash = await unpack([
    { name: 'a', content: 'file' },
    { name: 'a/b', content: 'under a file' },
  ]);
  const e2 = await t.throwsAsync(clash.run(), { instanceOf: StagingError });
  t.is(e2!.code, 'invalid_archive');
});

test('a file that is not a zip is an invalid archive', async (t) => {
  const dir = join(root, 'not-a-zip');
  await mkdir(join(dir, 'app'), { recursive: true });
  await writeFile(join(dir, 'package.zip'), 'this is not a zip file');
  const err = await t.throwsAsync(unpackZip(join(dir, 'package.zip'), join(dir, 'app'), DEFAULT_ARCHIVE_LIMITS), { instanceOf: StagingError });
  t.is(err!.code, 'invalid_archive');
  t.regex(err!.message, /not a readable zip/);
});

import test from 'ava';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { stringify } from 'yaml';
import { jobFingerprint, parseJobSpec, readRelease, ReleaseError, sha1, type JobSpec } from '../../orchestrator/release/mod.ts';
import { jobFiles } from '../../orchestrator/release/jobs.ts';

interface RawEntry {
  path: string;
  data?: Buffer | string;
  type?: 'File' | 'SymbolicLink' | 'Directory';
  linkpath?: string;
}

/** A .tgz written byte by byte, so tests can hold what the builder never writes (`..`, links). */
function rawTgz(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    const header = new tar.Header({ path: e.path, mode: 0o644, size: e.type === 'File' || e.type === undefined ? data.length : 0, type: e.type ?? 'File', mtime: new Date(0), ...(e.linkpath ? { linkpath: e.linkpath } : {}) });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if ((e.type ?? 'File') === 'File' && data.length > 0) blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

const spec: JobSpec = parseJobSpec(
  `name: web
packages: [ingot]
templates: {web.yml: config/web.yml}
properties: {web.port: {description: port, default: 8080}}
`,
  'spec.yml',
);
const templates = { 'web.yml': 'port: ((p:web.port))\n' };
const jobTgz = rawTgz(jobFiles(spec, templates).map((f) => ({ path: f.path, data: f.data })));
const pkgTgz = rawTgz([{ path: 'bin/ingot', data: '#!/bin/sh\n' }]);
const fp = (c: string) => c.repeat(64);

function manifest(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'ingot',
    version: '1.0.0',
    commit_hash: 'abc123',
    uncommitted_changes: false,
    jobs: [{ name: 'web', version: 'v1', fingerprint: jobFingerprint(jobFiles(spec, templates)), sha1: sha1(jobTgz) }],
    packages: [{ name: 'ingot', version: 'v1', fingerprint: fp('a'), sha1: sha1(pkgTgz), dependencies: [] }],
    ...over,
  };
}

function release(mf: unknown, members: RawEntry[] = [{ path: 'jobs/web.tgz', data: jobTgz }, { path: 'packages/ingot.tgz', data: pkgTgz }]): Buffer {
  return rawTgz([{ path: 'release.MF', data: typeof mf === 'string' ? mf : stringify(mf) }, ...members]);
}

async function problems(data: Buffer): Promise<string[]> {
  try {
    await readRelease(data, 'r.tgz');
  } catch (err) {
    if (err instanceof ReleaseError) return err.problems;
    throw err;
  }
  throw new Error('expected a ReleaseError');
}

test('a valid release is read: manifest, job specs and templates, package bytes', async (t) => {
  const r = await readRelease(release(manifest()), 'r.tgz');
  t.is(r.manifest.version, '1.0.0');
  t.is(r.jobs[0]!.spec.name, 'web');
  t.deepEqual(r.jobs[0]!.templates, templates);
  t.deepEqual(r.packages[0]!.tarball, pkgTgz);
});

test('a bad release.MF reports each field with its path', async (t) => {
  const bad = manifest({ version: 'has space', jobs: [{ name: 'web', version: 'v1', fingerprint: 'short', sha1: sha1(jobTgz) }], packages: [{ name: 'ingot', version: 'v', fingerprint: fp('a'), sha1: sha1(pkgTgz), dependencies: ['libc'] }], extra: 1 });
  const p = await problems(release(bad));
  t.true(p.some((l) => l.startsWith('r.tgz: release.MF version: a version is')), p.join('\n'));
  t.true(p.includes('r.tgz: release.MF jobs[0].fingerprint: a fingerprint is 64 hex digits (sha256)'), p.join('\n'));
  t.true(p.some((l) => l.startsWith('r.tgz: release.MF: Unrecognized key')), p.join('\n'));
  const syntax = await problems(release('name: [unclosed'));
  t.is(syntax.length, 1);
  t.regex(syntax[0]!, /^r\.tgz: release\.MF: /);
  t.deepEqual(await problems(rawTgz([{ path: 'jobs/web.tgz', data: jobTgz }])), ['r.tgz: has no release.MF']);
  t.deepEqual(await problems(Buffer.from('not a tarball')), ['r.tgz: not a readable .tgz (TAR_BAD_ARCHIVE: Unrecognized archive format)', 'r.tgz: has no release.MF']);
});

test('a member whose sha1 differs from release.MF is refused, naming it', async (t) => {
  const tampered = rawTgz([{ path: 'bin/ingot', data: '#!/bin/sh\necho owned\n' }]);
  const p = await problems(release(manifest(), [{ path: 'jobs/web.tgz', data: jobTgz }, { path: 'packages/ingot.tgz', data: tampered }]));
  t.deepEqual(p, [`r.tgz: packages/ingot.tgz: sha1 mismatch (release.MF says ${sha1(pkgTgz)}, the file has ${sha1(tampered)})`]);
});

test('missing and unlisted members are reported', async (t) => {
  const p = await problems(release(manifest(), [{ path: 'jobs/web.tgz', data: jobTgz }, { path: 'jobs/extra.tgz', data: jobTgz }]));
  t.deepEqual(p.sort(), ['r.tgz: jobs/extra.tgz is not listed in release.MF', 'r.tgz: packages/ingot.tgz is listed in release.MF but missing']);
});

test('paths that climb out, absolute paths and links are refused, in the release and inside members', async (t) => {
  const outer = await problems(release(manifest(), [
    { path: 'jobs/web.tgz', data: jobTgz },
    { path: 'packages/ingot.tgz', data: pkgTgz },
    { path: '../../etc/cron.d/evil', data: 'x' },
    { path: '/etc/passwd', data: 'x' },
    { path: 'jobs/link', type: 'SymbolicLink', linkpath: '/etc/shadow' },
  ]));
  t.true(outer.includes('r.tgz: entry "../../etc/cron.d/evil" is outside the archive (absolute or with "..")'), outer.join('\n'));
  t.true(outer.includes('r.tgz: entry "/etc/passwd" is outside the archive (absolute or with "..")'), outer.join('\n'));
  t.true(outer.includes('r.tgz: entry "jobs/link" is a SymbolicLink; only files and directories are allowed'), outer.join('\n'));

  const evilPkg = rawTgz([{ path: 'bin/../../../root/.ssh/authorized_keys', data: 'ssh-rsa x' }]);
  const inner = await problems(release(manifest({ packages: [{ name: 'ingot', version: 'v1', fingerprint: fp('a'), sha1: sha1(evilPkg), dependencies: [] }] }), [
    { path: 'jobs/web.tgz', data: jobTgz },
    { path: 'packages/ingot.tgz', data: evilPkg },
  ]));
  t.deepEqual(inner, ['r.tgz: packages/ingot.tgz: entry "bin/../../../root/.ssh/authorized_keys" is outside the archive (absolute or with "..")']);
});

test('a job whose job.MF is invalid, whose templates are wrong or whose fingerprint differs is refused', async (t) => {
  const badJob = rawTgz([
    { path: 'job.MF', data: 'name: web\npackages: [libc]\ntemplates: {web.yml: config/web.yml}\nproperties: {}\n' },
    { path: 'templates/web.yml', data: 'port: ((p:web.port))\n' },
    { path: 'templates/stray.yml', data: 'x: 1\n' },
  ]);
  const p = await problems(release(manifest({ jobs: [{ name: 'web', version: 'v1', fingerprint: fp('b'), sha1: sha1(badJob) }] }), [
    { path: 'jobs/web.tgz', data: badJob },
    { path: 'packages/ingot.tgz', data: pkgTgz },
  ]));
  t.true(p.includes('r.tgz: jobs/web.tgz: job.MF packages[0]: libc is not in the release'), p.join('\n'));
  t.true(p.includes('r.tgz: jobs/web.tgz: templates/stray.yml is not a template the job names'), p.join('\n'));
  t.true(p.includes("r.tgz: jobs/web.tgz, template web.yml: ((p:web.port)): unknown property web.port (not in the job's spec)"), p.join('\n'));
  t.true(p.some((l) => l.startsWith('r.tgz: jobs/web.tgz: fingerprint mismatch')), p.join('\n'));

  const noSpec = rawTgz([{ path: 'job.MF', data: 'name: web\nbogus: true\n' }]);
  const q = await problems(release(manifest({ jobs: [{ name: 'web', version: 'v1', fingerprint: fp('b'), sha1: sha1(noSpec) }] }), [
    { path: 'jobs/web.tgz', data: noSpec },
    { path: 'packages/ingot.tgz', data: pkgTgz },
  ]));
  t.deepEqual(q, ["r.tgz: jobs/web.tgz: job.MF (top): Unrecognized key(s) in object: 'bogus'"]);
});

test('an entry given twice and a tarball that unpacks too large are refused', async (t) => {
  const p = await problems(release(manifest(), [{ path: 'jobs/web.tgz', data: jobTgz }, { path: 'packages/ingot.tgz', data: pkgTgz }, { path: 'jobs/web.tgz', data: jobTgz }]));
  t.deepEqual(p, ['r.tgz: entry "jobs/web.tgz" appears twice']);
  const { readTgz } = await import('../../orchestrator/release/tarball.ts');
  const bomb: string[] = [];
  await readTgz(rawTgz([{ path: 'zeros', data: Buffer.alloc(4096) }]), 'bomb.tgz', bomb, 1024);
  t.deepEqual(bomb, ['bomb.tgz: unpacks to more than 1024 bytes']);
});

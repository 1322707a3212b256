// The local stemcell: stemcell.MF parsing and rendering, the image description's inputs
// (os-release, job specs' Debian packages), and a built tarball that the local CPI accepts.
import test from 'ava';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tar from 'tar';
import {
  collectDebianPackages,
  operatingSystemOf,
  parseOsRelease,
  parseStemcellManifest,
  renderStemcellManifest,
  StemcellManifestError,
} from '../../stemcells/local/manifest.ts';
import { buildStemcell, MANIFEST_FILE } from '../../stemcells/local/build.ts';
import { callCpi } from '../helpers/cpi-local.ts';
import { runPrefix, scratchDir } from '../helpers/tmp.ts';

const OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n# a comment\n';

test("the repo's stemcell.MF names the local bookworm stemcell", async (t) => {
  const m = parseStemcellManifest(await readFile(MANIFEST_FILE, 'utf8'), MANIFEST_FILE);
  t.like(m, { name: 'ingot-local-bookworm', operating_system: 'debian-12', stemcell_formats: ['ingot-local'] });
  t.truthy(m.version);
  t.is(typeof m.cloud_properties, 'object');
});

test('rendering then parsing gives the same manifest', (t) => {
  const m = parseStemcellManifest('name: s\nversion: 3\noperating_system: debian-12\nsha1: ' + 'a'.repeat(40) + '\ncloud_properties: {x: 1}\n');
  t.is(m.version, '3');
  t.deepEqual(parseStemcellManifest(renderStemcellManifest(m)), m);
  t.regex(renderStemcellManifest(m), /^name: s\nversion: "3"\n/);
});

test('every problem is reported at once, with file, line and path', (t) => {
  const err = t.throws(() => parseStemcellManifest('name: Bad Name\nversion: 1\noperating_system: bookworm\nsha1: xyz\nextra: 1\n', 'sc/stemcell.MF'), {
    instanceOf: StemcellManifestError,
  });
  t.is(err!.problems.length, 4);
  t.true(err!.problems.some((p) => p.startsWith('sc/stemcell.MF:1 name:')));
  t.true(err!.problems.some((p) => p.startsWith('sc/stemcell.MF:3 operating_system:')));
  t.true(err!.problems.some((p) => p.startsWith('sc/stemcell.MF:4 sha1:')));
  t.true(err!.problems.some((p) => /extra/.test(p)));
  t.throws(() => parseStemcellManifest('name: [\n', 'x.MF'), { instanceOf: StemcellManifestError, message: /^Parsing x\.MF: x\.MF:\d/ });
});

test('os-release fields and the operating system they name', (t) => {
  const os = parseOsRelease(OS_RELEASE);
  t.is(os.PRETTY_NAME, 'Debian GNU/Linux 12 (bookworm)');
  t.is(operatingSystemOf(os), 'debian-12');
  t.is(operatingSystemOf(parseOsRelease('ID=ubuntu\nVERSION_ID="22.04"\n')), 'ubuntu-22');
});

test("job specs' Debian packages are merged, sorted, with the jobs that want them", (t) => {
  const got = collectDebianPackages([
    { job: 'web', spec: { name: 'web', debian_packages: ['nginx', 'curl'], templates: {} }, source: 'web/spec' },
    { job: 'db', spec: { debian_packages: ['curl'] }, source: 'db/spec' },
    { job: 'none', spec: { name: 'none' }, source: 'none/spec' },
  ]);
  t.deepEqual(got, [
    { name: 'curl', wanted_by: ['db', 'web'] },
    { name: 'nginx', wanted_by: ['web'] },
  ]);
  t.throws(() => collectDebianPackages([{ job: 'x', spec: { debian_packages: ['Not A Name'] }, source: 'x/spec' }]), {
    instanceOf: StemcellManifestError,
    message: /x\/spec debian_packages\.0/,
  });
});

test('a built stemcell tarball holds the manifest and image, and the local CPI accepts it', async (t) => {
  const dir = scratchDir('stemcell');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const osRelease = join(dir, 'os-release');
  await writeFile(osRelease, OS_RELEASE);
  const out = join(dir, 'stemcell.tgz');
  const built = await buildStemcell({ out, jobDirs: [], install: false, osReleaseFile: osRelease });
  const x = join(dir, 'x');
  await mkdir(x);
  await tar.x({ file: out, cwd: x });
  const manifest = parseStemcellManifest(await readFile(join(x, 'stemcell.MF'), 'utf8'));
  t.deepEqual(manifest, built.manifest);
  t.regex(manifest.sha1 ?? '', /^[0-9a-f]{40}$/);
  const image = JSON.parse(await readFile(join(x, 'image'), 'utf8')) as typeof built.image;
  t.like(image, { os: { id: 'debian', version_id: '12' }, node: { path: process.execPath, version: process.version }, debian_packages: [] });
  t.true(image.agent.main.endsWith('orchestrator/agent/main.ts'));

  // create_stemcell only records the image: no network or VM is touched.
  const configFile = join(dir, 'cpi.json');
  await writeFile(configFile, JSON.stringify({ prefix: runPrefix(), data_dir: join(dir, 'data') }));
  const answer = await callCpi(configFile, 'create_stemcell', [join(x, 'image'), manifest.cloud_properties]);
  t.is(answer.error, null);
  t.regex(String(answer.result), /^sc-/);
  t.deepEqual((await callCpi(configFile, 'delete_stemcell', [answer.result])).error, null);
});

test('a build for another OS than the host it shares is refused', async (t) => {
  const dir = scratchDir('stemcell');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const osRelease = join(dir, 'os-release');
  await writeFile(osRelease, 'ID=ubuntu\nVERSION_ID="22.04"\n');
  await t.throwsAsync(buildStemcell({ out: join(dir, 'sc.tgz'), jobDirs: [], install: false, osReleaseFile: osRelease }), {
    instanceOf: StemcellManifestError,
    message: /says debian-12 but this host runs ubuntu-22/,
  });
});

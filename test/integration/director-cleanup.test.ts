// Removing releases and stemcells from a real director process (test/helpers/director.ts) with
// the local CPI, which holds the stemcells but is never asked for a VM: DELETE /releases and
// /stemcells with the blobstore directory and the CPI's stemcells checked, the 409s while a
// deployment uses a version (a real deploy of a manifest without instance groups, which the
// director records as deployed, no VM needed) or while a deployment's lock is held, POST /cleanup
// keeping the two newest unused versions and, with remove_all, none — and the same through the
// real CLI (delete-release, delete-stemcell, clean-up) with its one-line mistakes.
import anyTest, { type TestFn } from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { jobFingerprint, parseJobSpec, sha1 } from '../../orchestrator/release/mod.ts';
import { jobFiles } from '../../orchestrator/release/jobs.ts';
import { rm } from 'node:fs/promises';
import { cliChecks } from '../helpers/cli-checks.ts';
import { runCli } from '../helpers/component-process.ts';
import { localCpiFixture, sweepCpi, type CpiFixture } from '../helpers/cpi-local.ts';
import { directorConfig, DirectorProcess, tarball, type DirectorClient } from '../helpers/director.ts';
import { scratchDir } from '../helpers/tmp.ts';

interface Ctx {
  fx: CpiFixture;
  director: DirectorProcess;
  api: DirectorClient;
  /** The package tarball every release version shares: one blob. */
  pkgTgz: Buffer;
}
const test = anyTest as TestFn<Ctx>;

// Every CLI run of this file keeps its config here.
const HOME = scratchDir('director-cleanup-home');
process.env.INGOT_HOME = HOME;
delete process.env.INGOT_DIRECTOR_USERNAME;
delete process.env.INGOT_DIRECTOR_PASSWORD;
const cli = (...args: string[]) => runCli(args, { timeoutMs: 30_000 });
const { ok, refused } = cliChecks(cli);

const spec = parseJobSpec('name: web\npackages: [ingot]\ntemplates: {web.yml: config/web.yml}\nproperties: {web.port: {description: port, default: 8080}}\n', 'spec.yml');

/** A release orchestrator/release's reader accepts (a deploy reads it): its job differs per version, its package is shared. */
async function release(version: string, pkgTgz: Buffer): Promise<{ tgz: Buffer; jobTgz: Buffer }> {
  const files = jobFiles(spec, { 'web.yml': `# ${version}\nport: ((p:web.port))\n` });
  const jobTgz = await tarball(Object.fromEntries(files.map((f) => [f.path, f.data])));
  const mf = {
    name: 'ingot',
    version,
    commit_hash: 'abc123',
    uncommitted_changes: false,
    jobs: [{ name: 'web', version: `web-${version}`, fingerprint: jobFingerprint(files), sha1: sha1(jobTgz) }],
    packages: [{ name: 'ingot', version: 'p1', fingerprint: 'a'.repeat(64), sha1: sha1(pkgTgz), dependencies: [] }],
  };
  return { tgz: await tarball({ 'release.MF': stringify(mf), 'jobs/web.tgz': jobTgz, 'packages/ingot.tgz': pkgTgz }), jobTgz };
}

const stemcell = (version: string) => tarball({ 'stemcell.MF': `name: ingot-local\nversion: "${version}"\noperating_system: debian-12\n`, image: `image ${version}\n` });

/** Whether the blob is a file in the director's blobstore directory. */
const onDisk = (t: { context: Ctx }, id: string): boolean => existsSync(join(t.context.director.fixture.dataDir, 'blobs', id.slice(0, 2), id));

async function upload(t: { context: Ctx }, version: string): Promise<{ blob_id: string; job: string; pkg: string }> {
  const r = await t.context.api.request('POST', '/releases', undefined, { raw: (await release(version, t.context.pkgTgz)).tgz });
  if (r.status !== 201) throw new Error(`upload ingot/${version}: ${r.status} ${r.text}`);
  return { blob_id: r.body.blob_id, job: r.body.jobs[0].blob_id, pkg: r.body.packages[0].blob_id };
}

async function uploadStemcell(t: { context: Ctx }, version: string): Promise<{ blob_id: string; cid: string }> {
  const r = await t.context.api.request('POST', '/stemcells', undefined, { raw: await stemcell(version) });
  if (r.status !== 201) throw new Error(`upload stemcell ${version}: ${r.status} ${r.text}`);
  return { blob_id: r.body.blob_id as string, cid: r.body.cid as string };
}

/** Whether the local CPI still holds the stemcell. */
const cpiHas = (t: { context: Ctx }, cid: string): boolean => existsSync(join(t.context.fx.dir, 'data', 'stemcells', `${cid}.json`));

const versions = async (t: { context: Ctx }, path: '/releases' | '/stemcells'): Promise<string[]> =>
  ((await t.context.api.request('GET', path)).body as Array<{ version: string }>).map((r) => r.version).sort();

/** A real deploy: a manifest without instance groups needs no VM, and the director records it as deployed. */
async function deploy(t: { context: Ctx }, name: string, releaseVersion: string, stemcellVersion: string): Promise<void> {
  const manifest = stringify({
    name,
    releases: [{ name: 'ingot', version: releaseVersion }],
    stemcells: [{ alias: 'default', os: 'debian-12', version: stemcellVersion }],
    update: { canaries: 1, max_in_flight: 1, canary_watch_time: '1000-2000', update_watch_time: '1000-2000' },
    instance_groups: [],
  });
  const res = await fetch(`${t.context.api.url}/deployments`, { method: 'POST', headers: { authorization: `bearer ${await t.context.api.login()}`, 'content-type': 'text/yaml' }, body: manifest });
  const task = (await res.json()) as { id: number };
  const done = await t.context.api.waitForTask(task.id, ['done', 'error'], 30_000);
  if (done.state !== 'done') throw new Error(`deploy ${name}: ${done.result}`);
}

test.before(async (t) => {
  const fx = await localCpiFixture();
  t.context = { fx } as Ctx;
  const fixture = await directorConfig({ cpi: 'local', cpi_config: fx.configFile });
  const director = await DirectorProcess.start(fixture);
  t.context = { fx, director, api: director.client(), pkgTgz: await tarball({ 'bin/ingot': '#!/bin/sh\n' }) };
  const cloud = stringify({ azs: [{ name: 'z1' }], vm_types: [{ name: 'small' }], networks: [{ name: 'default', type: 'manual', subnets: [{ range: '10.9.0.0/24', gateway: '10.9.0.1', az: 'z1' }] }], compilation: { workers: 1, network: 'default', vm_type: 'small', az: 'z1' } });
  const cc = await t.context.api.request('POST', '/cloud_configs', { properties: cloud });
  if (cc.status !== 201) throw new Error(`cloud-config: ${cc.status} ${cc.text}`);
  const target = await cli('director', director.url);
  if (target.code !== 0) throw new Error(`ingot director: ${target.stderr}`);
  const login = await cli('director', 'login', '-u', fixture.admin.user, '-p', fixture.admin.password);
  if (login.code !== 0) throw new Error(`ingot director login: ${login.stderr}`);
});

test.after.always(async (t) => {
  await t.context.director?.cleanup();
  if (!t.context.fx) return;
  await sweepCpi(t.context.fx);
  await rm(t.context.fx.dir, { recursive: true, force: true });
});

test.serial('DELETE /releases/:name/:version removes the blobs only it held; the package it shares with another version stays', async (t) => {
  t.timeout(60_000);
  const { api } = t.context;
  const one = await upload(t, 'a1');
  const two = await upload(t, 'a2');
  t.is(one.pkg, two.pkg);
  t.not(one.job, two.job);
  for (const b of [one.blob_id, one.job, one.pkg, two.blob_id, two.job]) t.true(onDisk(t, b), b);

  for (const [method, path] of [['DELETE', '/releases/ingot/a1'], ['DELETE', '/releases/ingot'], ['DELETE', '/stemcells/x/1'], ['POST', '/cleanup']] as const) {
    t.is((await api.request(method, path, undefined, { token: null })).status, 401, `${method} ${path} without a token`);
  }
  t.true(onDisk(t, one.blob_id));
  const del = await api.request('DELETE', '/releases/ingot/a1');
  t.is(del.status, 200, del.text);
  t.deepEqual(del.body.deleted, ['ingot/a1']);
  t.deepEqual(del.body.blobs, [one.blob_id, one.job].sort());
  t.false(onDisk(t, one.blob_id));
  t.false(onDisk(t, one.job));
  for (const b of [one.pkg, two.blob_id, two.job]) t.true(onDisk(t, b), `${b} is still referenced by ingot/a2`);
  t.deepEqual(await versions(t, '/releases'), ['a2']);
  const task = await api.request('GET', `/tasks/${del.body.task_id}`);
  t.is(task.body.type, 'delete_release');
  t.is(task.body.state, 'done');
  t.regex(task.body.result, /^Deleted 1 release \(ingot\/a1\) and 2 blobs$/);

  const again = await api.request('DELETE', '/releases/ingot/a1');
  t.is(again.status, 404);
  t.is(again.body.errors[0].detail, 'Release ingot/a1 not found');
  t.is((await api.request('DELETE', '/releases/nope')).status, 404);

  // Every version of the name: the last holder of the package takes it along.
  const all = await api.request('DELETE', '/releases/ingot');
  t.is(all.status, 200, all.text);
  t.deepEqual(all.body.deleted, ['ingot/a2']);
  for (const b of [two.blob_id, two.job, two.pkg]) t.false(onDisk(t, b), b);
  t.deepEqual(await versions(t, '/releases'), []);
});

test.serial('a release or stemcell a deployment uses is refused with 409 naming it; a held deployment lock refuses removals too', async (t) => {
  t.timeout(90_000);
  const { api } = t.context;
  const used = await upload(t, 'u1');
  await upload(t, 'u2');
  const st1 = await uploadStemcell(t, '1');
  await deploy(t, 'dd', 'u1', '1');
  const del = await api.request('DELETE', '/releases/ingot/u1');
  t.is(del.status, 409, del.text);
  t.is(del.body.errors[0].detail, 'Cannot delete release ingot/u1: in use by ingot/u1 (deployment dd)');
  const every = await api.request('DELETE', '/releases/ingot');
  t.is(every.status, 409);
  t.regex(every.body.errors[0].detail, /in use by ingot\/u1 \(deployment dd\)/);
  t.deepEqual(await versions(t, '/releases'), ['u1', 'u2']);
  t.true(onDisk(t, used.job));

  const stDel = await api.request('DELETE', '/stemcells/ingot-local/1');
  t.is(stDel.status, 409, stDel.text);
  t.is(stDel.body.errors[0].detail, 'Cannot delete stemcell ingot-local/1: in use by ingot-local/1 (deployment dd)');
  t.deepEqual((await api.request('GET', '/stemcells')).body[0].deployments, ['dd']);
  t.true(onDisk(t, st1.blob_id));
  t.true(cpiHas(t, st1.cid));
  t.is((await api.request('DELETE', '/stemcells/ingot-local/9')).status, 404);

  // A task holding a deployment's lock (a deploy would) keeps every removal out, and clean-up.
  const busy = await api.request('POST', '/test/sleep', { deployment: 'busy', steps: 100, step_ms: 100 });
  t.is(busy.status, 202);
  const locked = await api.request('DELETE', '/releases/ingot/u2');
  t.is(locked.status, 409);
  t.is(locked.body.errors[0].detail, `The deployment busy is locked by task ${busy.body.id} (sleep for busy)`);
  const cleanup = await api.request('POST', '/cleanup', { remove_all: true });
  t.is(cleanup.status, 409);
  t.regex(cleanup.body.errors[0].detail, new RegExp(`locked by task ${busy.body.id}`));
  t.is((await api.request('POST', `/tasks/${busy.body.id}/cancel`)).status, 202);
  await api.waitForTask(busy.body.id, ['cancelled']);
  t.deepEqual(await versions(t, '/releases'), ['u1', 'u2']);

  const ok2 = await api.request('DELETE', '/releases/ingot/u2');
  t.is(ok2.status, 200, ok2.text);
  t.true(onDisk(t, used.pkg), 'the package ingot/u1 shares stays');
  const bad = await api.request('POST', '/cleanup', { remove_all: 'yes' });
  t.is(bad.status, 422);
  t.regex(bad.body.errors[0].detail, /remove_all/);
});

test.serial('POST /cleanup keeps the two newest unused versions of each name; remove_all keeps none; used ones always stay', async (t) => {
  t.timeout(90_000);
  const { api } = t.context;
  // In use from the test before: ingot/u1 and stemcell ingot-local/1 (dd).
  for (const v of ['c1', 'c2', 'c3']) await upload(t, v);
  const c1 = (await api.request('GET', '/releases')).body.find((r: { version: string }) => r.version === 'c1');
  const st2 = await uploadStemcell(t, '2');
  for (const v of ['3', '4']) await uploadStemcell(t, v);

  const queued = await api.request('POST', '/cleanup', {});
  t.is(queued.status, 202, queued.text);
  t.is(queued.body.type, 'cleanup');
  const done = await api.waitForTask(queued.body.id, ['done', 'error'], 30_000);
  t.is(done.state, 'done', done.result);
  t.is(done.result, 'Deleted 1 release (ingot/c1), 1 stemcell (ingot-local/2)');
  t.deepEqual(await versions(t, '/releases'), ['c2', 'c3', 'u1']);
  t.deepEqual(await versions(t, '/stemcells'), ['1', '3', '4']);
  t.false(onDisk(t, c1.blob_id));
  t.false(onDisk(t, c1.jobs[0].blob_id));
  t.true(onDisk(t, c1.packages[0].blob_id));
  t.false(onDisk(t, st2.blob_id));
  t.false(cpiHas(t, st2.cid), "the CPI's stemcell is deleted too");

  const all = await api.request('POST', '/cleanup', { remove_all: true });
  t.is(all.status, 202);
  const allDone = await api.waitForTask(all.body.id, ['done', 'error'], 30_000);
  t.is(allDone.result, 'Deleted 2 releases (ingot/c2, ingot/c3), 2 stemcells (ingot-local/3, ingot-local/4)');
  t.deepEqual(await versions(t, '/releases'), ['u1']);
  t.deepEqual(await versions(t, '/stemcells'), ['1']);
  const nothing = await api.request('POST', '/cleanup', { remove_all: true });
  t.regex((await api.waitForTask(nothing.body.id, ['done'], 30_000)).result, /^Nothing to clean up/);
});

test.serial('the CLI: delete-release, delete-stemcell and clean-up [--all], asking unless -n; mistakes in one line', async (t) => {
  t.timeout(120_000);
  await refused(t, /release "ingot\/a\/b": expected NAME or NAME\/VERSION/, 'delete-release', 'ingot/a/b', '-n');
  await refused(t, /stemcell "ingot-local": expected NAME\/VERSION/, 'delete-stemcell', 'ingot-local', '-n');
  await refused(t, /give -n to go ahead without asking/, 'delete-release', 'ingot/u1');
  await refused(t, /Deleting release ingot\/u1: Cannot delete release ingot\/u1: in use by ingot\/u1 \(deployment dd\)/, 'delete-release', 'ingot/u1', '-n');
  await refused(t, /Deleting stemcell ingot-local\/1: Cannot delete stemcell ingot-local\/1: in use by ingot-local\/1 \(deployment dd\)/, 'delete-stemcell', 'ingot-local/1', '-n');
  await refused(t, /Release ingot\/zz not found/, 'delete-release', 'ingot/zz', '-n');

  for (const v of ['d1', 'd2', 'd3', 'd4']) await upload(t, v);
  const one = await ok(t, 'delete-release', 'ingot/d1', '-n');
  t.regex(one.stdout, /^Deleted release ingot\/d1 and 2 blobs no longer referenced \(task \d+\)\.$/m);
  const st5 = await uploadStemcell(t, '5');
  t.true(cpiHas(t, st5.cid));
  const st = await ok(t, 'delete-stemcell', 'ingot-local/5', '-n', '--json');
  t.deepEqual(JSON.parse(st.stdout).deleted, ['ingot-local/5']);
  t.false(cpiHas(t, st5.cid));
  t.false(onDisk(t, st5.blob_id));

  await refused(t, /give -n to go ahead without asking/, 'clean-up');
  const some = await ok(t, 'clean-up', '-n');
  t.regex(some.stdout, /^Task \d+ done$/m);
  // d2, d3 and d4 unused: the two newest stay.
  t.regex(some.stdout, /^Deleted 1 release \(ingot\/d2\), 0 stemcells$/m);
  t.deepEqual(await versions(t, '/releases'), ['d3', 'd4', 'u1']);
  const all = await ok(t, 'clean-up', '--all', '-n');
  t.regex(all.stdout, /\| Deleting releases ingot\/d3/);
  t.regex(all.stdout, /^Deleted 2 releases \(ingot\/d3, ingot\/d4\), 0 stemcells$/m);
  t.deepEqual(await versions(t, '/releases'), ['u1']);

  // Deleting the deployment frees its release; delete-release NAME then takes every version.
  await ok(t, 'delete-deployment', '-d', 'dd', '-n');
  const every = await ok(t, 'delete-release', 'ingot', '-n');
  t.regex(every.stdout, /^Deleted release ingot\/u1 and 3 blobs no longer referenced \(task \d+\)\.$/m);
  t.deepEqual(await versions(t, '/releases'), []);
});

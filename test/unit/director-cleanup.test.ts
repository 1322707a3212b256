// Removing releases and stemcells: the pure rules (which versions the deployments use, which
// versions clean-up keeps, which blobs are left unreferenced, the result line, the CLI's
// NAME/VERSION arguments), the `deployment:*` lock on a real store, and CatalogRemoval on a
// real store and blobstore with a CPI whose delete_stemcell fails.
import anyTest, { type TestFn } from 'ava';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { releaseArg, stemcellArg } from '../../orchestrator/client/director-args.ts';
import { Blobstore } from '../../orchestrator/director/blobstore.ts';
import { CatalogRemoval } from '../../orchestrator/director/catalog-removal.ts';
import { catalogUsage, cleanupChoice, cleanupResult, newestFirst, releaseBlobs, unreferencedBlobs } from '../../orchestrator/director/catalog.ts';
import { CatalogError, LockHeldError } from '../../orchestrator/director/errors.ts';
import { ALL_DEPLOYMENTS_LOCK, DirectorStore, locksConflict } from '../../orchestrator/director/store.ts';
import { TaskRunner } from '../../orchestrator/director/task-runner.ts';
import type { ReleaseRecord, StemcellRecord } from '../../orchestrator/director/types.ts';
import { tarball } from '../helpers/director.ts';
import { scratchDir } from '../helpers/tmp.ts';

const test = anyTest as TestFn<{ stores: DirectorStore[]; runners: TaskRunner[] }>;

test.beforeEach((t) => {
  t.context = { stores: [], runners: [] };
});

test.afterEach.always(async (t) => {
  for (const r of t.context.runners) await r.stop(1000);
  for (const s of t.context.stores) await s.close().catch(() => undefined);
});

const rel = (id: number, name: string, version: string, blobs: string[] = []): ReleaseRecord => ({
  id,
  name,
  version,
  blob_id: `${name}-${version}.tgz`,
  uploaded_at: '2026-01-01T00:00:00Z',
  jobs: blobs.map((b) => ({ name: b, version: b, fingerprint: b, blob_id: b })),
  packages: [],
});
const stem = (id: number, name: string, version: string, os = 'debian-12'): StemcellRecord => ({
  id, name, version, operating_system: os, cpi_cid: null, blob_id: `st-${id}`, image_blob_id: null, cloud_properties: {}, uploaded_at: '2026-01-01T00:00:00Z',
});
const manifest = (releases: string, stemcells = '[]') => `name: x\nreleases: ${releases}\nstemcells: ${stemcells}\n`;

// ---- usage --------------------------------------------------------------------------------------

test('usage: a manifest version, `latest` as the deploy resolves it (upload order), a stemcell by os or by name', (t) => {
  const releases = [rel(1, 'ingot', '0.1.0+dev.b'), rel(2, 'ingot', '0.1.0+dev.a'), rel(3, 'other', '1')];
  const stemcells = [stem(1, 'ingot-local', '1'), stem(2, 'ingot-local', '2'), stem(3, 'other-st', '7', 'alpine')];
  const usage = catalogUsage(
    [
      { name: 'a', manifest: manifest('[{name: ingot, version: latest}]', '[{alias: default, os: debian-12, version: "1"}]'), specs: [] },
      { name: 'b', manifest: manifest('[{name: ingot, version: 0.1.0+dev.b}, {name: other, version: "1"}]', '[{alias: d, name: other-st, version: latest}]'), specs: [] },
    ],
    releases,
    stemcells,
  );
  // 0.1.0+dev.a sorts first as text, but it was uploaded last: `latest` is it.
  t.deepEqual(usage.releases.get(2), ['a']);
  t.deepEqual(usage.releases.get(1), ['b']);
  t.deepEqual(usage.releases.get(3), ['b']);
  t.deepEqual(usage.stemcells.get(1), ['a']);
  t.is(usage.stemcells.get(2), undefined);
  t.deepEqual(usage.stemcells.get(3), ['b']);
});

test("usage: instances still running a version the manifest no longer names keep it in use; a bad manifest uses nothing", (t) => {
  const releases = [rel(1, 'ingot', '1'), rel(2, 'ingot', '2')];
  const stemcells = [stem(1, 'ingot-local', '1'), stem(2, 'ingot-local', '2')];
  const spec = { jobs: [{ name: 'router', release: 'ingot', release_version: '1' }], stemcell: { os: 'debian-12', version: '1' } };
  const usage = catalogUsage(
    [
      { name: 'half', manifest: manifest('[{name: ingot, version: "2"}]', '[{alias: d, os: debian-12, version: "2"}]'), specs: [spec, spec] },
      { name: 'broken', manifest: 'releases: [unclosed', specs: [] },
    ],
    releases,
    stemcells,
  );
  t.deepEqual(usage.releases.get(1), ['half']);
  t.deepEqual(usage.releases.get(2), ['half']);
  t.deepEqual(usage.stemcells.get(1), ['half']);
  t.deepEqual(usage.stemcells.get(2), ['half']);
});

// ---- which versions clean-up deletes --------------------------------------------------------------

test('clean-up keeps the two newest unused versions of each name (by upload order), never counting used ones', (t) => {
  const releases = [rel(1, 'ingot', '10'), rel(2, 'ingot', '9'), rel(3, 'ingot', '11'), rel(4, 'ingot', '8'), rel(5, 'ingot', '7'), rel(6, 'solo', '1')];
  const stemcells = [stem(1, 'ingot-local', '1'), stem(2, 'ingot-local', '2'), stem(3, 'ingot-local', '3')];
  const usage = { releases: new Map([[4, ['dd']]]), stemcells: new Map<number, string[]>() };
  const chosen = cleanupChoice({ releases, stemcells, usage, removeAll: false });
  // Unused ingot: ids 1, 2, 3, 5 → the newest two (5, 3) stay; 4 is used; solo has only one.
  t.deepEqual(chosen.releases.map((r) => r.version), ['10', '9']);
  t.deepEqual(chosen.stemcells.map((s) => s.version), ['1']);
});

test('clean-up --all deletes every unused version and nothing used', (t) => {
  const releases = [rel(1, 'ingot', '1'), rel(2, 'ingot', '2'), rel(3, 'ingot', '3'), rel(4, 'solo', '1')];
  const stemcells = [stem(1, 'ingot-local', '1'), stem(2, 'ingot-local', '2')];
  const usage = { releases: new Map([[2, ['dd']]]), stemcells: new Map([[2, ['dd']]]) };
  const chosen = cleanupChoice({ releases, stemcells, usage, removeAll: true });
  t.deepEqual(chosen.releases.map((r) => `${r.name}/${r.version}`), ['ingot/1', 'ingot/3', 'solo/1']);
  t.deepEqual(chosen.stemcells.map((s) => s.version), ['1']);
  t.deepEqual(cleanupChoice({ releases: [], stemcells: [], usage, removeAll: true }), { releases: [], stemcells: [] });
});

test('newestFirst orders by upload, not by the text of the version', (t) => {
  t.deepEqual(newestFirst([rel(1, 'a', '2'), rel(3, 'a', '1'), rel(2, 'a', '3')]).map((r) => r.id), [3, 2, 1]);
});

// ---- blobs and the result line --------------------------------------------------------------------

test('blobs shared with a kept release stay; the rest go, each once', (t) => {
  const one = rel(1, 'ingot', '1', ['job-a', 'pkg-shared']);
  const two = rel(2, 'ingot', '2', ['job-b', 'pkg-shared']);
  t.deepEqual(releaseBlobs(one), ['ingot-1.tgz', 'job-a', 'pkg-shared']);
  t.deepEqual(unreferencedBlobs([...releaseBlobs(one), 'job-a'], releaseBlobs(two)), ['ingot-1.tgz', 'job-a']);
  t.deepEqual(unreferencedBlobs(releaseBlobs(one), [...releaseBlobs(one), ...releaseBlobs(two)]), []);
});

test('the cleanup result names what it deleted, counted in words', (t) => {
  t.is(cleanupResult({ releases: ['ingot/1', 'ingot/2', 'x/3'], stemcells: ['ingot-local/1'] }), 'Deleted 3 releases (ingot/1, ingot/2, x/3), 1 stemcell (ingot-local/1)');
  t.is(cleanupResult({ releases: ['ingot/1'], stemcells: [] }), 'Deleted 1 release (ingot/1), 0 stemcells');
  t.regex(cleanupResult({ releases: [], stemcells: [] }), /^Nothing to clean up/);
});

// ---- the CLI's arguments --------------------------------------------------------------------------

test('delete-release takes NAME or NAME/VERSION; delete-stemcell NAME/VERSION; a mistake names the argument', (t) => {
  t.deepEqual(releaseArg('ingot'), { name: 'ingot' });
  t.deepEqual(releaseArg(' ingot/0.1.0+dev.1 '), { name: 'ingot', version: '0.1.0+dev.1' });
  for (const bad of ['', '/1', 'ingot/', 'a/b/c', 'in got']) t.throws(() => releaseArg(bad), { message: new RegExp(`^release "${bad.replace(/[+/]/g, '\\$&')}": expected NAME or NAME/VERSION`) });
  t.deepEqual(stemcellArg('ingot-local/1'), { name: 'ingot-local', version: '1' });
  for (const bad of ['ingot-local', 'ingot-local/', '/1', 'a/b/c', undefined]) t.throws(() => stemcellArg(bad), { message: /^stemcell ".*": expected NAME\/VERSION/ });
});

// ---- the lock of every deployment -------------------------------------------------------------------

test('deployment:* conflicts with every deployment lock both ways, and with nothing else', (t) => {
  t.true(locksConflict(ALL_DEPLOYMENTS_LOCK, 'deployment:dd'));
  t.true(locksConflict('deployment:dd', ALL_DEPLOYMENTS_LOCK));
  t.true(locksConflict(ALL_DEPLOYMENTS_LOCK, ALL_DEPLOYMENTS_LOCK));
  t.true(locksConflict('deployment:dd', 'deployment:dd'));
  t.false(locksConflict('deployment:dd', 'deployment:ee'));
  t.false(locksConflict(ALL_DEPLOYMENTS_LOCK, 'other:x'));
});

async function open(t: { context: { stores: DirectorStore[] } }): Promise<DirectorStore> {
  const s = await DirectorStore.open(join(scratchDir('director-cleanup'), 'd.sqlite'));
  t.context.stores.push(s);
  return s;
}

test('on the store: a deployment lock held refuses deployment:*, naming that deployment; deployment:* held refuses a deploy', async (t) => {
  const store = await open(t);
  const deploy = await store.createTask({ type: 'deploy', description: 'deploy dd', deployment: 'dd', username: 'admin', locks: ['deployment:dd'] });
  const refused = await t.throwsAsync(store.createTask({ type: 'cleanup', description: 'clean up', username: 'admin', locks: [ALL_DEPLOYMENTS_LOCK] }), { instanceOf: LockHeldError });
  t.is(refused.message, `The deployment dd is locked by task ${deploy.id} (deploy dd)`);
  await store.moveTask(deploy.id, 'start');
  await store.moveTask(deploy.id, 'succeed', 'ok');
  const cleanup = await store.createTask({ type: 'cleanup', description: 'clean up', username: 'admin', locks: [ALL_DEPLOYMENTS_LOCK] });
  const blocked = await t.throwsAsync(store.createTask({ type: 'deploy', description: 'deploy ee', deployment: 'ee', username: 'admin', locks: ['deployment:ee'] }), { instanceOf: LockHeldError });
  t.is(blocked.message, `The deployment ee is locked by task ${cleanup.id} (clean up)`);
  // Locks of another kind are not held back.
  await t.notThrowsAsync(store.createTask({ type: 'x', description: 'x', username: 'admin', locks: ['other:x'] }));
});

// ---- CatalogRemoval on a real store and blobstore -----------------------------------------------------

/** A stemcell uploaded with a CPI: its image recorded, or (`legacy`) as before migration 4, found only in its tarball. */
async function removalFixture(t: { context: { stores: DirectorStore[]; runners: TaskRunner[] } }, deleteStemcell?: (cid: string) => Promise<unknown>, o: { legacy?: boolean } = {}) {
  const store = await open(t);
  const root = join(scratchDir('director-cleanup-blobs'), 'blobs');
  const blobs = new Blobstore(root);
  await blobs.init();
  const tasks = new TaskRunner(store, pino({ level: 'silent' }), 2);
  t.context.runners.push(tasks);
  const removal = new CatalogRemoval({ store, blobs, tasks, ...(deleteStemcell ? { deleteStemcell } : {}) });
  const image = Buffer.from('image bits');
  const tgz = await tarball({ 'stemcell.MF': 'name: ingot-local\nversion: "1"\noperating_system: debian-12\n', image });
  const blobId = await blobs.put(tgz);
  const imageId = await blobs.put(image);
  const record = await store.addStemcell({ name: 'ingot-local', version: '1', operating_system: 'debian-12', cpi_cid: 'sc-123', blob_id: blobId, image_blob_id: o.legacy ? null : imageId, cloud_properties: {} });
  return { store, blobs, removal, record, blobId, imageId };
}

test("a CPI that refuses delete_stemcell fails the deletion with its message; the record and blobs stay, the task says why", async (t) => {
  const asked: string[] = [];
  const f = await removalFixture(t, async (cid) => {
    asked.push(cid);
    throw new Error('stemcell sc-123 is busy');
  });
  const err = await t.throwsAsync(f.removal.deleteStemcell('ingot-local', '1', 'admin'), { instanceOf: CatalogError });
  t.is(err.code, 'cpi_failed');
  t.is(err.message, 'Deleting stemcell ingot-local/1 (cid sc-123) from the CPI: stemcell sc-123 is busy');
  t.deepEqual(asked, ['sc-123']);
  t.truthy(await f.store.stemcell('ingot-local', '1'));
  t.true(existsSync(f.blobs.pathOf(f.blobId)));
  const [task] = await f.store.tasks({ type: 'delete_stemcell' });
  t.is(task!.state, 'error');
  t.is(task!.result, err.message);
  t.deepEqual(await f.store.locks(), []);
});

test('a stemcell deleted: the CPI asked with its cid, the record gone, its tarball and image blobs removed from disk', async (t) => {
  const asked: string[] = [];
  const f = await removalFixture(t, async (cid) => asked.push(cid));
  t.is(f.imageId, createHash('sha256').update('image bits').digest('hex'));
  const out = await f.removal.deleteStemcell('ingot-local', '1', 'admin');
  t.deepEqual(asked, ['sc-123']);
  t.deepEqual(out.deleted, ['ingot-local/1']);
  t.deepEqual(out.blobs, [f.blobId, f.imageId].sort());
  t.false(existsSync(f.blobs.pathOf(f.blobId)));
  t.false(existsSync(f.blobs.pathOf(f.imageId)));
  t.is(await f.store.stemcell('ingot-local', '1'), undefined);
  t.is((await f.store.task(out.task_id))!.state, 'done');
  await t.throwsAsync(f.removal.deleteStemcell('ingot-local', '1', 'admin'), { instanceOf: CatalogError, message: 'Stemcell ingot-local/1' });
});

test('a stemcell recorded before its image blob was (migration 4): the image is found in its tarball and removed too', async (t) => {
  const f = await removalFixture(t, async () => undefined, { legacy: true });
  const out = await f.removal.deleteStemcell('ingot-local', '1', 'admin');
  t.deepEqual(out.blobs, [f.blobId, f.imageId].sort());
  t.false(existsSync(f.blobs.pathOf(f.imageId)));
});

test('a stemcell in use by a deployment is refused naming it, before any task or CPI call', async (t) => {
  const asked: string[] = [];
  const f = await removalFixture(t, async (cid) => asked.push(cid));
  await f.store.saveDeployment('dd', manifest('[]', '[{alias: default, os: debian-12, version: latest}]'), null);
  const err = await t.throwsAsync(f.removal.deleteStemcell('ingot-local', '1', 'admin'), { instanceOf: CatalogError });
  t.is(err.code, 'in_use');
  t.is(err.message, 'Cannot delete stemcell ingot-local/1: in use by ingot-local/1 (deployment dd)');
  t.deepEqual(asked, []);
  t.deepEqual(await f.store.tasks({ type: 'delete_stemcell' }), []);
});

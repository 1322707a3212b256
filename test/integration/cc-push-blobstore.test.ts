// The cloud controller's push suite (test/helpers/cc-push-suite.ts) on SQLite, its controller's
// blobs in a blobstore process (kernel/blobstore/) instead of a local directory; and then a
// controller on another, empty disk serving the same packages: the bits are in the blobstore,
// not on the controller that received them.
import anyTest, { type TestFn } from 'ava';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startBlobstore, type BlobstoreProcess } from '../helpers/blobstore.ts';
import { multipart, sqliteDbUrl, startController, zipOf, type Controller } from '../helpers/cc-controller.ts';
import { registerCcPushSuite, type CcPushContext } from '../helpers/cc-push-suite.ts';
import { must } from '../helpers/cc-tenants.ts';
import { eventually } from '../helpers/component-process.ts';
import { scratchDir } from '../helpers/tmp.ts';

const test = anyTest as TestFn<CcPushContext>;

// What the suite made, for the test after it.
let dbUrl = '';
let store: BlobstoreProcess | undefined;
let firstScratch = '';
let second: Controller | undefined;

registerCcPushSuite(test, {
  dbUrl: async () => (dbUrl = await sqliteDbUrl()),
  blobstore: async (nats) => {
    store = await startBlobstore(nats);
    return {
      ccConfig: (scratch) => ((firstScratch = scratch), store!.ccConfig(scratch)),
      kill: () => store!.kill(),
    };
  },
});

test.after.always(async () => {
  await second?.kill();
});

const sha1 = (s: string): string => createHash('sha1').update(s).digest('hex');

test.serial('a controller on an empty disk serves, stages and rebuilds from the packages another controller received', async (t) => {
  const files = { 'server.js': '// shared through the blobstore\n', 'lib/util.js': 'module.exports = 42;\n' };
  const first = t.context.cc;
  const app = await must(first.admin.post('/v3/apps', { name: 'shared' }), 201, 'app');
  const pkg = await must(first.admin.post('/v3/packages', { type: 'bits', relationships: { app: { data: { guid: app.guid } } } }), 201, 'package');
  const form = multipart({}, { field: 'bits', filename: 'app.zip', content: await zipOf(files) });
  const uploaded = await must(first.admin.post(`/v3/packages/${pkg.guid}/upload`, form.body, { 'content-type': form.contentType }), 200, 'upload');
  const zip = Buffer.from(await (await fetch(`${first.url}/v3/packages/${pkg.guid}/download`, { headers: { authorization: `bearer ${first.admin.token}` } })).arrayBuffer());

  // The blobs are in the blobstore's directory, none on the controller's.
  const sha256 = uploaded.checksum?.value ?? createHash('sha256').update(zip).digest('hex');
  t.true(existsSync(join(store!.dir, 'packages', sha256.slice(0, 2), sha256)), 'the package is in the blobstore');
  t.true(existsSync(join(store!.dir, 'resources', sha1(files['server.js']).slice(0, 2), sha1(files['server.js']))), 'its files are in the resource cache of the blobstore');
  t.false(existsSync(join(firstScratch, 'packages')), "the controller's scratch holds no packages");
  t.deepEqual(readdirSync(firstScratch).sort(), ['cache', 'tmp']);

  // The same database, another controller with an empty scratch directory.
  await first.kill();
  const scratch = join(scratchDir('cc-second'), 'blobs');
  second = await startController(t.context.nats, { db: { url: dbUrl }, blobstore: store!.ccConfig(scratch), drain_timeout_s: 5 });
  const api = second.admin;

  const again = await fetch(`${second.url}/v3/packages/${pkg.guid}/download`, { headers: { authorization: `bearer ${api.token}` } });
  t.is(again.status, 200);
  t.deepEqual(Buffer.from(await again.arrayBuffer()), zip, 'downloaded through the other controller');

  const build = await must(api.post('/v3/builds', { package: { guid: pkg.guid } }), 201, 'build');
  const staged = await eventually(async () => {
    const b = (await api.get(`/v3/builds/${build.guid}`)).body;
    return b.state !== 'STAGING' && b;
  }, 15_000, 'staged through the other controller');
  t.is(staged.state, 'STAGED', JSON.stringify(staged.error));

  // resource_match asks the blobstore; a package of matched resources only is rebuilt from
  // files fetched into this controller's cache.
  const described = Object.entries(files).map(([path, content]) => ({ checksum: { value: sha1(content) }, size_in_bytes: Buffer.byteLength(content), path, mode: '644' }));
  const matched = await must(api.post('/v3/resource_match', { resources: described }), 200, 'resource_match');
  t.is(matched.resources.length, 2);
  const pkg2 = await must(api.post('/v3/packages', { type: 'bits', relationships: { app: { data: { guid: app.guid } } } }), 201, 'package 2');
  const form2 = multipart({ resources: JSON.stringify(described) });
  const rebuilt = await must(api.post(`/v3/packages/${pkg2.guid}/upload`, form2.body, { 'content-type': form2.contentType }), 200, 'upload of resources only');
  t.is(rebuilt.state, 'READY');
  t.true(existsSync(join(scratch, 'cache', 'resources', sha1(files['lib/util.js']).slice(0, 2), sha1(files['lib/util.js']))), 'fetched into the local cache');
  t.is(readdirSync(join(scratch, 'tmp', 'cc-0')).length, 0, 'nothing left in tmp');
});

test.serial('a blobstore that cannot be reached is an error naming its URL, never its password', async (t) => {
  await store!.kill();
  const api = second!.admin;
  const res = await api.post('/v3/resource_match', { resources: [{ checksum: { value: 'ab'.repeat(20) }, size_in_bytes: 1, path: 'x' }] });
  t.is(res.status, 500);
  // The answer can come before the log line is read from the controller's output: wait for it.
  const log = await second!.proc.waitForLog((l) => JSON.stringify(l).includes('cannot be reached'), 10_000);
  t.regex(JSON.stringify(log), new RegExp(`The blobstore ${store!.url.replace(/[.]/g, '\\.')} cannot be reached for HEAD resources/`));
  t.false(second!.proc.logs.some((l) => JSON.stringify(l).includes(store!.password)), 'the password is in no log line');
});

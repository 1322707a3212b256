// The director's API on a real process: auth, uploads, tasks with their event stream, locks.
import anyTest, { type TestFn } from 'ava';
import { directorConfig, DirectorProcess, tarball, type DirectorClient } from '../helpers/director.ts';

const test = anyTest as TestFn<{ director: DirectorProcess; api: DirectorClient }>;

test.before(async (t) => {
  const director = await DirectorProcess.start(await directorConfig());
  t.context = { director, api: director.client() };
});

test.after.always(async (t) => {
  await t.context.director?.cleanup();
});

test('GET /info answers without a token', async (t) => {
  const r = await t.context.api.request('GET', '/info', undefined, { token: null });
  t.is(r.status, 200);
  t.like(r.body, { name: 'ingot', version: '0.1.0', cpi: 'local', user_authentication: { type: 'token' } });
});

test('the API refuses a request without a token, with a wrong one, and wrong credentials', async (t) => {
  const api = t.context.api;
  const none = await api.request('GET', '/deployments', undefined, { token: null });
  t.is(none.status, 401);
  t.regex(none.body.errors[0].detail, /bearer token/);
  const wrong = await api.request('GET', '/deployments', undefined, { token: 'eyJhbGciOiJIUzI1NiJ9.e30.wrong' });
  t.is(wrong.status, 401);
  t.regex(wrong.body.errors[0].detail, /not valid/);
  const creds = await api.request('POST', '/auth/token', { username: 'admin', password: 'not-the-password' }, { token: null });
  t.is(creds.status, 401);
  const missing = await api.request('POST', '/auth/token', { username: 'admin' }, { token: null });
  t.is(missing.status, 422);
  t.regex(missing.body.errors[0].detail, /password: Required/);
  t.is((await api.request('GET', '/deployments')).status, 200);
});

test('every body is validated with a 4xx naming the field', async (t) => {
  const api = t.context.api;
  const cc = await api.request('POST', '/cloud_configs', { properties: 42 });
  t.is(cc.status, 422);
  t.regex(cc.body.errors[0].detail, /^properties: /);
  const bad = await api.request('POST', '/cloud_configs', { properties: 'azs: [{name: z1}]\nvm_types: 3\n' });
  t.is(bad.status, 422);
  t.regex(bad.body.errors[0].detail, /cloud-config\.yml:2 vm_types: expected an array/);
  const q = await api.request('GET', '/tasks?state=running');
  t.is(q.status, 400);
  t.regex(q.body.errors[0].detail, /state/);
  const id = await api.request('GET', '/tasks/abc');
  t.is(id.status, 400);
  t.regex(id.body.errors[0].detail, /id: a task id is a number/);
});

test('cloud-configs: upload, list the latest; the same text again changes nothing', async (t) => {
  const api = t.context.api;
  const text = 'azs: [{name: z1}]\nvm_types: [{name: small}]\nnetworks: [{name: default, subnets: [{range: 10.244.0.0/24, gateway: 10.244.0.1, az: z1}]}]\ncompilation: {workers: 1, network: default, vm_type: small, az: z1}\n';
  const first = await api.request('POST', '/cloud_configs', { properties: text });
  t.is(first.status, 201, first.text);
  const again = await api.request('POST', '/cloud_configs', { properties: text });
  t.is(again.status, 200);
  t.false(again.body.changed);
  const list = await api.request('GET', '/cloud_configs');
  t.is(list.body.length, 1);
  t.is(list.body[0].properties, text);
});

test('a stemcell tarball is uploaded into the blobstore and listed; the same again is a 409', async (t) => {
  const api = t.context.api;
  const tgz = await tarball({ 'stemcell.MF': 'name: ingot-local-bookworm\nversion: "1.2"\noperating_system: debian-12\ncloud_properties: {infrastructure: local}\n', image: 'image bits' });
  const up = await api.request('POST', '/stemcells', undefined, { raw: tgz });
  t.is(up.status, 201, up.text);
  t.like(up.body, { name: 'ingot-local-bookworm', version: '1.2', operating_system: 'debian-12', cid: null });
  t.regex(up.body.blob_id, /^[0-9a-f]{64}$/);
  const list = await api.request('GET', '/stemcells');
  t.deepEqual(list.body.map((s: { name: string; version: string }) => `${s.name}/${s.version}`), ['ingot-local-bookworm/1.2']);
  const dup = await api.request('POST', '/stemcells', undefined, { raw: tgz });
  t.is(dup.status, 409);
  t.regex(dup.body.errors[0].detail, /ingot-local-bookworm\/1.2 is already uploaded/);
  const junk = await api.request('POST', '/stemcells', undefined, { raw: Buffer.from('not a tarball') });
  t.is(junk.status, 422);
});

test('a release tarball is uploaded, its jobs and packages recorded with fingerprints and blobs, and listed', async (t) => {
  const api = t.context.api;
  const tgz = await tarball({
    'release.MF': 'name: ingot\nversion: "0.1.0"\njobs:\n  - {name: router, version: abc, fingerprint: abc}\npackages:\n  - {name: ingot, version: def, fingerprint: def, dependencies: []}\n',
    'jobs/router.tgz': 'job bits',
    'packages/ingot.tgz': 'package bits',
  });
  const up = await api.request('POST', '/releases', undefined, { raw: tgz });
  t.is(up.status, 201, up.text);
  t.is(up.body.jobs[0].fingerprint, 'abc');
  t.regex(up.body.jobs[0].blob_id, /^[0-9a-f]{64}$/);
  t.regex(up.body.packages[0].blob_id, /^[0-9a-f]{64}$/);
  const list = await api.request('GET', '/releases');
  t.deepEqual(list.body.map((r: { name: string; version: string }) => `${r.name}/${r.version}`), ['ingot/0.1.0']);
  const noMf = await api.request('POST', '/releases', undefined, { raw: await tarball({ 'x.txt': 'x' }) });
  t.is(noMf.status, 422);
  t.regex(noMf.body.errors[0].detail, /no release.MF/);
  const badMf = await api.request('POST', '/releases', undefined, { raw: await tarball({ 'release.MF': 'name: x\njobs: [{name: j}]\n' }) });
  t.is(badMf.status, 422);
  t.regex(badMf.body.errors[0].detail, /version: Required/);
});

test('a task streams its events to a follower until it ends', async (t) => {
  const api = t.context.api;
  const task = await api.request('POST', '/test/sleep', { deployment: 'follow', steps: 3, step_ms: 150 });
  t.is(task.status, 202);
  const res = await fetch(`${api.url}/tasks/${task.body.id}/output?type=event&follow=1`, { headers: { authorization: `Bearer ${await api.login()}` } });
  t.is(res.headers.get('content-type'), 'application/x-ndjson; charset=utf-8');
  const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
  t.deepEqual(lines.map((e) => `${e.task} ${e.state}`), ['step 1 started', 'step 1 finished', 'step 2 started', 'step 2 finished', 'step 3 started', 'step 3 finished']);
  t.like(lines[0], { stage: 'Sleeping', index: 1, total: 3, progress: 0 });
  t.like((await api.request('GET', `/tasks/${task.body.id}`)).body, { state: 'done', result: 'slept 3 steps' });
  const debug = await api.request('GET', `/tasks/${task.body.id}/output?type=debug`);
  t.regex(debug.text, /step 3 of 3/);
});

test('a running task can be cancelled; a follower sees the stream end', async (t) => {
  const api = t.context.api;
  const task = await api.request('POST', '/test/sleep', { deployment: 'cancel', steps: 100, step_ms: 200 });
  await api.waitForTask(task.body.id, ['processing']);
  const res = await fetch(`${api.url}/tasks/${task.body.id}/output?type=event&follow=1`, { headers: { authorization: `Bearer ${await api.login()}` } });
  const body = res.text();
  const cancel = await api.request('POST', `/tasks/${task.body.id}/cancel`);
  t.is(cancel.status, 202);
  t.true(['cancelling', 'cancelled'].includes(cancel.body.state));
  await body;
  const done = await api.waitForTask(task.body.id, ['cancelled']);
  t.is(done.state, 'cancelled');
  const again = await api.request('POST', `/tasks/${task.body.id}/cancel`);
  t.is(again.status, 409);
  t.regex(again.body.errors[0].detail, /has already ended \(cancelled\)/);
});

test('a second task on the same deployment is refused with 409 naming the holder task', async (t) => {
  const api = t.context.api;
  const first = await api.request('POST', '/test/sleep', { deployment: 'locked', steps: 50, step_ms: 100 });
  const second = await api.request('POST', '/test/sleep', { deployment: 'locked' });
  t.is(second.status, 409);
  t.is(second.body.errors[0].detail, `The deployment locked is locked by task ${first.body.id} (sleep for locked)`);
  await api.request('POST', `/tasks/${first.body.id}/cancel`);
  await api.waitForTask(first.body.id, ['cancelled']);
  t.is((await api.request('POST', '/test/sleep', { deployment: 'locked', steps: 1, step_ms: 1 })).status, 202);
});

test('GET /tasks filters by state and deployment, newest first, limited', async (t) => {
  const api = t.context.api;
  const a = await api.request('POST', '/test/sleep', { deployment: 'list-a', steps: 1, step_ms: 1 });
  const b = await api.request('POST', '/test/sleep', { deployment: 'list-b', steps: 1, step_ms: 1 });
  await api.waitForTask(a.body.id, ['done']);
  await api.waitForTask(b.body.id, ['done']);
  const byDep = await api.request('GET', '/tasks?deployment=list-a');
  t.deepEqual(byDep.body.map((x: { id: number }) => x.id), [a.body.id]);
  const done = await api.request('GET', '/tasks?state=done,error&limit=1');
  t.is(done.body.length, 1);
  t.true(done.body[0].id >= b.body.id);
});

test('deployments: listed, shown, and deleted by a task', async (t) => {
  const api = t.context.api;
  t.is((await api.request('POST', '/test/deployments/doomed')).status, 201);
  const list = await api.request('GET', '/deployments');
  t.true(list.body.some((d: { name: string }) => d.name === 'doomed'));
  const shown = await api.request('GET', '/deployments/doomed');
  t.like(shown.body, { name: 'doomed', instances: [], vms: [] });
  t.is((await api.request('GET', '/deployments/nope')).status, 404);
  const del = await api.request('DELETE', '/deployments/doomed');
  t.is(del.status, 202);
  t.like(del.body, { type: 'delete_deployment', deployment: 'doomed' });
  await api.waitForTask(del.body.id, ['done']);
  t.is((await api.request('GET', '/deployments/doomed')).status, 404);
});

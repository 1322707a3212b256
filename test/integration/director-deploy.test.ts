// The deploy engine end to end: a real director (its own nats-server as the mbus, SQLite, the
// blobstore) with the real local CPI wired from its config (own prefix, bridge and subnet), real
// agents in namespace VMs, and the release built from this repo. One nats and one router are
// deployed; the same manifest again changes nothing; scaling the router 1 → 2 creates one VM; a
// property that makes the router fail stops the deploy at the canary with the job's log tail in
// the task's error and leaves the other router untouched. VMs and processes are swept first and
// last, whatever happens.
import anyTest, { type TestFn } from 'ava';
import { vmLeftovers, type CpiFixture } from '../helpers/cpi-local.ts';
import { DirectorProcess, type DirectorClient } from '../helpers/director.ts';
import { kernelManifest, startDeployFixture, stopDeployFixture, type KernelManifestOptions } from '../helpers/director-deploy-fixture.ts';

interface Context {
  fx: CpiFixture;
  /** Shared by reference: ava copies the before hook's context into each test, and a test
   *  restarts the director; the after hook must stop the one that runs last. */
  live: { director: DirectorProcess; api: DirectorClient };
  releaseVersion: string;
}
const test = anyTest as TestFn<Context>;

function manifest(c: Context, o: Omit<KernelManifestOptions, 'releaseVersion'> = {}): string {
  return kernelManifest({ releaseVersion: c.releaseVersion, ...o });
}

async function deploy(c: Context, text: string, timeoutMs = 240_000): Promise<{ task: any; events: any[] }> {
  const r = await c.live.api.request('POST', '/deployments', undefined, { raw: Buffer.from(text) });
  if (r.status !== 202) throw new Error(`POST /deployments: ${r.status} ${r.text}`);
  const task = await c.live.api.waitForTask(r.body.id, ['done', 'error', 'cancelled'], timeoutMs);
  const out = await c.live.api.request('GET', `/tasks/${r.body.id}/output?type=event`);
  const events = out.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  return { task, events };
}

async function diff(c: Context, text: string): Promise<{ diff: string[]; changed: boolean }> {
  const r = await c.live.api.request('POST', '/deployments/dd/diff', undefined, { raw: Buffer.from(text) });
  if (r.status !== 200) throw new Error(`diff: ${r.status} ${r.text}`);
  return r.body;
}

async function healthz(ip: string): Promise<number | undefined> {
  try {
    return (await fetch(`http://${ip}:8081/healthz`, { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return undefined;
  }
}

test.before(async (t) => {
  t.timeout(300_000);
  const started = Date.now();
  const { fx, director, releaseVersion } = await startDeployFixture('director-deploy', (fx) => (t.context.fx = fx));
  t.log(`director, stemcell and release ready in ${Date.now() - started} ms`);
  t.context.live = { director, api: director.client() };
  t.context.releaseVersion = releaseVersion;
});

test.after.always(async (t) => {
  const c: Partial<Context> = t.context ?? {};
  await stopDeployFixture(t, c.fx, c.live?.director);
});

function eventLines(events: any[]): string[] {
  return events.filter((e) => e.state !== 'in_progress').map((e) => `${e.stage} ${e.task} ${e.state}`);
}

test.serial('deploys nats and a router onto VMs; the router answers /healthz at its address', async (t) => {
  t.timeout(300_000);
  const c = t.context;
  const text = manifest(c);
  const empty = await c.live.api.request('POST', '/deployments', undefined, { raw: Buffer.from('  \n') });
  t.is(empty.status, 400, empty.text);
  const unnamed = await c.live.api.request('POST', '/deployments', undefined, { raw: Buffer.from('releases: []\n') });
  t.is(unnamed.status, 422, unnamed.text);
  t.regex(unnamed.body.errors[0].detail, /name: expected a deployment name/);
  const before = await diff(c, text);
  t.true(before.changed);
  t.true(before.diff.some((l) => l.startsWith('+ instance_groups: router (new, 1 instance)')), before.diff.join('\n'));
  const started = Date.now();
  const { task, events } = await deploy(c, text);
  t.log(`first deploy ${Date.now() - started} ms: ${task.result}`);
  t.is(task.state, 'done', `${task.result}\n${eventLines(events).join('\n')}`);
  const lines = eventLines(events);
  t.true(lines.includes('Updating instance nats/0 (canary) finished'), lines.join('\n'));
  t.true(lines.includes('Updating instance router/0 (canary) finished'), lines.join('\n'));
  t.true(lines.indexOf('Updating instance nats/0 (canary) started') < lines.indexOf('Updating instance router/0 (canary) started'), 'groups in manifest order');
  const dep = (await c.live.api.request('GET', '/deployments/dd')).body;
  t.is(dep.vms.length, 2);
  t.deepEqual(dep.instances.map((i: any) => `${i.instance_group}/${i.idx} ${i.state}`), ['nats/0 running', 'router/0 running']);
  // The API shows each instance's jobs without their properties (the nats password is one).
  t.deepEqual(Object.keys(dep.instances[0].spec.jobs[0]).sort(), ['digest', 'name', 'release', 'release_version']);
  // What `ingot instances --ps --vitals` shows: each agent asked for its state now.
  const rows = (await c.live.api.request('GET', '/deployments/dd/instances?state=true')).body;
  t.deepEqual(rows.map((r: any) => `${r.instance} ${r.process_state}`), ['nats/0 running', 'router/0 running']);
  t.deepEqual(rows[1].processes.map((p: any) => `${p.name} ${p.state}`), ['router/router running']);
  t.true(rows[1].vitals.uptime.secs >= 0 && rows[1].ips.length === 1, JSON.stringify(rows[1]));
  t.is((await c.live.api.request('GET', '/deployments/nope/instances')).status, 404);
  const routerIp = dep.instances.find((i: any) => i.instance_group === 'router').spec.networks[0].ip as string;
  t.true(routerIp.startsWith(c.fx.net));
  t.is(await healthz(routerIp), 200);
});

test.serial('the same manifest again changes nothing, within seconds', async (t) => {
  t.timeout(60_000);
  const c = t.context;
  const text = manifest(c);
  const d = await diff(c, text);
  t.false(d.changed, d.diff.join('\n'));
  t.deepEqual(d.diff, []);
  const vmsBefore = (await c.live.api.request('GET', '/deployments/dd')).body.vms.map((v: any) => v.cid).sort();
  const started = Date.now();
  const { task } = await deploy(c, text);
  const ms = Date.now() - started;
  t.log(`unchanged deploy ${ms} ms`);
  t.is(task.state, 'done');
  t.regex(task.result, /No changes/);
  t.true(ms < 10_000, `${ms} ms`);
  t.deepEqual((await c.live.api.request('GET', '/deployments/dd')).body.vms.map((v: any) => v.cid).sort(), vmsBefore);
});

test.serial('scaling the router 1 → 2 creates one VM and keeps the others', async (t) => {
  t.timeout(300_000);
  const c = t.context;
  const text = manifest(c, { routers: 2 });
  const d = await diff(c, text);
  t.true(d.changed);
  t.true(d.diff.includes('+ instance_groups: router instances 1 → 2'), d.diff.join('\n'));
  const before = (await c.live.api.request('GET', '/deployments/dd')).body;
  const started = Date.now();
  const { task, events } = await deploy(c, text);
  t.log(`scale deploy ${Date.now() - started} ms: ${task.result}`);
  t.is(task.state, 'done', `${task.result}\n${eventLines(events).join('\n')}`);
  const after = (await c.live.api.request('GET', '/deployments/dd')).body;
  t.is(after.vms.length, 3);
  const kept = before.vms.map((v: any) => v.cid);
  t.true(kept.every((cid: string) => after.vms.some((v: any) => v.cid === cid)), 'the old VMs are kept');
  t.is(eventLines(events).filter((l) => l.startsWith('Creating missing vms') && l.endsWith('finished')).length, 1);
  // The existing instances were not touched: only router/1 was updated.
  t.deepEqual(eventLines(events).filter((l) => l.startsWith('Updating instance') && l.endsWith('started')), ['Updating instance router/1 (canary) started']);
  const r1 = after.instances.find((i: any) => i.instance_group === 'router' && i.idx === 1);
  t.is(await healthz(r1.spec.networks[0].ip), 200);
});

test.serial('a director killed mid-deploy loses nothing: the task errors, the next deploy continues from what exists', async (t) => {
  t.timeout(300_000);
  const c = t.context;
  const text = manifest(c, { routers: 3 });
  const r = await c.live.api.request('POST', '/deployments', undefined, { raw: Buffer.from(text) });
  t.is(r.status, 202, r.text);
  // Killed once router/2's VM exists and its update has begun.
  const deadline = Date.now() + 180_000;
  for (;;) {
    const out = await c.live.api.request('GET', `/tasks/${r.body.id}/output?type=event`);
    if (out.text.includes('"task":"router/2 (canary)"')) break;
    if (Date.now() > deadline) throw new Error(`router/2 never started updating:\n${out.text}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  await c.live.director.kill('SIGKILL');
  c.live.director = await DirectorProcess.start(c.live.director.fixture, 30_000);
  c.live.api = c.live.director.client();
  const killed = await c.live.api.waitForTask(r.body.id, ['error'], 10_000);
  t.regex(killed.result, /director restarted while the task ran/);
  const mid = (await c.live.api.request('GET', '/deployments/dd')).body;
  t.is(mid.vms.length, 4, 'the VM created before the kill is recorded');
  t.is(mid.instances.find((i: any) => i.instance_group === 'router' && i.idx === 2).state, 'updating');

  const started = Date.now();
  const { task, events } = await deploy(c, text);
  t.log(`deploy after the restart ${Date.now() - started} ms: ${task.result}`);
  t.is(task.state, 'done', `${task.result}\n${eventLines(events).join('\n')}`);
  const lines = eventLines(events);
  t.false(lines.some((l) => l.startsWith('Creating missing vms')), 'no missing VM: every recorded VM was found by its cid');
  // The interrupted instance gets a fresh VM (its agent may still hold work of the dead director); the others are untouched.
  t.deepEqual(lines.filter((l) => l.startsWith('Updating instance') && l.endsWith('started')), ['Updating instance router/2 (canary) started']);
  t.regex(task.result, /1 recreated/);
  const after = (await c.live.api.request('GET', '/deployments/dd')).body;
  const r2 = (d: any) => d.vms.find((v: any) => v.instance_id === d.instances.find((i: any) => i.instance_group === 'router' && i.idx === 2).id).cid;
  const others = (d: any) => d.vms.map((v: any) => v.cid).filter((cid: string) => cid !== r2(d)).sort();
  t.deepEqual(others(after), others(mid));
  t.not(r2(after), r2(mid));
  t.is(after.vms.length, 4);
  t.true(after.instances.every((i: any) => i.state === 'running'));
});

test.serial('every template and config problem of every instance is reported at once, before anything is touched', async (t) => {
  t.timeout(60_000);
  const c = t.context;
  const before = (await c.live.api.request('GET', '/deployments/dd')).body;
  // A template problem on nats/0 and a config the router component refuses on each router.
  const text = manifest(c, { routers: 3, natsExtra: { bogus: 1 }, routerExtra: { logging: { level: 'loud' } } });
  const d = await c.live.api.request('POST', '/deployments/dd/diff', undefined, { raw: Buffer.from(text) });
  t.is(d.status, 422, d.text);
  const { task, events } = await deploy(c, text, 30_000);
  t.is(task.state, 'error');
  t.log(task.result);
  t.regex(task.result, /4 problems/);
  t.regex(task.result, /nats\/0: job nats: unknown property nats\.bogus/);
  for (const i of [0, 1, 2]) t.regex(task.result, new RegExp(`router/${i}: job router: router\\.yml(:\\d+)? logging\\.level`));
  t.deepEqual(eventLines(events), ['Preparing deployment Rendering templates started', 'Preparing deployment Rendering templates failed']);
  const after = (await c.live.api.request('GET', '/deployments/dd')).body;
  t.deepEqual(after.instances, before.instances);
  t.deepEqual(after.vms, before.vms);
});

test.serial('recreate=true replaces every VM, keeping the addresses', async (t) => {
  t.timeout(300_000);
  const c = t.context;
  const before = (await c.live.api.request('GET', '/deployments/dd')).body;
  const r = await c.live.api.request('POST', '/deployments?recreate=true', undefined, { raw: Buffer.from(manifest(c, { routers: 3 })) });
  t.is(r.status, 202, r.text);
  const started = Date.now();
  const task = await c.live.api.waitForTask(r.body.id, ['done', 'error'], 240_000);
  t.log(`recreate ${Date.now() - started} ms: ${task.result}`);
  t.is(task.state, 'done', task.result);
  t.regex(task.result, /4 recreated/);
  const after = (await c.live.api.request('GET', '/deployments/dd')).body;
  t.is(after.vms.length, 4);
  t.false(after.vms.some((v: any) => before.vms.some((b: any) => b.cid === v.cid)), 'every VM is new');
  const ips = (d: any) => d.instances.map((i: any) => `${i.instance_group}/${i.idx} ${i.spec.networks[0].ip}`);
  t.deepEqual(ips(after), ips(before));
  t.true(after.instances.every((i: any) => i.state === 'running'));
});

test.serial('a dry run changes nothing; scaling the router 3 → 2 deletes one VM', async (t) => {
  t.timeout(120_000);
  const c = t.context;
  const text = manifest(c, { routers: 2 });
  const before = (await c.live.api.request('GET', '/deployments/dd')).body;
  const dry = await c.live.api.request('POST', '/deployments?dry_run=true', undefined, { raw: Buffer.from(text) });
  t.is(dry.status, 202, dry.text);
  const dryTask = await c.live.api.waitForTask(dry.body.id, ['done', 'error'], 30_000);
  t.regex(dryTask.result, /Dry run of dd: 1 instance would change; nothing was changed/);
  t.deepEqual((await c.live.api.request('GET', '/deployments/dd')).body.vms, before.vms);
  const d = await diff(c, text);
  t.true(d.diff.includes('- instance_groups: router instances 3 → 2'), d.diff.join('\n'));
  t.true(d.diff.includes('-   router/2: delete'), d.diff.join('\n'));
  const { task, events } = await deploy(c, text);
  t.is(task.state, 'done', task.result);
  t.regex(task.result, /1 deleted/);
  t.deepEqual(eventLines(events).filter((l) => !l.startsWith('Preparing')), [
    `Deleting unneeded instances router/2 (${before.instances.find((i: any) => i.instance_group === 'router' && i.idx === 2).uuid}) started`,
    `Deleting unneeded instances router/2 (${before.instances.find((i: any) => i.instance_group === 'router' && i.idx === 2).uuid}) finished`,
  ]);
  const after = (await c.live.api.request('GET', '/deployments/dd')).body;
  t.is(after.vms.length, 3);
  t.deepEqual(after.instances.map((i: any) => `${i.instance_group}/${i.idx}`), ['nats/0', 'router/0', 'router/1']);
  const gone = before.vms.find((v: any) => !after.vms.some((a: any) => a.cid === v.cid));
  t.truthy(gone);
  t.deepEqual(await vmLeftovers(c.fx.prefix).then((l) => l.filter((x) => x.includes(gone.cid))), [], 'the deleted VM left nothing');
});

test.serial('a property that makes the router fail stops the deploy at the canary, with the log tail; the other router is untouched', async (t) => {
  t.timeout(300_000);
  const c = t.context;
  const before = (await c.live.api.request('GET', '/deployments/dd')).body;
  // An address no VM has: the router cannot listen and exits.
  const text = manifest(c, { routers: 2, routerHost: '192.0.2.10', canaryWatch: '2000-12000' });
  const d = await diff(c, text);
  t.true(d.diff.some((l) => l.includes('router.host: "0.0.0.0" → "192.0.2.10"')), d.diff.join('\n'));
  const posted = await c.live.api.request('POST', '/deployments', undefined, { raw: Buffer.from(text) });
  t.is(posted.status, 202, posted.text);
  // While it runs, the deployment is locked, and a second deploy is refused naming the holder.
  const second = await c.live.api.request('POST', '/deployments', undefined, { raw: Buffer.from(text) });
  t.is(second.status, 409, second.text);
  t.regex(second.body.errors[0].detail, new RegExp(`The deployment dd is locked by task ${posted.body.id} \\(deploy dd\\)`));
  const task = await c.live.api.waitForTask(posted.body.id, ['done', 'error'], 120_000);
  const events = (await c.live.api.request('GET', `/tasks/${posted.body.id}/output?type=event`)).text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  t.log(task.result);
  t.is(task.state, 'error');
  t.regex(task.result, /Updating instance router\/0 \(canary\): job router did not reach running/);
  t.regex(task.result, /The end of its log/);
  t.regex(task.result, /router\/router\.std(err|out)\.log/);
  const lines = eventLines(events);
  t.true(lines.includes('Updating instance router/0 (canary) failed'), lines.join('\n'));
  t.false(lines.some((l) => l.startsWith('Updating instance router/1')), 'router/1 was not touched');
  const after = (await c.live.api.request('GET', '/deployments/dd')).body;
  const r1Before = before.instances.find((i: any) => i.instance_group === 'router' && i.idx === 1);
  const r1After = after.instances.find((i: any) => i.instance_group === 'router' && i.idx === 1);
  t.deepEqual(r1After.spec, r1Before.spec);
  t.is(r1After.state, 'running');
  t.is(await healthz(r1After.spec.networks[0].ip), 200);
  t.is(after.instances.find((i: any) => i.instance_group === 'router' && i.idx === 0).state, 'failed');
});

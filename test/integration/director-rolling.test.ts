// Rolling upgrades on real VMs: a director with the local CPI and a two-zone cloud-config (each
// zone a slice of the subnet), one nats and three routers over z1 and z2. The routers are spread
// round robin and take their addresses from their zone's subnet; a change rolls zone by zone
// (z1's instances, canary first, then z2's); --canaries/--max-in-flight/--skip-drain change one
// deploy; a router being updated answers /healthz 503 while its proxy still serves; the first
// failure stops the roll with the rest untouched; create-swap-delete brings each new VM up on a
// new address before the old one goes. VMs and processes are swept first and last.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/component-process.ts';
import type { CpiFixture } from '../helpers/cpi-local.ts';
import { DirectorProcess, type DirectorClient } from '../helpers/director.ts';
import { kernelManifest, startDeployFixture, stopDeployFixture, type KernelManifestOptions } from '../helpers/director-deploy-fixture.ts';
import { scratchDir } from '../helpers/tmp.ts';

// Module-level: ava's after hook sees the before hook's context, not what a test set.
let fx: CpiFixture | undefined;
let director: DirectorProcess | undefined;
let api: DirectorClient;
let releaseVersion = '';

const ZONES = ['z1', 'z2'];
function manifest(o: Omit<KernelManifestOptions, 'releaseVersion'> = {}): string {
  // router.drain_wait_s 3: long enough to see a draining router answer on its proxy port.
  return kernelManifest({ releaseVersion, routers: 3, routerAzs: ZONES, watch: '1000-60000', routerDrainWait: 3, ...o });
}

interface Run {
  task: any;
  events: any[];
  debug: string[];
}

async function post(text: string, query = ''): Promise<any> {
  const r = await api.request('POST', `/deployments${query}`, undefined, { raw: Buffer.from(text) });
  if (r.status !== 202) throw new Error(`POST /deployments${query}: ${r.status} ${r.text}`);
  return r.body;
}

async function finish(id: number, timeoutMs = 180_000): Promise<Run> {
  const task = await api.waitForTask(id, ['done', 'error', 'cancelled'], timeoutMs);
  const events = (await api.request('GET', `/tasks/${id}/output?type=event`)).text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const debug = (await api.request('GET', `/tasks/${id}/output?type=debug`)).text.split('\n').filter(Boolean).map((l) => JSON.parse(l).line as string);
  return { task, events, debug };
}

const deploy = async (text: string, query = ''): Promise<Run> => finish((await post(text, query)).id);
/** `router/0 (canary) started`, … in the order they happened. */
const updates = (r: Run) => r.events.filter((e) => e.stage === 'Updating instance' && e.state !== 'in_progress').map((e) => `${e.task} ${e.state}`);
const routers = async () => ((await api.request('GET', '/deployments/dd')).body.instances as any[]).filter((i) => i.instance_group === 'router').sort((a, b) => a.idx - b.idx);
const ipOf = (i: any): string => i.spec.networks[0].ip;
const host = (ip: string) => Number(ip.split('.').at(-1));

/** Polls a router while task `id` runs until it is seen serving on its proxy port with /healthz 503. */
async function seenDraining(ip: string, id: number): Promise<boolean> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const [health, proxy] = await Promise.all([status(`http://${ip}:8081/healthz`), status(`http://${ip}:8080/`)]);
    if (health === 503 && proxy !== undefined) return true;
    if (['done', 'error'].includes((await api.request('GET', `/tasks/${id}`)).body.state)) return false;
    await new Promise((res) => setTimeout(res, 100));
  }
  return false;
}

/** A file of a VM's /var/vcap, read from the host ('' when missing). */
const vmFile = (cid: string, path: string) => readFile(join(fx!.dir, 'data', 'vms', cid, 'vcap', path), 'utf8').catch(() => '');
const vmOf = async (i: any): Promise<string> => ((await api.request('GET', '/deployments/dd')).body.vms as any[]).find((v) => v.instance_id === i.id).cid;

async function status(url: string): Promise<number | undefined> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1500) })).status;
  } catch {
    return undefined;
  }
}

test.before(async (t) => {
  t.timeout(300_000);
  const started = Date.now();
  const f = await startDeployFixture('director-rolling', (x) => (fx = x), {}, {}, ZONES);
  director = f.director;
  api = director.client();
  releaseVersion = f.releaseVersion;
  t.log(`director, stemcell, release and a two-zone cloud-config ready in ${Date.now() - started} ms`);
});

test.after.always(async (t) => {
  await stopDeployFixture(t, fx, director);
});

test.serial('routers spread round robin over two zones, each address from its zone’s subnet', async (t) => {
  t.timeout(240_000);
  const started = Date.now();
  const r = await deploy(manifest());
  t.log(`first deploy ${Date.now() - started} ms: ${r.task.result}`);
  t.is(r.task.state, 'done', `${r.task.result}\n${updates(r).join('\n')}`);
  const rs = await routers();
  t.deepEqual(rs.map((i) => `router/${i.idx} ${i.az}`), ['router/0 z1', 'router/1 z2', 'router/2 z1']);
  // z1's slice is hosts 2–63, z2's is 64–126 (test/helpers/director-deploy-fixture.ts zoneSubnets).
  for (const i of rs) t.true(i.az === 'z1' ? host(ipOf(i)) <= 63 : host(ipOf(i)) >= 64, `router/${i.idx} in ${i.az} at ${ipOf(i)}`);
  // New instances also roll zone by zone: z1's canary and router/2, then z2's router/1.
  t.deepEqual(updates(r).filter((l) => l.startsWith('router') && l.endsWith('started')), ['router/0 (canary) started', 'router/2 started', 'router/1 started']);
});

test.serial('a change rolls zone by zone; --canaries 0 --max-in-flight 2 --skip-drain=router override this deploy only; a draining router serves while /healthz is 503', async (t) => {
  t.timeout(240_000);
  const before = await routers();
  // Bad overrides are refused at the door, naming the parameter.
  const bad = await api.request('POST', '/deployments?max_in_flight=0', undefined, { raw: Buffer.from(manifest()) });
  t.is(bad.status, 400, bad.text);
  t.regex(bad.text, /max_in_flight/);
  const unknown = await deploy(manifest({ routerExtra: { log_requests: false } }), '?skip_drain=routr');
  t.is(unknown.task.state, 'error');
  t.regex(unknown.task.result, /--skip-drain names instance group routr, which the deployment does not have \(groups: nats, router\)/);
  t.deepEqual(updates(unknown), [], 'nothing was touched');

  const { id } = await post(manifest({ routerExtra: { log_requests: false } }), '?canaries=0&max_in_flight=2&skip_drain=router');
  // Without its drain command, the stop's SIGTERM still takes the router out of rotation first.
  const seen = await seenDraining(ipOf(before[0]), id);
  const r = await finish(id);
  t.is(r.task.state, 'done', `${r.task.result}\n${updates(r).join('\n')}`);
  t.true(seen, 'router/0 was seen answering on its proxy port while its /healthz said 503');
  t.is(await vmFile(await vmOf(before[0]), 'sys/log/router/drain.stdout.log'), '', 'its drain command did not run');
  const lines = updates(r).filter((l) => l.startsWith('router'));
  // z1 (router/0, router/2) in one batch of 2, no canary; then z2's router/1.
  t.deepEqual(lines.slice(0, 2).sort(), ['router/0 started', 'router/2 started'], lines.join('\n'));
  t.deepEqual(lines.slice(2, 4).sort(), ['router/0 finished', 'router/2 finished'], lines.join('\n'));
  t.deepEqual(lines.slice(4), ['router/1 started', 'router/1 finished'], lines.join('\n'));
  for (const i of [0, 1, 2]) t.true(r.debug.some((l) => l.includes(`router/${i}: drain skipped (--skip-drain)`)), `router/${i} skipped its drain`);
  t.false(r.debug.some((l) => l.includes('nats/0: drain skipped')), 'nats was not named');
  const after = await routers();
  t.deepEqual(after.map(ipOf), before.map(ipOf), 'updated in place, addresses kept');
});

test.serial('the router’s drain command takes it out of rotation while it serves; the first failure stops the roll, the rest of the zone and the next zone left as they were', async (t) => {
  t.timeout(180_000);
  const before = await routers();
  const r0vm = await vmOf(before[0]);
  // An address no VM has: the router cannot listen and exits.
  const { id } = await post(manifest({ routerExtra: { log_requests: false }, routerHost: '192.0.2.10', watch: '1000-8000' }), '?canaries=1&max_in_flight=1');
  t.true(await seenDraining(ipOf(before[0]), id), 'router/0 was seen answering on its proxy port while its /healthz said 503');
  const r = await finish(id);
  // The drain command (kernel/jobs/router/spec.yml) ran: SIGUSR2, drain_wait_s, then 0.
  t.is((await vmFile(r0vm, 'sys/log/router/drain.stdout.log')).trim(), '0');
  t.regex(await vmFile(r0vm, 'sys/log/router/router.stdout.log'), /draining \(SIGUSR2\): \/healthz 503, still serving/);
  t.is(r.task.state, 'error');
  t.regex(r.task.result, /Updating instance router\/0 \(canary\): job router did not reach running/);
  t.deepEqual(updates(r).filter((l) => l.startsWith('router')), ['router/0 (canary) started', 'router/0 (canary) failed']);
  const after = await routers();
  for (const i of [1, 2]) {
    t.deepEqual(after[i].spec, before[i].spec, `router/${i} untouched`);
    t.is(await status(`http://${ipOf(after[i])}:8081/healthz`), 200);
  }
});

test.serial('create-swap-delete: each new VM comes up on a new address before the old one is drained and deleted', async (t) => {
  t.timeout(240_000);
  const before = await routers();
  const vmsBefore = (await api.request('GET', '/deployments/dd')).body.vms as any[];
  // A new env recreates every router (and mends router/0, left failed above).
  const { id } = await post(manifest({ routerExtra: { log_requests: false }, routerEnv: { generation: 2 }, routerUpdate: { vm_strategy: 'create-swap-delete' } }));
  let most = 0;
  for (;;) {
    most = Math.max(most, ((await api.request('GET', '/deployments/dd')).body.vms as any[]).length);
    if (['done', 'error'].includes((await api.request('GET', `/tasks/${id}`)).body.state)) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  const r = await finish(id);
  t.log(r.task.result);
  t.is(r.task.state, 'done', `${r.task.result}\n${updates(r).join('\n')}`);
  t.regex(r.task.result, /3 recreated/);
  t.is(most, vmsBefore.length + 1, 'one old and one new VM of an instance at once');
  const after = await routers();
  const vmsAfter = (await api.request('GET', '/deployments/dd')).body.vms as any[];
  t.is(vmsAfter.length, vmsBefore.length);
  for (const i of [0, 1, 2]) {
    t.not(ipOf(after[i]), ipOf(before[i]), `router/${i} has a new address`);
    t.is(after[i].az, before[i].az, `router/${i} stays in its zone`);
    t.is(await status(`http://${ipOf(after[i])}:8081/healthz`), 200);
    // The order on the director: the new VM created and started, then the old one deleted.
    const old = vmsBefore.find((v) => v.instance_id === before[i].id).cid as string;
    const created = r.debug.findIndex((l) => l.includes(`next to VM ${old} (create-swap-delete)`));
    const deleted = r.debug.findIndex((l) => l.includes(`deleted VM ${old} `));
    t.true(created >= 0 && deleted > created, `router/${i}: created at line ${created}, old deleted at line ${deleted}`);
  }
  const nats = (await api.request('GET', '/deployments/dd')).body.instances.find((i: any) => i.instance_group === 'nats');
  t.true(vmsAfter.some((v) => v.instance_id === nats.id && vmsBefore.some((b) => b.cid === v.cid)), 'nats kept its VM');
});

test.serial('create-swap-delete: a new VM that does not come up is deleted; the old one never stopped serving', async (t) => {
  t.timeout(120_000);
  const before = await routers();
  const vmsBefore = ((await api.request('GET', '/deployments/dd')).body.vms as any[]).map((v) => v.cid).sort();
  // A new env (a new VM) and an address no VM has (the router on it cannot listen).
  const r = await deploy(manifest({ routerExtra: { log_requests: false }, routerEnv: { generation: 9 }, routerUpdate: { vm_strategy: 'create-swap-delete' }, routerHost: '192.0.2.10', watch: '1000-8000' }));
  t.is(r.task.state, 'error');
  t.regex(r.task.result, /Updating instance router\/0 \(canary\): job router did not reach running/);
  const fresh = /created VM (\S+) next to VM/.exec(r.debug.find((l) => l.includes('(create-swap-delete)')) ?? '')?.[1];
  t.truthy(fresh, r.debug.join('\n'));
  t.true(r.debug.some((l) => l.includes(`deleted VM ${fresh} `)), 'the new VM was deleted');
  t.deepEqual(((await api.request('GET', '/deployments/dd')).body.vms as any[]).map((v) => v.cid).sort(), vmsBefore);
  const after = await routers();
  for (const i of [0, 1, 2]) {
    t.is(ipOf(after[i]), ipOf(before[i]));
    t.is(await status(`http://${ipOf(after[i])}:8081/healthz`), 200, `router/${i} still serves on its old VM`);
  }
});

test.serial('ingot deploy: the flags are checked before anything is sent, and carried to the deploy task', async (t) => {
  t.timeout(120_000);
  // The CLI keeps its target and login in INGOT_HOME.
  const env: NodeJS.ProcessEnv = { ...process.env, INGOT_HOME: scratchDir('rolling-cli-home') };
  delete env.INGOT_DIRECTOR_USERNAME;
  delete env.INGOT_DIRECTOR_PASSWORD;
  const cli = (...args: string[]) => runCli(args, { timeoutMs: 90_000, env });
  const file = join(scratchDir('rolling-cli'), 'dd.yml');
  await writeFile(file, manifest({ routerExtra: { log_requests: true }, routerEnv: { generation: 2 }, routerUpdate: { vm_strategy: 'create-swap-delete' } }));
  for (const [args, message] of [
    [['--canaries', 'x'], /--canaries "x": expected a number of instances \(0 or more\)/],
    [['--max-in-flight', '0'], /--max-in-flight "0": expected a number of instances \(2\) or a percentage/],
    [['--skip-drain=router,,nats'], /--skip-drain=router,,nats: expected instance group names/],
  ] as const) {
    const r = await cli('deploy', file, '-n', ...args);
    t.is(r.code, 1, r.stderr);
    t.regex(r.stderr, message);
    t.is(r.stderr.trim().split('\n').length, 1, 'one line, no stack');
  }
  t.is((await cli('director', director!.url)).code, 0);
  const login = await cli('director', 'login', '-u', director!.fixture.admin.user, '-p', director!.fixture.admin.password);
  t.is(login.code, 0, login.stderr);
  // A bare --skip-drain before the manifest: every group (BOSH's form; yargs would take the file as its value).
  const r = await cli('deploy', '--skip-drain', file, '-n', '--canaries', '0', '--max-in-flight', '100%');
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const task = ((await api.request('GET', '/tasks?deployment=dd&limit=1')).body as any[])[0];
  const run = await finish(task.id);
  t.is(run.task.state, 'done', run.task.result);
  const lines = updates(run).filter((l) => l.startsWith('router'));
  // 100% and no canary: z1's two routers in one batch, then z2's.
  t.deepEqual(lines.slice(0, 2).sort(), ['router/0 started', 'router/2 started'], lines.join('\n'));
  t.deepEqual(lines.slice(4), ['router/1 started', 'router/1 finished'], lines.join('\n'));
  for (const i of [0, 1, 2]) t.true(run.debug.some((l) => l.includes(`router/${i}: drain skipped (--skip-drain)`)), `router/${i} skipped its drain`);
});

test.serial('a director killed mid create-swap-delete: the next deploy deletes the second VM it left and finishes', async (t) => {
  t.timeout(180_000);
  const vmsBefore = (await api.request('GET', '/deployments/dd')).body.vms as any[];
  const text = manifest({ routerExtra: { log_requests: true }, routerEnv: { generation: 3 }, routerUpdate: { vm_strategy: 'create-swap-delete' } });
  const { id } = await post(text);
  // Killed once the canary's new VM exists next to its old one.
  const deadline = Date.now() + 90_000;
  while (!(await api.request('GET', `/tasks/${id}/output?type=debug`)).text.includes('(create-swap-delete)')) {
    if (Date.now() > deadline) throw new Error('no VM was created next to another');
    await new Promise((res) => setTimeout(res, 100));
  }
  await director!.kill('SIGKILL');
  director = await DirectorProcess.start(director!.fixture, 30_000);
  api = director.client();
  const mid = (await api.request('GET', '/deployments/dd')).body.vms as any[];
  t.is(mid.length, vmsBefore.length + 1, 'the new VM is recorded next to the old one');
  const r = await deploy(text);
  t.is(r.task.state, 'done', `${r.task.result}\n${updates(r).join('\n')}`);
  t.true(r.debug.some((l) => l.includes('is a second VM of its instance, left by an interrupted create-swap-delete: deleting it')), r.debug.join('\n'));
  const after = (await api.request('GET', '/deployments/dd')).body;
  t.is(after.vms.length, vmsBefore.length);
  t.true(after.instances.every((i: any) => i.state === 'running'));
  for (const i of after.instances.filter((x: any) => x.instance_group === 'router')) t.is(await status(`http://${ipOf(i)}:8081/healthz`), 200);
});

test.serial('a NATS cluster rolls one node at a time; the routers reconnect to the other node and stay healthy', async (t) => {
  t.timeout(180_000);
  const base = { routerExtra: { log_requests: true }, routerEnv: { generation: 3 }, routerUpdate: { vm_strategy: 'create-swap-delete' }, natsInstances: 2 };
  const grown = await deploy(manifest(base));
  t.is(grown.task.state, 'done', grown.task.result);
  const rs = await routers();
  // A NATS property only the nats job reads: each node restarts, one at a time.
  const { id } = await post(manifest({ ...base, natsExtra: { http_port: 8223 } }));
  const bad: string[] = [];
  for (;;) {
    const codes = await Promise.all(rs.map((i) => status(`http://${ipOf(i)}:8081/healthz`)));
    codes.forEach((c, n) => c !== 200 && bad.push(`router/${rs[n].idx} ${c ?? 'no answer'} at ${new Date().toISOString()}`));
    if (['done', 'error'].includes((await api.request('GET', `/tasks/${id}`)).body.state)) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  const r = await finish(id);
  t.is(r.task.state, 'done', r.task.result);
  t.deepEqual(updates(r).filter((l) => l.startsWith('nats')), ['nats/0 (canary) started', 'nats/0 (canary) finished', 'nats/1 started', 'nats/1 finished']);
  // No blip: a component stays healthy through a reconnect to another node (runtime.ts gives it
  // a few seconds), so a balancer never drops a router because NATS rolled. And every router
  // did reconnect: past that grace a router still without NATS would turn 503.
  t.deepEqual(bad, [], 'no /healthz blip while NATS rolled');
  const until = Date.now() + 6000;
  while (Date.now() < until) {
    for (const i of rs) t.is(await status(`http://${ipOf(i)}:8081/healthz`), 200);
    await new Promise((res) => setTimeout(res, 500));
  }
});

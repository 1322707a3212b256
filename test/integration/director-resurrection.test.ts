// The health monitor, its resurrector, cloud-check and recreate against real VMs: a real
// director (its own nats-server, SQLite, blobstore) with the local CPI (own prefix, bridge and
// subnet), real agents in namespace VMs, the release built from this repo; one nats and three
// routers, each router with a persistent disk. Quick timings: a look every second, agents
// silent for 15 s are down, a meltdown is 2 instances and half the deployment within 8 s.
// A VM killed by hand (every process and its namespace gone) comes back with its router
// running and its disk's data; two of four killed at once are left alone with a meltdown
// alert, and `ingot cloud-check --auto` repairs them; with resurrection off nothing is
// recreated until it is on again; `ingot recreate` gives a new VM with the same disk data; an
// agent frozen (SIGSTOP) past its timeout is resurrected too. Last, create-swap-delete with
// those disks: each new VM is made while the old one serves, then the disk and its data move
// over; a new VM that does not come up hands the disk back and the old one serves again.
// VMs and processes are swept first and last, whatever happens.
import anyTest, { type TestFn } from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { eventually, runCli } from '../helpers/component-process.ts';
import { execInVm, vmPids, type CpiFixture } from '../helpers/cpi-local.ts';
import type { DirectorClient, DirectorProcess } from '../helpers/director.ts';
import { loginCli, routerAnswers } from '../helpers/director-cli-session.ts';
import { kernelManifest, startDeployFixture, stopDeployFixture, type KernelManifestOptions } from '../helpers/director-deploy-fixture.ts';
import { scratchDir } from '../helpers/tmp.ts';

const execFileP = promisify(execFile);
const test = anyTest as TestFn<unknown>;

// runCli inherits this process's environment: every CLI run of this file keeps its config here.
process.env.INGOT_HOME = scratchDir('director-resurrection-home');
delete process.env.INGOT_DIRECTOR_USERNAME;
delete process.env.INGOT_DIRECTOR_PASSWORD;
const cli = (...args: string[]) => runCli(args, { timeoutMs: 240_000 });

const WINDOW_S = 8;
const HEALTH_MONITOR = {
  health_monitor: { agent_timeout_ms: 15_000, scan_interval_ms: 1000, resurrector: { minimum_down_jobs: 2, percent_threshold: 0.5, time_threshold: WINDOW_S } },
};

// Module-level: ava's after hook sees the before hook's context only.
let fx: CpiFixture | undefined;
let director: DirectorProcess | undefined;
let api: DirectorClient;
let releaseVersion = '';

/** nats and three routers (director-deploy-fixture's), each router with a persistent disk. */
function manifest(releaseVersion: string, o: Partial<KernelManifestOptions> = {}): string {
  const m = parse(kernelManifest({ releaseVersion, routers: 3, watch: '1000-60000', ...o })) as { instance_groups: Array<Record<string, unknown>> };
  m.instance_groups.find((g) => g.name === 'router')!.persistent_disk = 16;
  return stringify(m);
}

interface Row {
  instance: string;
  id: string;
  vm_cid: string | null;
  ips: string[];
  process_state?: string;
}

async function instances(): Promise<Map<string, Row>> {
  const r = await api.request('GET', '/deployments/dd/instances?state=true');
  if (r.status !== 200) throw new Error(`instances: ${r.status} ${r.text}`);
  return new Map(r.body.map((row: Row) => [row.instance, row]));
}

/** eventually(), looking every 250 ms: each look asks every agent. */
function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined | false>): Promise<T> {
  return eventually(async () => {
    await sleep(250);
    return check();
  }, timeoutMs, what);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Kills every process of these VMs, then deletes their network namespaces: behind the director's back. */
async function killVms(cids: string[]): Promise<void> {
  const pids = (await Promise.all(cids.map((cid) => vmPids(fx!.prefix, cid)))).flat();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  for (const cid of cids) await execFileP('/usr/sbin/ip', ['netns', 'del', `${fx!.prefix}-${cid}`]).catch(() => undefined);
}

async function events(): Promise<Array<{ id: number; instance: string | null; task_id: number | null; context: { kind: string; severity: number; title: string; instances?: string[] } }>> {
  const r = await api.request('GET', '/events?deployment=dd');
  if (r.status !== 200) throw new Error(`events: ${r.status} ${r.text}`);
  return r.body;
}

async function tasksOf(type: string): Promise<Array<{ id: number; state: string; user: string; result: string | null }>> {
  return (await api.request('GET', `/tasks?type=${type}&limit=100`)).body;
}

async function readMarker(cid: string): Promise<string> {
  return (await execInVm(fx!.prefix, cid, ['cat', '/var/vcap/store/marker'])).stdout.trim();
}

test.before(async (t) => {
  t.timeout(420_000);
  const started = await startDeployFixture('director-resurrection', (f) => (fx = f), { watch_poll_ms: 250 }, HEALTH_MONITOR);
  director = started.director;
  api = director.client();
  releaseVersion = started.releaseVersion;
  const begun = Date.now();
  const r = await api.request('POST', '/deployments', undefined, { raw: Buffer.from(manifest(started.releaseVersion)) });
  if (r.status !== 202) throw new Error(`deploy: ${r.status} ${r.text}`);
  const task = await api.waitForTask(r.body.id, ['done', 'error', 'cancelled'], 300_000);
  t.log(`deploy ${Date.now() - begun} ms: ${task.result}`);
  if (task.state !== 'done') throw new Error(`deploy: ${task.result}`);
  await loginCli(cli, director);
});

test.after.always(async (t) => {
  await stopDeployFixture(t, fx, director);
});

test.serial('a VM killed by hand is resurrected with its router running and its disk’s data', async (t) => {
  t.timeout(180_000);
  const before = (await instances()).get('router/0')!;
  t.is(before.process_state, 'running');
  const cid = before.vm_cid!;
  const write = await execInVm(fx!.prefix, cid, ['sh', '-c', 'echo kept-across-resurrection > /var/vcap/store/marker']);
  t.is(write.code, 0, write.stderr);
  const killedAt = Date.now();
  await killVms([cid]);
  const after = await until('router/0 on a new VM, running', 120_000, async () => {
    const row = (await instances()).get('router/0')!;
    return row.vm_cid && row.vm_cid !== cid && row.process_state === 'running' ? row : undefined;
  });
  const tookMs = Date.now() - killedAt;
  t.log(`resurrected in ${tookMs} ms (aim: 30 s): VM ${cid} → ${after.vm_cid}`);
  t.true(tookMs < 90_000, `resurrection took ${tookMs} ms`);
  t.is(await readMarker(after.vm_cid!), 'kept-across-resurrection');
  t.true(await until('the router answers on its address', 30_000, () => routerAnswers(after.ips[0]!)));

  // The instance runs a moment before its task records its end.
  const fixes = await until('the scan_and_fix task done', 10_000, async () => {
    const list = await tasksOf('scan_and_fix');
    return list.length === 1 && list[0]!.state === 'done' ? list : undefined;
  });
  t.is(fixes[0]!.user, 'health_monitor');
  t.regex(fixes[0]!.result ?? '', /Resurrected 1 instance of dd: router\/0/);
  const list = await events();
  t.true(list.some((e) => e.context.kind === 'down' && e.instance === 'router/0' && /VM is missing/.test(e.context.title)), JSON.stringify(list));
  t.true(list.some((e) => e.context.kind === 'resurrect' && e.task_id === fixes[0]!.id));
  // The old VM's remains are gone from the CPI's view; the others were never touched.
  t.deepEqual(await vmPids(fx!.prefix, cid), []);
});

test.serial('half the deployment killed at once: no recreate, a meltdown alert; cloud-check --report lists, --auto repairs', async (t) => {
  t.timeout(300_000);
  await sleep(WINDOW_S * 1000 + 1000); // the previous test's outage leaves the window
  const rows = await instances();
  const cids = ['router/1', 'router/2'].map((n) => rows.get(n)!.vm_cid!);
  const fixesBefore = (await tasksOf('scan_and_fix')).length;
  await killVms(cids);
  const meltdown = await until('a meltdown alert', 60_000, async () => (await events()).find((e) => e.context.kind === 'meltdown'));
  t.is(meltdown.context.severity, 1);
  t.deepEqual(meltdown.context.instances, ['router/1', 'router/2']);
  t.regex(meltdown.context.title, /Skipping resurrection/);
  await sleep(5000);
  t.is((await tasksOf('scan_and_fix')).length, fixesBefore, 'the resurrector queued no task');
  const still = await instances();
  t.deepEqual(['router/1', 'router/2'].map((n) => still.get(n)!.vm_cid), cids);

  const report = await cli('-d', 'dd', 'cloud-check', '--report');
  t.is(report.code, 1, `${report.stdout}\n${report.stderr}`);
  t.is(report.stdout.match(/missing_vm/g)?.length, 2, report.stdout);
  t.regex(report.stderr, /^ingot: 2 problems found in dd/);

  const begun = Date.now();
  const fix = await cli('-d', 'dd', 'cck', '--auto');
  t.is(fix.code, 0, `${fix.stdout}\n${fix.stderr}`);
  t.log(`cloud-check --auto ${Date.now() - begun} ms`);
  t.regex(fix.stdout, /missing_vm .* of router\/1 is missing \(recreate_vm\)/);
  t.regex((await tasksOf('cck_apply'))[0]!.result ?? '', /2 problems of dd resolved: recreate_vm ×2/);
  const repaired = await instances();
  for (const [n, name] of ['router/1', 'router/2'].entries()) {
    const row = repaired.get(name)!;
    t.not(row.vm_cid, cids[n]);
    t.is(row.process_state, 'running', name);
  }
  const again = await cli('-d', 'dd', 'cloud-check', '--report');
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /No problems found/);
  const ev = await cli('-d', 'dd', 'events');
  t.is(ev.code, 0, ev.stderr);
  t.regex(ev.stdout, /meltdown/);
});

test.serial('with resurrection off a killed VM stays down (an alert says why); on again, it is resurrected', async (t) => {
  t.timeout(240_000);
  const off = await cli('update-resurrection', 'off');
  t.is(off.code, 0, off.stderr);
  t.regex(off.stdout, /Resurrection is off/);
  await sleep(WINDOW_S * 1000 + 1000);
  const cid = (await instances()).get('router/0')!.vm_cid!;
  const fixesBefore = (await tasksOf('scan_and_fix')).length;
  await killVms([cid]);
  const paused = await until('a paused alert', 30_000, async () => (await events()).find((e) => e.context.kind === 'paused'));
  t.deepEqual(paused.context.instances, ['router/0']);
  await sleep(5000);
  t.is((await tasksOf('scan_and_fix')).length, fixesBefore);
  t.is((await instances()).get('router/0')!.vm_cid, cid);

  const on = await cli('update-resurrection', 'on');
  t.is(on.code, 0, on.stderr);
  const row = await until('router/0 resurrected once resurrection is on', 120_000, async () => {
    const r = (await instances()).get('router/0')!;
    return r.vm_cid !== cid && r.process_state === 'running' ? r : undefined;
  });
  t.is(await readMarker(row.vm_cid!), 'kept-across-resurrection');
});

test.serial('recreate router/0 gives it a new VM with the same disk data; bad targets are refused', async (t) => {
  t.timeout(180_000);
  const cid = (await instances()).get('router/0')!.vm_cid!;
  const r = await cli('-d', 'dd', 'recreate', 'router/0', '-n');
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const row = (await instances()).get('router/0')!;
  t.not(row.vm_cid, cid);
  t.is(row.process_state, 'running');
  t.is(await readMarker(row.vm_cid!), 'kept-across-resurrection');
  const task = (await tasksOf('recreate'))[0]!;
  t.is(task.state, 'done');
  t.regex(task.result ?? '', /Recreated 1 instance of dd: router\/0/);

  const missing = await cli('-d', 'dd', 'recreate', 'router/9', '-n');
  t.is(missing.code, 1);
  t.regex(missing.stderr, /Instance router\/9 is not in deployment dd/);
  t.is((await api.request('POST', '/deployments/nope/recreate/router')).status, 404);
  t.is((await api.request('POST', '/deployments/dd/recreate/router', undefined, { token: null })).status, 401);
  const bad = await api.request('PUT', '/deployments/dd/problems', { resolutions: { '999999': 'recreate_vm' } });
  t.is(bad.status, 422, bad.text);
  t.regex(bad.text, /problem 999999 is not an open problem of dd/);
  t.is((await api.request('PUT', '/resurrection', { resurrection_paused: 'no' })).status, 422);
});

test.serial('an agent frozen past its timeout (its VM still there) is resurrected', async (t) => {
  t.timeout(180_000);
  const before = (await instances()).get('router/1')!;
  // Everything in the VM but its keeper (the lowest pid) stops: the VM is there, its agent silent.
  const [, ...inside] = await vmPids(fx!.prefix, before.vm_cid!);
  t.true(inside.length >= 2, `agent and router in the VM: ${inside.join(', ')}`);
  const frozenAt = Date.now();
  for (const pid of inside) process.kill(pid, 'SIGSTOP');
  const after = await until('router/1 on a new VM, running', 120_000, async () => {
    const row = (await instances()).get('router/1')!;
    return row.vm_cid !== before.vm_cid && row.process_state === 'running' ? row : undefined;
  });
  t.log(`an agent silent for 15 s (the timeout) was resurrected ${Date.now() - frozenAt} ms after it froze`);
  const down = (await events()).find((e) => e.context.kind === 'down' && e.instance === 'router/1' && /agent is unresponsive/.test(e.context.title));
  t.truthy(down);
  t.true(await until('the router answers', 30_000, () => routerAnswers(after.ips[0]!)));
});

/** Deploys `text`, waits for its task, and returns the task with its debug lines. */
async function deploy(text: string): Promise<{ state: string; result: string; debug: string[] }> {
  const r = await api.request('POST', '/deployments', undefined, { raw: Buffer.from(text) });
  if (r.status !== 202) throw new Error(`deploy: ${r.status} ${r.text}`);
  const task = await api.waitForTask(r.body.id, ['done', 'error', 'cancelled'], 240_000);
  const debug = (await api.request('GET', `/tasks/${r.body.id}/output?type=debug`)).text.split('\n').filter(Boolean).map((l) => JSON.parse(l).line as string);
  return { state: task.state, result: task.result ?? '', debug };
}

test.serial('create-swap-delete with a persistent disk: the new VM is made while the old one serves, then takes the disk and its data; one that fails hands it back', async (t) => {
  t.timeout(300_000);
  const swap = { routerUpdate: { vm_strategy: 'create-swap-delete' } };
  // The previous test's resurrection may still be recording its end, holding the deployment's lock.
  await until('every scan_and_fix task ended', 60_000, async () => (await tasksOf('scan_and_fix')).every((x) => ['done', 'error', 'cancelled'].includes(x.state)));
  const before = await instances();
  const old = before.get('router/0')!.vm_cid!;
  const write = await execInVm(fx!.prefix, old, ['sh', '-c', 'echo moved-with-its-disk > /var/vcap/store/marker']);
  t.is(write.code, 0, write.stderr);
  const r = await deploy(manifest(releaseVersion, { ...swap, routerEnv: { generation: 2 } }));
  t.is(r.state, 'done', `${r.result}\n${r.debug.join('\n')}`);
  t.regex(r.result, /3 recreated/);
  const created = r.debug.findIndex((l) => l.includes(`next to VM ${old} (create-swap-delete): the old one runs until the new one takes its disk`));
  const moved = r.debug.findIndex((l) => new RegExp(`router/0 \\(canary\\): disk \\S+ moved from VM ${old} to VM`).test(l));
  const deleted = r.debug.findIndex((l) => l.includes(`deleted VM ${old} `));
  t.true(created >= 0 && moved > created && deleted > moved, `created at line ${created}, disk moved at ${moved}, old deleted at ${deleted}:\n${r.debug.join('\n')}`);
  const after = await instances();
  for (const n of ['router/0', 'router/1', 'router/2']) {
    t.not(after.get(n)!.vm_cid, before.get(n)!.vm_cid, `${n} has a new VM`);
    t.is(after.get(n)!.process_state, 'running', n);
  }
  const fresh = after.get('router/0')!;
  t.is(await readMarker(fresh.vm_cid!), 'moved-with-its-disk');
  t.true(await until('router/0 answers on its new VM', 30_000, () => routerAnswers(fresh.ips[0]!)));
  t.deepEqual(await vmPids(fx!.prefix, old), [], 'the old VM is gone');

  // An address no VM has: the new VM's router cannot listen, so it never reaches running.
  const failed = await deploy(manifest(releaseVersion, { ...swap, routerEnv: { generation: 3 }, routerHost: '192.0.2.10', watch: '1000-8000' }));
  t.is(failed.state, 'error');
  t.regex(failed.result, /Updating instance router\/0 \(canary\): job router did not reach running/);
  t.true(failed.debug.some((l) => l.includes(`router/0 (canary): VM ${fresh.vm_cid} runs again on its disk`)), failed.debug.join('\n'));
  const back = await until('router/0 running on its old VM', 60_000, async () => {
    const row = (await instances()).get('router/0')!;
    return row.process_state === 'running' ? row : undefined;
  });
  t.is(back.vm_cid, fresh.vm_cid);
  t.is(await readMarker(back.vm_cid!), 'moved-with-its-disk');
  t.true(await until('router/0 answers on its old VM', 30_000, () => routerAnswers(back.ips[0]!)));
  t.is(((await api.request('GET', '/deployments/dd')).body.vms as unknown[]).length, 4, 'the new VM was deleted: one VM per instance');
});

// `ingot cloud-check` against real VMs, one resolution per case: a real director (its own
// nats-server, SQLite, blobstore) with the local CPI (own prefix, bridge and subnet), real
// agents in namespace VMs, the release built from this repo; one nats and one router with a
// persistent disk. The health monitor watches but does not resurrect (it would race cck).
// An agent frozen (SIGSTOP) is unresponsive and `--resolution reboot_vm` brings it back on the
// same VM; the router's disk unmounted inside its VM behind everyone's back is a
// mount_info_mismatch and `--resolution reattach_disk` brings its data back on the same VM
// (`reattach_disk_and_reboot` too, rebooting the VM);
// the CPI's disk removed behind the director's back is a missing_disk, `--resolution
// delete_disk_reference` forgets it, and the next deploy gives the router a new disk.
// VMs and processes are swept first and last, whatever happens.
import anyTest, { type TestFn } from 'ava';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { eventually, runCli } from '../helpers/component-process.ts';
import { execInVm, type CpiFixture } from '../helpers/cpi-local.ts';
import type { DirectorClient, DirectorProcess } from '../helpers/director.ts';
import { loginCli, routerAnswers } from '../helpers/director-cli-session.ts';
import { kernelManifest, startDeployFixture, stopDeployFixture } from '../helpers/director-deploy-fixture.ts';
import { scratchDir } from '../helpers/tmp.ts';

const test = anyTest as TestFn<unknown>;

// runCli inherits this process's environment: every CLI run of this file keeps its config here.
process.env.INGOT_HOME = scratchDir('director-cloud-check-home');
delete process.env.INGOT_DIRECTOR_USERNAME;
delete process.env.INGOT_DIRECTOR_PASSWORD;
const cli = (...args: string[]) => runCli(args, { timeoutMs: 180_000 });

const HEALTH_MONITOR = { health_monitor: { resurrection: false, agent_timeout_ms: 60_000, scan_interval_ms: 2000 } };

// Module-level: ava's after hook sees the before hook's context only.
let fx: CpiFixture | undefined;
let director: DirectorProcess | undefined;
let api: DirectorClient;
let releaseVersion = '';

/** nats and one router with a persistent disk of `diskMb`. */
function manifest(diskMb: number): string {
  const m = parse(kernelManifest({ releaseVersion, routers: 1, watch: '1000-60000' })) as { instance_groups: Array<Record<string, unknown>> };
  m.instance_groups.find((g) => g.name === 'router')!.persistent_disk = diskMb;
  return stringify(m);
}

async function deploy(diskMb: number): Promise<string> {
  const r = await api.request('POST', '/deployments', undefined, { raw: Buffer.from(manifest(diskMb)) });
  if (r.status !== 202) throw new Error(`deploy: ${r.status} ${r.text}`);
  const task = await api.waitForTask(r.body.id, ['done', 'error', 'cancelled'], 300_000);
  if (task.state !== 'done') throw new Error(`deploy: ${task.result}`);
  return task.result;
}

interface Row {
  instance: string;
  vm_cid: string | null;
  ips: string[];
  process_state?: string;
}

async function router(): Promise<Row> {
  const r = await api.request('GET', '/deployments/dd/instances?state=true');
  if (r.status !== 200) throw new Error(`instances: ${r.status} ${r.text}`);
  return (r.body as Row[]).find((row) => row.instance === 'router/0')!;
}

/** The CPI's record of a VM: its agent's pid and its disks (the last one is at /var/vcap/store). */
async function vmRecord(cid: string): Promise<{ agent: { pid: number } | null; disks: string[] }> {
  return JSON.parse(await readFile(join(fx!.dir, 'data', 'vms', cid, 'vm.json'), 'utf8'));
}

async function tasksOf(type: string): Promise<Array<{ id: number; state: string; result: string | null }>> {
  return (await api.request('GET', `/tasks?type=${type}&limit=100`)).body;
}

/** The problem rows of `cloud-check --report`'s table. */
function problemRows(stdout: string): number {
  return stdout.match(/^\d+ +(missing_vm|unresponsive_agent|missing_disk|mount_info_mismatch) /gm)?.length ?? 0;
}

/** Unmounts the VM's store inside the VM, as if someone did it there by hand (lazily if busy). */
async function unmountStore(cid: string): Promise<void> {
  const r = await execInVm(fx!.prefix, cid, ['sh', '-c', 'umount /var/vcap/store || umount -l /var/vcap/store']);
  if (r.code !== 0) throw new Error(`umount in ${cid}: ${r.stderr}`);
}

test.before(async (t) => {
  t.timeout(420_000);
  const started = await startDeployFixture('director-cloud-check', (f) => (fx = f), { watch_poll_ms: 250 }, HEALTH_MONITOR);
  director = started.director;
  api = director.client();
  releaseVersion = started.releaseVersion;
  const begun = Date.now();
  const result = await deploy(16);
  t.log(`deploy ${Date.now() - begun} ms: ${result}`);
  await loginCli(cli, director);
});

test.after.always(async (t) => {
  await stopDeployFixture(t, fx, director);
});

test.serial('a frozen agent is unresponsive; reboot_vm brings it back on the same VM with its router running', async (t) => {
  t.timeout(150_000);
  const before = await router();
  const agent = (await vmRecord(before.vm_cid!)).agent;
  t.truthy(agent, 'the CPI recorded the agent’s pid');
  process.kill(agent!.pid, 'SIGSTOP');
  try {
    const report = await cli('-d', 'dd', 'cloud-check', '--report');
    t.is(report.code, 1, `${report.stdout}\n${report.stderr}`);
    t.regex(report.stdout, /unresponsive_agent +router\/0 \(vm-[0-9a-f]+\) is not responding/);
    t.is(problemRows(report.stdout), 1, report.stdout);

    const begun = Date.now();
    const fix = await cli('-d', 'dd', 'cck', '--resolution', 'reboot_vm');
    t.is(fix.code, 0, `${fix.stdout}\n${fix.stderr}`);
    t.log(`reboot_vm ${Date.now() - begun} ms`);
  } finally {
    // Stopped processes left by a failure would outlive the sweep's SIGKILL only as zombies; wake it anyway.
    try {
      process.kill(agent!.pid, 'SIGCONT');
    } catch {
      // rebooted: gone
    }
  }
  t.regex((await tasksOf('cck_apply'))[0]!.result ?? '', /1 problem of dd resolved: reboot_vm ×1/);
  const after = await router();
  t.is(after.vm_cid, before.vm_cid, 'the same VM');
  t.is(after.process_state, 'running');
  t.not((await vmRecord(after.vm_cid!)).agent?.pid, agent!.pid, 'a new agent process');
  t.true(await eventually(() => routerAnswers(after.ips[0]!), 30_000, 'the router answers'));
  const again = await cli('-d', 'dd', 'cloud-check', '--report');
  t.is(again.code, 0, `${again.stdout}\n${again.stderr}`);
  t.regex(again.stdout, /No problems found/);
});

test.serial('a disk unmounted inside its VM is a mount_info_mismatch; reattach_disk brings its data back on the same VM', async (t) => {
  t.timeout(150_000);
  const before = await router();
  const cid = before.vm_cid!;
  const disk = (await vmRecord(cid)).disks.at(-1)!;
  t.truthy(disk);
  const write = await execInVm(fx!.prefix, cid, ['sh', '-c', 'echo kept-across-reattach > /var/vcap/store/marker']);
  t.is(write.code, 0, write.stderr);
  await unmountStore(cid);
  t.not((await execInVm(fx!.prefix, cid, ['cat', '/var/vcap/store/marker'])).code, 0, 'the data is out of sight');

  const report = await cli('-d', 'dd', 'cloud-check', '--report');
  t.is(report.code, 1, `${report.stdout}\n${report.stderr}`);
  t.regex(report.stdout, new RegExp(`mount_info_mismatch +Disk ${disk} of router/0 should be mounted on VM ${cid}`));
  t.is(problemRows(report.stdout), 1, report.stdout);
  const problems = (await api.request('GET', '/deployments/dd/problems')).body as Array<{ type: string; resolutions: Array<{ name: string }> }>;
  t.deepEqual(problems.map((p) => [p.type, p.resolutions.map((r) => r.name)]), [['mount_info_mismatch', ['reattach_disk', 'reattach_disk_and_reboot', 'ignore']]]);

  const begun = Date.now();
  const fix = await cli('-d', 'dd', 'cck', '--resolution', 'reattach_disk');
  t.is(fix.code, 0, `${fix.stdout}\n${fix.stderr}`);
  t.log(`reattach_disk ${Date.now() - begun} ms`);
  t.regex((await tasksOf('cck_apply'))[0]!.result ?? '', /1 problem of dd resolved: reattach_disk ×1/);
  const after = await router();
  t.is(after.vm_cid, cid, 'the same VM');
  t.is(after.process_state, 'running');
  const read = await execInVm(fx!.prefix, cid, ['cat', '/var/vcap/store/marker']);
  t.is(read.stdout.trim(), 'kept-across-reattach', read.stderr);
  t.true(await eventually(() => routerAnswers(after.ips[0]!), 30_000, 'the router answers'));
  const again = await cli('-d', 'dd', 'cloud-check', '--report');
  t.is(again.code, 0, `${again.stdout}\n${again.stderr}`);
});

test.serial('reattach_disk_and_reboot: the disk mounted again, the VM rebooted (a new agent), the data back', async (t) => {
  t.timeout(150_000);
  const cid = (await router()).vm_cid!;
  const agentBefore = (await vmRecord(cid)).agent?.pid;
  await unmountStore(cid);
  const fix = await cli('-d', 'dd', 'cck', '--resolution', 'reattach_disk_and_reboot');
  t.is(fix.code, 0, `${fix.stdout}\n${fix.stderr}`);
  t.regex(fix.stdout, /mount_info_mismatch .* \(reattach_disk_and_reboot\)/);
  t.regex((await tasksOf('cck_apply'))[0]!.result ?? '', /1 problem of dd resolved: reattach_disk_and_reboot ×1/);
  const after = await router();
  t.is(after.vm_cid, cid, 'the same VM');
  t.is(after.process_state, 'running');
  t.not((await vmRecord(cid)).agent?.pid, agentBefore, 'a new agent process: the VM rebooted');
  const read = await execInVm(fx!.prefix, cid, ['cat', '/var/vcap/store/marker']);
  t.is(read.stdout.trim(), 'kept-across-reattach', read.stderr);
  t.true(await eventually(() => routerAnswers(after.ips[0]!), 30_000, 'the router answers'));
  const again = await cli('-d', 'dd', 'cloud-check', '--report');
  t.is(again.code, 0, `${again.stdout}\n${again.stderr}`);
});

test.serial('a disk gone from the CPI is a missing_disk; delete_disk_reference forgets it and the next deploy makes a new one', async (t) => {
  t.timeout(240_000);
  const cid = (await router()).vm_cid!;
  const disk = (await vmRecord(cid)).disks.at(-1)!;
  await unmountStore(cid);
  await rm(join(fx!.dir, 'data', 'disks', disk), { recursive: true, force: true });

  const report = await cli('-d', 'dd', 'cloud-check', '--report');
  t.is(report.code, 1, `${report.stdout}\n${report.stderr}`);
  t.regex(report.stdout, new RegExp(`missing_disk +Disk ${disk} of router/0 is missing`));
  t.is(problemRows(report.stdout), 1, `only missing_disk, no mount_info_mismatch besides: ${report.stdout}`);
  const fix = await cli('-d', 'dd', 'cck', '--resolution', 'delete_disk_reference');
  t.is(fix.code, 0, `${fix.stdout}\n${fix.stderr}`);
  t.regex((await tasksOf('cck_apply'))[0]!.result ?? '', /1 problem of dd resolved: delete_disk_reference ×1/);
  const clean = await cli('-d', 'dd', 'cloud-check', '--report');
  t.is(clean.code, 0, `the reference is gone: ${clean.stdout}\n${clean.stderr}`);

  // The same manifest again: router/0, having no disk now, is updated and gets a new one.
  const begun = Date.now();
  const result = await deploy(16);
  t.log(`redeploy ${Date.now() - begun} ms: ${result}`);
  const after = await router();
  t.is(after.process_state, 'running');
  const fresh = (await vmRecord(after.vm_cid!)).disks.at(-1);
  t.truthy(fresh);
  t.not(fresh, disk);
  t.is((await execInVm(fx!.prefix, after.vm_cid!, ['cat', '/var/vcap/store/marker'])).code === 0, false, 'a new, empty disk');
  // Its agent lists the new disk mounted (it reads the settings the CPI rewrote on attach_disk).
  const again = await cli('-d', 'dd', 'cloud-check', '--report');
  t.is(again.code, 0, `${again.stdout}\n${again.stderr}`);
  t.regex(again.stdout, /No problems found/);
});

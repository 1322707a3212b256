// CPI conformance: drives a CPI only through the external door (`cpi <name> --config FILE`,
// one JSON request on stdin) through a VM's and a disk's whole life, then proves nothing is left.
import test from 'ava';
import { rm } from 'node:fs/promises';
import {
  callCpi,
  callCpiRaw,
  cpiResult,
  execInVm,
  localCpiFixture,
  manualNetwork,
  sweepCpi,
  vmLeftovers,
  vmPids,
  type CpiFixture,
} from '../helpers/cpi-local.ts';
import { eventually } from '../helpers/component-process.ts';

let fx: CpiFixture;

test.before(async () => {
  fx = await localCpiFixture({ agent_command: ['/bin/sleep', '3600'] });
});

test.after.always(async () => {
  if (!fx) return;
  await sweepCpi(fx);
  await rm(fx.dir, { recursive: true, force: true });
});

test.serial('info names the API version and stemcell formats', async (t) => {
  const info = await cpiResult<{ api_version: number; stemcell_formats: string[] }>(fx.configFile, 'info', []);
  t.is(info.api_version, 1);
  t.true(info.stemcell_formats.length > 0);
});

test.serial('bad requests answer with an error object', async (t) => {
  const notJson = await callCpiRaw(fx.configFile, '{nope');
  t.is(notJson.error?.type, 'InvalidCall');
  t.is(notJson.result, null);
  const unknown = await callCpi(fx.configFile, 'format_disk', []);
  t.regex(unknown.error?.message ?? '', /unknown method "format_disk"/);
  const badArgs = await callCpi(fx.configFile, 'create_disk', ['ten', {}]);
  t.regex(badArgs.error?.message ?? '', /arguments\[0\]/);
  const badCpi = await callCpiRaw(fx.configFile, JSON.stringify({ method: 'info', arguments: [] }), 'nimbus');
  t.regex(badCpi.error?.message ?? '', /Unknown CPI "nimbus"/);
  const badArgTypes = await callCpi(fx.configFile, 'create_vm', ['agent', 'sc-000000000000', {}, 'not-a-hash', [], {}]);
  t.regex(badArgTypes.error?.message ?? '', /^Parsing arguments of create_vm: arguments\[3\]/);
});

test.serial('the yargs command module is the same door', async (t) => {
  const { spawn } = await import('node:child_process');
  const script = `
    import yargs from 'yargs';
    import { cpiCommand } from './orchestrator/client/cpi-command.ts';
    await yargs(process.argv.slice(1)).command(cpiCommand).strict().parseAsync();
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, 'cpi', 'local', '--config', fx.configFile], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b));
  child.stdin.end(JSON.stringify({ method: 'has_disk', arguments: ['disk-0000000000000000'], context: {} }));
  await new Promise((resolve) => child.on('close', resolve));
  t.deepEqual(JSON.parse(out), { result: false, error: null, log: 'local CPI: has_disk' });
});

test.serial('a VM and a disk live their whole life and leave nothing', async (t) => {
  t.timeout(120_000); // some twenty CPI processes, on a busy 2-core machine
  const cfg = fx.configFile;
  const stemcell = await cpiResult<string>(cfg, 'create_stemcell', ['/var/tmp/stemcell.tgz', {}]);
  const env = { bosh: { group: 'conformance' } };
  const vm1 = await cpiResult<string>(cfg, 'create_vm', ['agent-1', stemcell, { memory_mb: 128, cpu_shares: 256 }, manualNetwork(fx, 10), [], env]);
  const vm2 = await cpiResult<string>(cfg, 'create_vm', ['agent-2', stemcell, {}, manualNetwork(fx, 11), [], env]);
  // The agent enters its VM a moment after create_vm returns (a shell joins the cgroup, then nsenter).
  const seen = await eventually(async () => {
    const both = [await vmPids(fx.prefix, vm1), await vmPids(fx.prefix, vm2)];
    return both.every((pids) => pids.length >= 2) ? both.flat() : undefined;
  }, 30_000, 'each VM with its keeper and its agent');
  t.true(seen.length >= 4, 'each VM has its keeper and its agent');

  t.true(await cpiResult<boolean>(cfg, 'has_vm', [vm1]));
  t.false(await cpiResult<boolean>(cfg, 'has_vm', ['vm-0000000000000000']));
  t.is(await cpiResult(cfg, 'set_vm_metadata', [vm1, { deployment: 'ingot', job: 'router', index: '0' }]), null);

  const settings = JSON.parse((await execInVm(fx.prefix, vm1, ['cat', '/var/vcap/bosh/settings.json'])).stdout);
  t.is(settings.agent_id, 'agent-1');
  t.is(settings.mbus.url, 'nats://10.245.0.1:4222');
  t.is(settings.networks.default.ip, `${fx.net}.10`);
  t.is(settings.vm.name, vm1);

  const disk = await cpiResult<string>(cfg, 'create_disk', [64, {}, vm1]);
  t.true(await cpiResult<boolean>(cfg, 'has_disk', [disk]));
  await cpiResult(cfg, 'attach_disk', [vm1, disk]);
  t.is((await execInVm(fx.prefix, vm1, ['sh', '-c', 'echo kept > /var/vcap/store/marker && grep -c " /var/vcap/store " /proc/self/mountinfo'])).stdout.trim(), '1');
  const inSettings = JSON.parse((await execInVm(fx.prefix, vm1, ['cat', '/var/vcap/bosh/settings.json'])).stdout);
  t.deepEqual(inSettings.disks.persistent, { [disk]: '/var/vcap/store' });

  const busy = await callCpi(cfg, 'attach_disk', [vm2, disk]);
  t.is(busy.error?.type, 'Bosh::Clouds::CloudError', 'a disk is attached to one VM at a time');

  await cpiResult(cfg, 'detach_disk', [vm1, disk]);
  t.is((await execInVm(fx.prefix, vm1, ['grep', '-c', ' /var/vcap/store ', '/proc/self/mountinfo'])).stdout.trim(), '0');
  await cpiResult(cfg, 'attach_disk', [vm2, disk]);
  t.is((await execInVm(fx.prefix, vm2, ['cat', '/var/vcap/store/marker'])).stdout.trim(), 'kept', 'the disk moved with its data');

  const notAttached = await callCpi(cfg, 'detach_disk', [vm1, disk]);
  t.is(notAttached.error?.type, 'Bosh::Clouds::DiskNotAttached');
  t.is(await cpiResult(cfg, 'reboot_vm', [vm2]), null);
  t.true(await cpiResult<boolean>(cfg, 'has_vm', [vm2]));

  await cpiResult(cfg, 'delete_vm', [vm1]);
  await cpiResult(cfg, 'delete_vm', [vm2]);
  t.false(await cpiResult<boolean>(cfg, 'has_vm', [vm1]));
  t.false(await cpiResult<boolean>(cfg, 'has_vm', [vm2]));
  t.is((await callCpi(cfg, 'delete_vm', [vm1])).error?.type, 'Bosh::Clouds::VMNotFound');
  t.true(await cpiResult<boolean>(cfg, 'has_disk', [disk]), 'disks outlive their VMs');

  // A recreated VM gets its disk back at create_vm, data intact.
  const vm3 = await cpiResult<string>(cfg, 'create_vm', ['agent-2', stemcell, {}, manualNetwork(fx, 11), [disk], env]);
  seen.push(...(await vmPids(fx.prefix, vm3)));
  t.is((await execInVm(fx.prefix, vm3, ['cat', '/var/vcap/store/marker'])).stdout.trim(), 'kept');
  await cpiResult(cfg, 'delete_vm', [vm3]);

  await cpiResult(cfg, 'delete_disk', [disk]);
  t.false(await cpiResult<boolean>(cfg, 'has_disk', [disk]));
  t.is((await callCpi(cfg, 'delete_disk', [disk])).error?.type, 'Bosh::Clouds::DiskNotFound');
  await cpiResult(cfg, 'delete_stemcell', [stemcell]);

  t.deepEqual(await vmLeftovers(fx.prefix, seen), []);
});

test.serial('a failed create_vm leaves nothing and says why', async (t) => {
  const stemcell = await cpiResult<string>(fx.configFile, 'create_stemcell', ['/var/tmp/stemcell.tgz', {}]);
  const outside = await callCpi(fx.configFile, 'create_vm', ['agent-x', stemcell, {}, { default: { type: 'manual', ip: '192.0.2.50' } }, [], {}]);
  t.is(outside.error?.type, 'Bosh::Clouds::CloudError');
  t.regex(outside.error?.message ?? '', /^Creating VM vm-[0-9a-f]+ for agent agent-x: Reading networks: default\.ip: 192\.0\.2\.50 is outside/);
  const vm = await cpiResult<string>(fx.configFile, 'create_vm', ['agent-y', stemcell, {}, manualNetwork(fx, 20), [], {}]);
  const taken = await callCpi(fx.configFile, 'create_vm', ['agent-z', stemcell, {}, manualNetwork(fx, 20), [], {}]);
  t.regex(taken.error?.message ?? '', /is taken by VM/);
  const seen = await vmPids(fx.prefix, vm);
  await cpiResult(fx.configFile, 'delete_vm', [vm]);
  t.deepEqual(await vmLeftovers(fx.prefix, seen), []);
});

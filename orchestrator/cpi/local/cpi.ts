// The local CPI: a VM is a network namespace on the CPI's bridge with its own mount namespace
// (its data dir at /var/vcap), a cgroup sized by its vm_type, and the agent started inside. A
// persistent disk is a directory under the data dir, bound at /var/vcap/store while attached.

import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CloudError,
  DiskNotAttachedError,
  DiskNotFoundError,
  VMCreationFailedError,
  VMNotFoundError,
  doing,
  wrapCpiError,
} from '../errors.ts';
import type { CloudProperties, Cpi, CpiInfo, Networks, VmEnv, VmMetadata } from '../types.ts';
import { STORE_PATH_IN_VM, renderSettings } from './agent-settings.ts';
import { createCgroup, destroyCgroup, procsFiles, readLimits } from './cgroup.ts';
import { run } from './command.ts';
import { compileConfig, type LocalCpiConfig } from './config.ts';
import { createVmNetwork, ensureHostNetwork, exists, removeVmNetwork } from './host-network.ts';
import { CID_PATTERN, cgroupPath, netnsName, newDiskCid, newStemcellCid, newVmCid } from './names.ts';
import { candidateAddresses, readNetworks } from './network-settings.ts';
import { ensureRegistryProxy } from './registry-proxy-daemon.ts';
import { StateStore, type VmRecord } from './state.ts';
import { execInVm, isAlive, readProcess, startDaemon, startKeeper, vmEntryArgv } from './vm-process.ts';

export const STEMCELL_FORMAT = 'ingot-local';

export function createLocalCpi(raw: unknown, configFile = 'local CPI config'): Cpi {
  return new LocalCpi(compileConfig(raw, configFile));
}

export class LocalCpi implements Cpi {
  readonly state: StateStore;

  constructor(readonly config: LocalCpiConfig) {
    this.state = new StateStore(config.dataDir);
  }

  async info(): Promise<CpiInfo> {
    return { api_version: 1, stemcell_formats: [STEMCELL_FORMAT] };
  }

  /** The local stemcell is the host's own OS; the image is only recorded. */
  async create_stemcell(image_path: string, cloud_properties: CloudProperties): Promise<string> {
    const cid = newStemcellCid();
    await doing(`Creating stemcell from ${image_path}`, () => this.state.writeStemcell({ cid, image_path, cloud_properties }));
    return cid;
  }

  async delete_stemcell(stemcell_cid: string): Promise<null> {
    await doing(`Deleting stemcell ${stemcell_cid}`, () => this.state.removeStemcell(checkCid(stemcell_cid)));
    return null;
  }

  async create_vm(
    agent_id: string,
    stemcell_cid: string,
    cloud_properties: CloudProperties,
    networks: Networks,
    disk_cids: string[],
    env: VmEnv,
  ): Promise<string> {
    const cid = newVmCid();
    const what = `Creating VM ${cid} for agent ${agent_id}`;
    if (!(await this.state.readStemcell(checkCid(stemcell_cid)))) throw new VMCreationFailedError(`${what}: stemcell ${stemcell_cid} not found`);
    const limits = (() => {
      try {
        return readLimits(cloud_properties);
      } catch (err) {
        throw wrapCpiError(what, err);
      }
    })();
    const addressing = (() => {
      try {
        return readNetworks(networks, this.config.subnet, this.config.gateway);
      } catch (err) {
        throw wrapCpiError(what, err);
      }
    })();
    for (const d of disk_cids) if (!(await this.state.readDisk(checkCid(d)))) throw wrapCpiError(what, new DiskNotFoundError(d));

    let ip: string | null = null;
    let keeperPid: number | null = null;
    const cgroup = cgroupPath(this.config.cgroupParent, this.config.prefix, cid);
    try {
      ip = await doing('Claiming an address', () => this.claimAddress(addressing.ip, cid));
      await ensureHostNetwork(this.config);
      await ensureRegistryProxy(this.config);
      const link = await createVmNetwork(this.config, cid, { ...addressing, ip });
      await doing(`Creating cgroup ${cgroup}`, () => createCgroup(this.config.cgroupRoot, cgroup, limits));
      const keeper = await startKeeper(link.netns, this.state.vcapDir(cid), join('/run/ingot-cpi', `${this.config.prefix}-${cid}`));
      keeperPid = keeper.pid;
      await doing('Moving the keeper into its cgroup', async () => {
        for (const f of procsFiles(this.config.cgroupRoot, cgroup)) await writeFile(f, String(keeper.pid));
      });
      const filled: Networks = { [addressing.network]: { ...networks[addressing.network], ip } };
      const record: VmRecord = {
        cid,
        agent_id,
        stemcell_cid,
        ip,
        netns: link.netns,
        veth: link.veth,
        cgroup,
        keeper,
        agent: null,
        networks: { ...networks, ...filled },
        env,
        metadata: {},
        cloud_properties,
        disks: [],
      };
      await this.state.writeVm(record);
      for (const d of disk_cids) await this.mountDisk(record, d);
      await this.writeSettings(record);
      await this.startAgent(record);
      return cid;
    } catch (err) {
      await this.destroyVm(cid, ip, keeperPid).catch(() => undefined);
      throw wrapCpiError(what, err);
    }
  }

  async delete_vm(vm_cid: string): Promise<null> {
    const vm = await this.state.readVm(checkCid(vm_cid));
    if (!vm && !(await exists(`/run/netns/${netnsName(this.config.prefix, vm_cid)}`))) throw new VMNotFoundError(vm_cid);
    await doing(`Deleting VM ${vm_cid}`, () => this.destroyVm(vm_cid, vm?.ip ?? null, vm?.keeper.pid ?? null, vm?.disks ?? []));
    return null;
  }

  async has_vm(vm_cid: string): Promise<boolean> {
    if (!CID_PATTERN.test(vm_cid)) return false;
    const vm = await this.state.readVm(vm_cid);
    return vm !== null && (await isAlive(vm.keeper));
  }

  /** A shell (or `argv`) in the VM's namespaces and cgroup: what `ingot ssh` runs here. */
  async shell_argv(vm_cid: string, argv: string[]): Promise<string[]> {
    const vm = await this.liveVm(vm_cid, `Opening a shell in VM ${vm_cid}`);
    const inside = argv.length > 0 ? argv : ['/bin/bash', '-l'];
    return vmEntryArgv(vm.keeper.pid, procsFiles(this.config.cgroupRoot, vm.cgroup), ['/usr/bin/env', '-C', '/var/vcap', ...inside], 'ingot-ssh');
  }

  /** Restarts everything in the VM but its keeper: the agent comes back as after a boot. */
  async reboot_vm(vm_cid: string): Promise<null> {
    const vm = await this.liveVm(vm_cid, `Rebooting VM ${vm_cid}`);
    await doing(`Rebooting VM ${vm_cid}`, async () => {
      const r = await run(['ip', 'netns', 'pids', vm.netns], { allowFailure: true });
      for (const pid of r.stdout.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number)) {
        if (pid !== vm.keeper.pid) kill(pid);
      }
      await this.startAgent(vm);
    });
    return null;
  }

  async set_vm_metadata(vm_cid: string, metadata: VmMetadata): Promise<null> {
    const vm = await this.state.readVm(checkCid(vm_cid));
    if (!vm) throw new VMNotFoundError(vm_cid);
    await doing(`Setting metadata of VM ${vm_cid}`, () => this.state.writeVm({ ...vm, metadata: { ...vm.metadata, ...metadata } }));
    return null;
  }

  async create_disk(size_mb: number, cloud_properties: CloudProperties, _vm_cid: string | null): Promise<string> {
    const cid = newDiskCid();
    await doing(`Creating disk ${cid} of ${size_mb} MB`, async () => {
      await mkdir(this.state.diskDataDir(cid), { recursive: true });
      await this.state.writeDisk({ cid, size_mb, cloud_properties, attached_to: null });
    });
    return cid;
  }

  async attach_disk(vm_cid: string, disk_cid: string): Promise<null> {
    const what = `Attaching disk ${disk_cid} to VM ${vm_cid}`;
    const vm = await this.liveVm(vm_cid, what);
    const disk = await this.state.readDisk(checkCid(disk_cid));
    if (!disk) throw wrapCpiError(what, new DiskNotFoundError(disk_cid));
    // Attached already: nothing to do, unless the VM's store, which should be this disk, was
    // unmounted behind the CPI's back (cloud-check's reattach_disk): then it is mounted again.
    if (disk.attached_to === vm_cid && (vm.disks.at(-1) !== disk_cid || (await this.storeIs(vm, disk_cid)))) return null;
    if (disk.attached_to && disk.attached_to !== vm_cid && (await this.state.readVm(disk.attached_to))) {
      throw new CloudError(`${what}: it is attached to VM ${disk.attached_to}; detach it first`);
    }
    await doing(what, async () => {
      await this.mountDisk(vm, disk_cid);
      await this.writeSettings(vm);
    });
    return null;
  }

  async detach_disk(vm_cid: string, disk_cid: string): Promise<null> {
    const what = `Detaching disk ${disk_cid} from VM ${vm_cid}`;
    const vm = await this.liveVm(vm_cid, what);
    const disk = await this.state.readDisk(checkCid(disk_cid));
    if (!disk) throw wrapCpiError(what, new DiskNotFoundError(disk_cid));
    if (!vm.disks.includes(disk_cid)) throw wrapCpiError(what, new DiskNotAttachedError(vm_cid, disk_cid));
    await doing(what, async () => {
      await execInVm(vm.keeper.pid, ['umount', STORE_PATH_IN_VM]);
      vm.disks = vm.disks.filter((d) => d !== disk_cid);
      await this.state.writeVm(vm);
      await this.state.writeDisk({ ...disk, attached_to: null });
      await this.writeSettings(vm);
    });
    return null;
  }

  async delete_disk(disk_cid: string): Promise<null> {
    const disk = await this.state.readDisk(checkCid(disk_cid));
    if (!disk) throw new DiskNotFoundError(disk_cid);
    if (disk.attached_to && (await this.state.readVm(disk.attached_to))) {
      throw new CloudError(`Deleting disk ${disk_cid}: it is attached to VM ${disk.attached_to}`);
    }
    await doing(`Deleting disk ${disk_cid}`, () => this.state.removeDisk(disk_cid));
    return null;
  }

  async has_disk(disk_cid: string): Promise<boolean> {
    return CID_PATTERN.test(disk_cid) && (await this.state.readDisk(disk_cid)) !== null;
  }

  private async liveVm(vm_cid: string, what: string): Promise<VmRecord> {
    const vm = await this.state.readVm(checkCid(vm_cid));
    if (!vm || !(await isAlive(vm.keeper))) throw wrapCpiError(what, new VMNotFoundError(vm_cid));
    return vm;
  }

  /** The requested static address, or the lowest free one of the subnet. */
  private async claimAddress(requested: string | null, cid: string): Promise<string> {
    if (requested) {
      if (await this.state.claimIp(requested, cid)) return requested;
      const owner = await this.state.ipOwner(requested);
      // A claim whose VM record is gone was left by a create_vm that died half-way.
      if (owner && CID_PATTERN.test(owner) && !(await this.state.readVm(owner)) && !(await exists(`/run/netns/${netnsName(this.config.prefix, owner)}`))) {
        await this.state.releaseIp(requested, owner);
        if (await this.state.claimIp(requested, cid)) return requested;
      }
      throw new CloudError(`${requested} is taken by VM ${owner}`);
    }
    for (const ip of candidateAddresses(this.config.subnet, this.config.gateway)) {
      if (await this.state.claimIp(ip, cid)) return ip;
    }
    throw new CloudError(`no free address left in ${this.config.subnet.text}`, { okToRetry: true });
  }

  private async mountDisk(vm: VmRecord, diskCid: string): Promise<void> {
    const disk = await this.state.readDisk(diskCid);
    if (!disk) throw new DiskNotFoundError(diskCid);
    // A VM holds one persistent disk at /var/vcap/store; a second attach stacks on top (BOSH's
    // disk migration copies from the older one, mounted first).
    await mkdir(join(this.state.vcapDir(vm.cid), 'store'), { recursive: true });
    await doing(`Mounting disk ${diskCid} at ${STORE_PATH_IN_VM}`, () =>
      execInVm(vm.keeper.pid, ['mount', '--bind', this.state.diskDataDir(diskCid), STORE_PATH_IN_VM]),
    );
    vm.disks = [...vm.disks.filter((d) => d !== diskCid), diskCid];
    await this.state.writeVm(vm);
    await this.state.writeDisk({ ...disk, attached_to: vm.cid });
  }

  /** Whether the VM's /var/vcap/store is this disk's directory (a bind mount shares its device and inode). */
  private async storeIs(vm: VmRecord, diskCid: string): Promise<boolean> {
    const host = await stat(this.state.diskDataDir(diskCid)).catch(() => null);
    const inVm = await execInVm(vm.keeper.pid, ['stat', '-c', '%d:%i', STORE_PATH_IN_VM], { allowFailure: true });
    return host !== null && inVm.exitCode === 0 && inVm.stdout.trim() === `${host.dev}:${host.ino}`;
  }

  private async writeSettings(vm: VmRecord): Promise<void> {
    const settings = renderSettings({
      agentId: vm.agent_id,
      vmCid: vm.cid,
      networks: vm.networks,
      env: vm.env,
      disks: vm.disks,
      defaults: this.config.agentDefaults,
    });
    const dir = join(this.state.vcapDir(vm.cid), 'bosh');
    await doing('Writing the agent settings', async () => {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'settings.json'), `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 });
    });
  }

  private async startAgent(vm: VmRecord): Promise<void> {
    if (!this.config.agentCommand) return;
    const command = this.config.agentCommand;
    await doing(`Starting the agent (${command.join(' ')})`, async () => {
      const pid = await startDaemon(vm.keeper.pid, command, {
        procsFiles: procsFiles(this.config.cgroupRoot, vm.cgroup),
        logDir: join(this.state.vcapDir(vm.cid), 'sys', 'log'),
        name: 'agent',
        env: { INGOT_AGENT_ID: vm.agent_id, INGOT_AGENT_SETTINGS: '/var/vcap/bosh/settings.json' },
      });
      const info = await readProcess(pid);
      vm.agent = info ? { pid, startTime: info.startTime } : null;
      await this.state.writeVm(vm);
    });
  }

  /** Removes every part of a VM that exists; parts already gone are skipped. Disks are kept. */
  private async destroyVm(cid: string, ip: string | null, keeperPid: number | null, disks: string[] = []): Promise<void> {
    const netns = netnsName(this.config.prefix, cid);
    const inNetns = await run(['ip', 'netns', 'pids', netns], { allowFailure: true });
    const pids = inNetns.stdout.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number);
    if (keeperPid) pids.push(keeperPid);
    await destroyCgroup(this.config.cgroupRoot, cgroupPath(this.config.cgroupParent, this.config.prefix, cid), pids);
    await removeVmNetwork(this.config.prefix, cid);
    for (const d of disks) {
      const disk = await this.state.readDisk(d);
      if (disk && disk.attached_to === cid) await this.state.writeDisk({ ...disk, attached_to: null });
    }
    if (ip) await this.state.releaseIp(ip, cid);
    await this.state.removeVm(cid);
    await rm(join('/run/ingot-cpi', `${this.config.prefix}-${cid}`), { recursive: true, force: true });
  }
}

/** Cids become paths and names; anything else is refused before it touches either. */
function checkCid(cid: string): string {
  if (!CID_PATTERN.test(cid)) throw new CloudError(`"${cid}" is not a cid this CPI made`);
  return cid;
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}


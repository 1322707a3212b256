// What the local CPI remembers between calls (each call is its own process): records under its
// data dir, one JSON file per VM, disk and stemcell, and one claim file per IP address, made
// with O_EXCL so VMs created in parallel never take the same address.

import { randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Networks, VmEnv, VmMetadata } from '../types.ts';
import type { ProcessId } from './vm-process.ts';

export interface VmRecord {
  cid: string;
  agent_id: string;
  stemcell_cid: string;
  ip: string;
  netns: string;
  veth: string;
  cgroup: string;
  keeper: ProcessId;
  agent: ProcessId | null;
  networks: Networks;
  env: VmEnv;
  metadata: VmMetadata;
  cloud_properties: Record<string, unknown>;
  /** Persistent disks attached, in attach order; the last one is at /var/vcap/store. */
  disks: string[];
}

export interface DiskRecord {
  cid: string;
  size_mb: number;
  cloud_properties: Record<string, unknown>;
  attached_to: string | null;
}

export interface StemcellRecord {
  cid: string;
  image_path: string;
  cloud_properties: Record<string, unknown>;
}

export class StateStore {
  constructor(readonly dataDir: string) {}

  vmDir(cid: string): string {
    return join(this.dataDir, 'vms', cid);
  }
  /** Host directory that is the VM's /var/vcap. */
  vcapDir(cid: string): string {
    return join(this.vmDir(cid), 'vcap');
  }
  diskDir(cid: string): string {
    return join(this.dataDir, 'disks', cid);
  }
  diskDataDir(cid: string): string {
    return join(this.diskDir(cid), 'data');
  }

  readVm(cid: string): Promise<VmRecord | null> {
    return readJson<VmRecord>(join(this.vmDir(cid), 'vm.json'));
  }
  writeVm(vm: VmRecord): Promise<void> {
    return writeJson(join(this.vmDir(vm.cid), 'vm.json'), vm);
  }
  async removeVm(cid: string): Promise<void> {
    await rm(this.vmDir(cid), { recursive: true, force: true });
  }
  async listVms(): Promise<string[]> {
    return readdir(join(this.dataDir, 'vms')).catch(() => []);
  }

  readDisk(cid: string): Promise<DiskRecord | null> {
    return readJson<DiskRecord>(join(this.diskDir(cid), 'disk.json'));
  }
  writeDisk(disk: DiskRecord): Promise<void> {
    return writeJson(join(this.diskDir(disk.cid), 'disk.json'), disk);
  }
  async removeDisk(cid: string): Promise<void> {
    await rm(this.diskDir(cid), { recursive: true, force: true });
  }

  readStemcell(cid: string): Promise<StemcellRecord | null> {
    return readJson<StemcellRecord>(join(this.dataDir, 'stemcells', `${cid}.json`));
  }
  writeStemcell(s: StemcellRecord): Promise<void> {
    return writeJson(join(this.dataDir, 'stemcells', `${s.cid}.json`), s);
  }
  async removeStemcell(cid: string): Promise<void> {
    await rm(join(this.dataDir, 'stemcells', `${cid}.json`), { force: true });
  }

  /** True when the address was free and is now the VM's. */
  async claimIp(ip: string, vmCid: string): Promise<boolean> {
    const dir = join(this.dataDir, 'ips');
    await mkdir(dir, { recursive: true });
    try {
      await writeFile(join(dir, ip), vmCid, { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  }
  async ipOwner(ip: string): Promise<string | null> {
    return readFile(join(this.dataDir, 'ips', ip), 'utf8').catch(() => null);
  }
  async releaseIp(ip: string, vmCid: string): Promise<void> {
    if ((await this.ipOwner(ip)) === vmCid) await rm(join(this.dataDir, 'ips', ip), { force: true });
  }
}

async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Written whole through a rename, so a reader never sees half a record. */
async function writeJson(file: string, value: unknown): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  // Unique per write: one director runs many CPI calls at once in one process.
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, file);
}

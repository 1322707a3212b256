// Creating and deleting an instance's VM, each step recorded in the store as soon as it has
// happened, so a director killed half-way finds what exists on its next deploy: the agent's
// credential (mbus_agents) before create_vm, the VM (vms, by cid) right after it, the disk
// right after create_disk.
import { randomBytes } from 'node:crypto';
import { DiskList } from '../../agent/protocol.ts';
import type { Cpi, Networks } from '../../cpi/types.ts';
import type { DirectorStore } from '../store.ts';
import type { AgentClient } from './agent-client.ts';
import type { DesiredInstance } from './types.ts';

export interface VmDeps {
  store: DirectorStore;
  cpi: Cpi;
  registerAgent(agentId: string): Promise<{ url: string; user: string; password: string; blobstore_url: string }>;
  unregisterAgent(agentId: string): Promise<void>;
  agents: AgentClient;
  pingTimeoutMs: number;
  log: (line: string) => void;
}

export function newAgentId(): string {
  return `agent_${randomBytes(8).toString('hex')}`;
}

function netmask(range: string | undefined): string | undefined {
  const bits = range ? Number(range.split('/')[1]) : NaN;
  if (!Number.isInteger(bits) || bits < 0 || bits > 32) return undefined;
  const n = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** BOSH's networks hash for create_vm. */
export function cpiNetworks(inst: DesiredInstance): Networks {
  return Object.fromEntries(
    inst.networks.map((n) => [
      n.name,
      {
        type: n.type,
        ...(n.ip ? { ip: n.ip } : {}),
        ...(netmask(n.range) ? { netmask: netmask(n.range) } : {}),
        ...(n.gateway ? { gateway: n.gateway } : {}),
        dns: n.dns,
        default: n.default,
        cloud_properties: n.cloud_properties,
      },
    ]),
  );
}

/**
 * A VM for the instance (row `instanceId`), its disk when it needs one, and an agent that
 * answers ping. Returns the VM's cid and agent id.
 */
export async function createInstanceVm(
  deps: VmDeps,
  deployment: string,
  instanceId: number,
  inst: DesiredInstance,
  stemcellCid: string,
  diskCid: string | null,
  signal: AbortSignal,
): Promise<{ cid: string; agent_id: string; disk_cid: string | null }> {
  const agentId = newAgentId();
  const cred = await deps.registerAgent(agentId);
  let disk = diskCid;
  if (inst.persistent_disk_mb > 0 && !disk) {
    disk = await deps.cpi.create_disk(inst.persistent_disk_mb, inst.persistent_disk_cloud_properties, null);
    await deps.store.saveDisk({ cid: disk, deployment, instance_id: instanceId, size_mb: inst.persistent_disk_mb });
    deps.log(`${inst.group}/${inst.index}: created disk ${disk} (${inst.persistent_disk_mb} MB)`);
  }
  signal.throwIfAborted();
  let cid: string;
  try {
    cid = await deps.cpi.create_vm(agentId, stemcellCid, inst.vm_type.cloud_properties, cpiNetworks(inst), disk ? [disk] : [], {
      mbus: { url: cred.url, user: cred.user, password: cred.password },
      blobstore: { url: cred.blobstore_url },
      bosh: { group: inst.group, index: inst.index, id: inst.uuid, deployment },
    });
  } catch (err) {
    await deps.unregisterAgent(agentId).catch(() => undefined);
    throw err;
  }
  await deps.store.saveVm({ cid, agent_id: agentId, deployment, instance_id: instanceId });
  deps.log(`${inst.group}/${inst.index}: created VM ${cid} with agent ${agentId}`);
  await deps.cpi.set_vm_metadata(cid, { deployment, instance_group: inst.group, index: String(inst.index), id: inst.uuid }).catch(() => undefined);
  await deps.agents.waitForPing(agentId, deps.pingTimeoutMs, signal);
  return { cid, agent_id: agentId, disk_cid: disk };
}

/** Deletes a VM (a VM the CPI no longer knows counts as deleted) and withdraws its agent's credential. */
export async function deleteInstanceVm(deps: VmDeps, vm: { cid: string; agent_id: string }): Promise<void> {
  if (await deps.cpi.has_vm(vm.cid).catch(() => true)) {
    try {
      await deps.cpi.delete_vm(vm.cid);
    } catch (err) {
      if (await deps.cpi.has_vm(vm.cid).catch(() => true)) throw err;
    }
  }
  await deps.store.deleteVm(vm.cid);
  await deps.unregisterAgent(vm.agent_id);
  deps.log(`deleted VM ${vm.cid} (agent ${vm.agent_id})`);
}

/** The disks an agent lists mounted (list_disk). */
export async function listDisks(agents: AgentClient, agentId: string, timeoutMs?: number): Promise<Set<string>> {
  return new Set(DiskList.parse(await agents.request(agentId, 'list_disk', [], timeoutMs)));
}

/**
 * BOSH's attach_disk then the agent's mount_disk: a persistent disk onto a running VM (the
 * local CPI mounts it at attach, or again when it is recorded attached but no longer
 * mounted). The agent must list it after.
 */
export async function attachAndMount(cpi: Cpi, agents: AgentClient, vm: { cid: string; agent_id: string }, disk: string, timeoutMs?: number): Promise<void> {
  await cpi.attach_disk(vm.cid, disk);
  await agents.request(vm.agent_id, 'mount_disk', [disk], timeoutMs);
  if (!(await listDisks(agents, vm.agent_id, timeoutMs)).has(disk)) throw new Error(`agent ${vm.agent_id} still does not list disk ${disk} after attach_disk and mount_disk`);
}

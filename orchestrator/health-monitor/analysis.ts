// The health monitor's pure core: which instances are down (a VM the CPI no longer has, an
// agent silent past its timeout), whether a deployment is melting down (BOSH's resurrector:
// at least minimum_down_jobs and percent_threshold of its instances down within
// time_threshold seconds — then it only alerts), and what cloud-check finds and may do about
// it (a missing VM, a silent agent, a missing disk, a disk its agent does not list mounted).
// Data in, decisions out; health-monitor.ts and cloud-check.ts do the I/O.

export type DownReason = 'missing_vm' | 'unresponsive_agent';

export interface WatchedInstance {
  uuid: string;
  /** `group/index`. */
  label: string;
  agent_id: string;
  vm_cid: string;
  /** When the VM was created (ms): a new agent gets its timeout from then. */
  vm_created_ms: number;
  /** The CPI's has_vm. */
  vm_exists: boolean;
  /** The agent's last heartbeat (ms), if one was seen. */
  last_heartbeat_ms?: number;
}

export interface DownInstance {
  uuid: string;
  label: string;
  reason: DownReason;
  /** A sentence for the alert. */
  why: string;
}

/**
 * The instances that are down now. An agent is measured from its last heartbeat, or, when none
 * was seen, from the later of its VM's creation and `watchingSinceMs` (the monitor's start:
 * heartbeats before it were not watched).
 */
export function downInstances(instances: WatchedInstance[], nowMs: number, o: { agentTimeoutMs: number; watchingSinceMs: number }): DownInstance[] {
  const down: DownInstance[] = [];
  for (const i of instances) {
    if (!i.vm_exists) {
      down.push({ uuid: i.uuid, label: i.label, reason: 'missing_vm', why: `VM ${i.vm_cid} of ${i.label} is gone (the CPI no longer has it)` });
      continue;
    }
    const since = i.last_heartbeat_ms ?? Math.max(i.vm_created_ms, o.watchingSinceMs);
    const silent = nowMs - since;
    if (silent > o.agentTimeoutMs) {
      down.push({
        uuid: i.uuid,
        label: i.label,
        reason: 'unresponsive_agent',
        why: `agent ${i.agent_id} of ${i.label} has not sent a heartbeat for ${Math.round(silent / 1000)} s (timeout ${Math.round(o.agentTimeoutMs / 1000)} s)`,
      });
    }
  }
  return down;
}

/**
 * The down instances seen down at an earlier look too. One look asks the CPI about each VM in
 * turn, so VMs lost together can straddle it: the first look may see one of them. The
 * resurrector acts only once every instance it would recreate was confirmed by a second look,
 * by which time the meltdown count has seen them all.
 */
export function unconfirmedDown(down: DownInstance[], seenBefore: ReadonlySet<string>): DownInstance[] {
  return down.filter((x) => !seenBefore.has(x.uuid));
}

export interface ResurrectorPolicy {
  minimum_down_jobs: number;
  /** A share from 0 to 1. */
  percent_threshold: number;
  /** Seconds. */
  time_threshold: number;
}

/** Forgets instances last seen down longer ago than the window; returns the map for chaining. */
export function pruneDown(lastDown: Map<string, number>, nowMs: number, p: ResurrectorPolicy): Map<string, number> {
  for (const [uuid, at] of lastDown) if (nowMs - at > p.time_threshold * 1000) lastDown.delete(uuid);
  return lastDown;
}

export interface MeltdownVerdict {
  meltdown: boolean;
  /** Instances down within the window. */
  down: number;
  total: number;
  /** down / total, 0 for an empty deployment. */
  share: number;
}

/**
 * Whether a deployment of `total` instances is melting down, given when each instance was last
 * seen down (`lastDown`, uuid → ms). Both thresholds must be reached (BOSH's resurrector).
 */
export function meltdownVerdict(lastDown: ReadonlyMap<string, number>, total: number, nowMs: number, p: ResurrectorPolicy): MeltdownVerdict {
  const down = [...lastDown.values()].filter((at) => nowMs - at <= p.time_threshold * 1000).length;
  const share = total > 0 ? down / total : 0;
  return { meltdown: down >= p.minimum_down_jobs && share >= p.percent_threshold, down, total, share };
}

// ---- cloud-check ------------------------------------------------------------------------------

/** BOSH's cloud-check problem types and the resolutions each offers (the first is the default). */
export const RESOLUTIONS = {
  missing_vm: ['recreate_vm', 'delete_vm_reference', 'ignore'],
  unresponsive_agent: ['recreate_vm', 'reboot_vm', 'delete_vm_reference', 'ignore'],
  missing_disk: ['delete_disk_reference', 'ignore'],
  /** The disk exists but its instance's agent does not list it mounted (BOSH's name). */
  mount_info_mismatch: ['reattach_disk', 'reattach_disk_and_reboot', 'ignore'],
} as const;

export type ProblemType = keyof typeof RESOLUTIONS;
export type Resolution = (typeof RESOLUTIONS)[ProblemType][number];
export const PROBLEM_TYPES = Object.keys(RESOLUTIONS) as ProblemType[];
export const ALL_RESOLUTIONS = [...new Set(Object.values(RESOLUTIONS).flat())] as Resolution[];

export const RESOLUTION_PLANS: Record<Resolution, string> = {
  recreate_vm: 'Recreate VM (its persistent disk is attached to the new one)',
  reboot_vm: 'Reboot VM',
  delete_vm_reference: 'Delete VM reference (forget the VM; the next deploy creates one)',
  delete_disk_reference: 'Delete disk reference (forget the disk; the next deploy creates one)',
  reattach_disk: "Reattach disk (attach it to the instance's VM, mount it, restart the jobs)",
  reattach_disk_and_reboot: "Reattach disk and reboot instance (attach and mount it, reboot the VM, start the jobs)",
  ignore: 'Skip for now',
};

export interface ScannedInstance {
  uuid: string;
  label: string;
  vm: { cid: string; agent_id: string; exists: boolean; responsive: boolean } | null;
  /** `mounted`: whether the VM's agent lists the disk (list_disk); absent when it was not asked or did not say. */
  disks: Array<{ cid: string; exists: boolean; mounted?: boolean }>;
}

export interface FoundProblem {
  type: ProblemType;
  resource_id: string;
  data: { instance: string; description: string; vm_cid?: string; agent_id?: string; disk_cid?: string };
}

/** What a cloud-check scan reports for these instances, in their order. */
export function detectProblems(instances: ScannedInstance[]): FoundProblem[] {
  const found: FoundProblem[] = [];
  for (const i of instances) {
    if (i.vm && !i.vm.exists) {
      found.push({ type: 'missing_vm', resource_id: i.uuid, data: { instance: i.label, vm_cid: i.vm.cid, agent_id: i.vm.agent_id, description: `VM ${i.vm.cid} of ${i.label} is missing` } });
    } else if (i.vm && !i.vm.responsive) {
      found.push({ type: 'unresponsive_agent', resource_id: i.uuid, data: { instance: i.label, vm_cid: i.vm.cid, agent_id: i.vm.agent_id, description: `${i.label} (${i.vm.cid}) is not responding` } });
    }
    for (const d of i.disks) {
      if (!d.exists) found.push({ type: 'missing_disk', resource_id: i.uuid, data: { instance: i.label, disk_cid: d.cid, description: `Disk ${d.cid} of ${i.label} is missing` } });
      else if (d.mounted === false && i.vm?.exists && i.vm.responsive) {
        found.push({
          type: 'mount_info_mismatch',
          resource_id: i.uuid,
          data: { instance: i.label, disk_cid: d.cid, vm_cid: i.vm.cid, agent_id: i.vm.agent_id, description: `Disk ${d.cid} of ${i.label} should be mounted on VM ${i.vm.cid}, but its agent does not list it` },
        });
      }
    }
  }
  return found;
}

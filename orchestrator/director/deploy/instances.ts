// GET /deployments/:name/instances: each instance of a deployment as the director records it
// (group/index, id, az, IPs, VM, its last update's state) and, with `state=true`, as its agent
// says now — the job state, each process (`--ps`) and the VM's vitals — BOSH's `instances`.
// An agent that does not answer is shown as `unresponsive agent`, never as an error.
// GET /deployments/:name/vms (BOSH's `vms`) is the same rows narrowed to the instances that
// have a VM, with the VM's type and creation time.
import type { AgentState } from '../../agent/protocol.ts';
import type { InstanceRecord, VmRecord } from '../types.ts';
import type { DesiredInstance } from './types.ts';

export interface InstanceRow {
  instance: string;
  id: string;
  az: string | null;
  ips: string[];
  vm_cid: string | null;
  agent_id: string | null;
  /** The director's record: what its last deploy left. */
  deploy_state: string;
  /** What start/stop last asked: started · stopped. */
  desired_state: string;
  /** The agent's word: running · failing · stopped · unresponsive agent · no vm. */
  process_state?: string;
  processes?: Array<{ name: string; state: string; restarts: number; pid?: number }>;
  vitals?: AgentState['vitals'];
}

/** The rows, in group then index order; `states` by agent id when asked for. */
export function instanceRows(instances: InstanceRecord[], vms: VmRecord[], states?: Map<string, AgentState | Error>): InstanceRow[] {
  const vmOf = new Map(vms.filter((v) => v.instance_id !== null).map((v) => [v.instance_id!, v]));
  return [...instances]
    .sort((a, b) => (a.instance_group === b.instance_group ? a.idx - b.idx : a.instance_group < b.instance_group ? -1 : 1))
    .map((i) => {
      const vm = vmOf.get(i.id);
      const spec = i.spec as Partial<DesiredInstance>;
      const row: InstanceRow = {
        instance: `${i.instance_group}/${i.idx}`,
        id: i.uuid,
        az: i.az,
        ips: (spec.networks ?? []).flatMap((n) => (n.ip ? [n.ip] : [])),
        vm_cid: vm?.cid ?? null,
        agent_id: vm?.agent_id ?? null,
        deploy_state: i.state,
        desired_state: i.desired_state ?? 'started',
      };
      if (!states) return row;
      const s = vm ? states.get(vm.agent_id) : undefined;
      if (!vm) return { ...row, process_state: 'no vm' };
      if (!s || s instanceof Error) return { ...row, process_state: 'unresponsive agent' };
      return {
        ...row,
        process_state: s.job_state,
        processes: s.processes.map((p) => ({ name: `${p.job}/${p.name}`, state: p.state, restarts: p.restarts, ...(p.pid !== undefined ? { pid: p.pid } : {}) })),
        vitals: s.vitals,
      };
    });
}

export interface VmRow {
  instance: string;
  id: string;
  vm_cid: string;
  agent_id: string;
  az: string | null;
  ips: string[];
  vm_type: string | null;
  /** The agent's word, as in the instance rows. */
  process_state: string;
  created_at: string;
}

/** One row per VM that holds an instance, in the instances' order; pure. */
export function vmRows(instances: InstanceRecord[], vms: VmRecord[], states: Map<string, AgentState | Error>): VmRow[] {
  const byUuid = new Map(instances.map((i) => [i.uuid, i]));
  const byCid = new Map(vms.map((v) => [v.cid, v]));
  return instanceRows(instances, vms, states).flatMap((r) => {
    const vm = r.vm_cid ? byCid.get(r.vm_cid) : undefined;
    if (!vm) return [];
    const spec = byUuid.get(r.id)!.spec as Partial<DesiredInstance>;
    return [{ instance: r.instance, id: r.id, vm_cid: vm.cid, agent_id: vm.agent_id, az: r.az, ips: r.ips, vm_type: spec.vm_type?.name ?? null, process_state: r.process_state!, created_at: vm.created_at }];
  });
}

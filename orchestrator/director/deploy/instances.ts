// GET /deployments/:name/instances: each instance of a deployment as the director records it
// (group/index, id, az, IPs, VM, its last update's state) and, with `state=true`, as its agent
// says now — the job state, each process (`--ps`) and the VM's vitals — BOSH's `instances`.
// An agent that does not answer is shown as `unresponsive agent`, never as an error.
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
  /** The agent's word: running · failing · stopped · unresponsive agent · no vm. */
  process_state?: string;
  processes?: Array<{ name: string; state: string; restarts: number }>;
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
      };
      if (!states) return row;
      const s = vm ? states.get(vm.agent_id) : undefined;
      if (!vm) return { ...row, process_state: 'no vm' };
      if (!s || s instanceof Error) return { ...row, process_state: 'unresponsive agent' };
      return {
        ...row,
        process_state: s.job_state,
        processes: s.processes.map((p) => ({ name: `${p.job}/${p.name}`, state: p.state, restarts: p.restarts })),
        vitals: s.vitals,
      };
    });
}

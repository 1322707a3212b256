// The instances rows: the director's records joined with the VMs and, when asked, the agents'
// word; and the CLI's table of them.
import test from 'ava';
import { instanceRows } from '../../orchestrator/director/deploy/instances.ts';
import type { InstanceRecord, VmRecord } from '../../orchestrator/director/types.ts';
import { renderInstances } from '../../orchestrator/client/instances-command.ts';
import type { AgentState } from '../../orchestrator/agent/protocol.ts';

const inst = (id: number, group: string, idx: number, ip: string): InstanceRecord => ({
  id,
  deployment: 'd',
  instance_group: group,
  idx,
  uuid: `u${id}`,
  az: 'z1',
  state: 'started',
  bootstrap: idx === 0,
  spec: { networks: [{ name: 'default', type: 'manual', ip }] },
  created_at: '',
  updated_at: '',
});
const vm = (cid: string, agent: string, instance: number | null): VmRecord => ({ cid, agent_id: agent, deployment: 'd', instance_id: instance, created_at: '' });
const vitals = { load: ['0.1', '0.2', '0.3'] as [string, string, string], cpu: { user: '1.5', sys: '0.5', wait: '0' }, mem: { percent: '12', kb: '204800' }, swap: { percent: '0', kb: '0' }, disk: {}, uptime: { secs: 3725 } };
const state = (job: string, jobState: 'running' | 'failing'): AgentState => ({
  agent_id: 'x',
  deployment: 'd',
  job: { name: job },
  index: 0,
  job_state: jobState,
  processes: [{ name: job, job, state: jobState === 'running' ? 'running' : 'failing', restarts: jobState === 'running' ? 0 : 4 }],
  vitals,
  persistent_disk: {},
});

test('rows in group and index order with IPs and VMs; the agents’ state when asked; silent agents and missing VMs named', (t) => {
  const instances = [inst(3, 'router', 1, '10.0.0.12'), inst(1, 'nats', 0, '10.0.0.10'), inst(2, 'router', 0, '10.0.0.11'), inst(4, 'router', 2, '10.0.0.13')];
  const vms = [vm('vm-a', 'a', 1), vm('vm-b', 'b', 2), vm('vm-c', 'c', 3)];
  const plain = instanceRows(instances, vms);
  t.deepEqual(plain.map((r) => r.instance), ['nats/0', 'router/0', 'router/1', 'router/2']);
  t.like(plain[0], { id: 'u1', ips: ['10.0.0.10'], vm_cid: 'vm-a', deploy_state: 'started' });
  t.is(plain[0]!.process_state, undefined, 'no agent asked');
  const states = new Map<string, AgentState | Error>([['a', state('nats', 'running')], ['b', state('router', 'failing')], ['c', new Error('timeout')]]);
  const rows = instanceRows(instances, vms, states);
  t.deepEqual(rows.map((r) => r.process_state), ['running', 'failing', 'unresponsive agent', 'no vm']);
  t.deepEqual(rows[1]!.processes, [{ name: 'router/router', state: 'failing', restarts: 4 }]);
  // As the CLI receives them: over the wire.
  const text = renderInstances(JSON.parse(JSON.stringify(rows)), { ps: true, vitals: true }).join('\n');
  t.regex(text, /nats\/0\/u1\s+running\s+z1\s+10\.0\.0\.10\s+01:02:05\s+0\.1, 0\.2, 0\.3\s+2\.0%\s+12% \(200M\)/);
  t.regex(text, /~ router\/router\s+failing \(4 restarts\)/);
  t.regex(text, /4 instances, 1 running$/);
});

// The pure parts of vms, logs, start, stop and restart: the CLI's GROUP[/INDEX] target, the
// logs file name and the vms table; the director's target selection and VM rows.
import test from 'ava';
import { logsFileName, parseInstanceTarget, renderVms } from '../../orchestrator/client/instance-ops-commands.ts';
import { ClientUsageError } from '../../kernel/client/errors.ts';
import { InstanceTargetError, resourcePath, selectInstances } from '../../orchestrator/director/deploy/instance-ops.ts';
import { vmRows } from '../../orchestrator/director/deploy/instances.ts';
import type { AgentState } from '../../orchestrator/agent/protocol.ts';
import type { InstanceRecord, VmRecord } from '../../orchestrator/director/types.ts';

const UUID = '0f8fad5b-d9cb-469f-a165-70867728950e';

const inst = (id: number, group: string, idx: number, o: Partial<InstanceRecord> = {}): InstanceRecord => ({
  id,
  deployment: 'dd',
  instance_group: group,
  idx,
  uuid: `u${id}`,
  az: 'z1',
  state: 'running',
  bootstrap: idx === 0,
  spec: { vm_type: { name: 'small', cloud_properties: {} }, networks: [{ name: 'default', type: 'manual', ip: `10.0.0.${10 + id}` }] },
  created_at: '',
  updated_at: '',
  ...o,
});
const vm = (cid: string, agent: string, instance: number | null): VmRecord => ({ cid, agent_id: agent, deployment: 'dd', instance_id: instance, created_at: '2026-11-26T22:06:12.000Z' });

test('a target is GROUP, GROUP/INDEX or GROUP/UUID; none means every instance; mistakes are sentences', (t) => {
  t.deepEqual(parseInstanceTarget(undefined, 'stop'), { group: '*' });
  t.deepEqual(parseInstanceTarget('router', 'stop'), { group: 'router' });
  t.deepEqual(parseInstanceTarget(' router/1 ', 'stop'), { group: 'router', index: '1' });
  t.deepEqual(parseInstanceTarget(`router/${UUID}`, 'logs', { needIndex: true }), { group: 'router', index: UUID });
  for (const [value, message] of [
    ['router/a/b', /too many slashes/],
    ['router/first', /the index is a number or the instance's uuid; expected GROUP\[\/INDEX\]/],
    ['/0', /the group is a name/],
    ['rou ter', /the group is a name/],
  ] as const) {
    t.throws(() => parseInstanceTarget(value, 'stop'), { instanceOf: ClientUsageError, message }, value);
  }
  t.throws(() => parseInstanceTarget(undefined, 'logs', { needIndex: true }), { instanceOf: ClientUsageError, message: 'name the instance: ingot -d DEPLOYMENT logs GROUP/INDEX' });
  t.throws(() => parseInstanceTarget('router', 'logs', { needIndex: true }), { message: /the index is missing; expected GROUP\/INDEX/ });
});

test('the logs tarball is named <deployment>.<group>.<index>.<YYYYMMDD-HHMMSS>.tgz', (t) => {
  t.is(logsFileName('dd', { group: 'router', index: '0' }, new Date(2026, 10, 7, 1, 2, 3)), 'dd.router.0.20261107-010203.tgz');
  t.is(logsFileName('cf', { group: 'nats', index: '12' }, new Date(2026, 0, 31, 23, 59, 59)), 'cf.nats.12.20260131-235959.tgz');
});

test('the vms table: instance/uuid, process state, AZ, IPs, VM cid, type and creation', (t) => {
  const lines = renderVms(
    [
      { instance: 'nats/0', id: 'u1', vm_cid: 'vm-a', agent_id: 'a', az: 'z1', ips: ['10.0.0.11'], vm_type: 'small', process_state: 'running', created_at: '2026-11-26T22:06:12.000Z' },
      { instance: 'router/0', id: 'u2', vm_cid: 'vm-b', agent_id: 'b', az: null, ips: [], vm_type: null, process_state: 'unresponsive agent', created_at: 'x' },
    ],
    { timeZone: 'UTC' },
  );
  t.deepEqual(lines, [
    'Instance      Process State        AZ   IPs         VM CID   VM Type   Created',
    'nats/0/u1     running              z1   10.0.0.11   vm-a     small     Thu Nov 26 22:06:12 UTC 2026',
    'router/0/u2   unresponsive agent                    vm-b               x',
  ]);
});

test('selecting instances: all, a group, one by index or uuid; what does not exist is named', (t) => {
  const all = [inst(3, 'router', 1), inst(1, 'nats', 0), inst(2, 'router', 0, { uuid: UUID })];
  t.deepEqual(selectInstances(all, 'dd', '*').map((i) => i.id), [1, 2, 3]);
  t.deepEqual(selectInstances(all, 'dd', 'router').map((i) => i.id), [2, 3]);
  t.deepEqual(selectInstances(all, 'dd', 'router', '1').map((i) => i.id), [3]);
  t.deepEqual(selectInstances(all, 'dd', 'router', UUID).map((i) => i.id), [2]);
  const fails = (group: string, index: string | undefined, code: InstanceTargetError['code'], message: RegExp, list = all) => {
    const err = t.throws(() => selectInstances(list, 'dd', group, index), { instanceOf: InstanceTargetError, message });
    t.is(err?.code, code);
  };
  fails('web', undefined, 'not_found', /^Instance group web is not in deployment dd \(it has nats, router\)$/);
  fails('router', '7', 'not_found', /^Instance router\/7 is not in deployment dd \(router has 0, 1\)$/);
  fails('router', '../0', 'invalid', /the index is a number or the instance's uuid/);
  fails('*', '0', 'invalid', /name a group/);
  fails('*', undefined, 'not_found', /Deployment dd has no instances/, []);
});

test('a resource path is a UUID under data_dir/resources; anything else is refused', (t) => {
  t.is(resourcePath('/data', UUID), `/data/resources/${UUID}.tgz`);
  for (const bad of ['../director.yml', `${UUID}/..`, UUID.toUpperCase(), '']) t.throws(() => resourcePath('/data', bad), { instanceOf: InstanceTargetError }, bad);
});

test('vm rows: one per VM holding an instance, with its type, creation and the agent’s word', (t) => {
  const instances = [inst(2, 'router', 0), inst(1, 'nats', 0), inst(3, 'router', 1)];
  const vms = [vm('vm-a', 'a', 1), vm('vm-b', 'b', 2), vm('vm-x', 'x', null)];
  const running = { job_state: 'running', processes: [] } as unknown as AgentState;
  const rows = vmRows(instances, vms, new Map<string, AgentState | Error>([['a', running], ['b', new Error('timeout')]]));
  t.deepEqual(rows, [
    { instance: 'nats/0', id: 'u1', vm_cid: 'vm-a', agent_id: 'a', az: 'z1', ips: ['10.0.0.11'], vm_type: 'small', process_state: 'running', created_at: '2026-11-26T22:06:12.000Z' },
    { instance: 'router/0', id: 'u2', vm_cid: 'vm-b', agent_id: 'b', az: 'z1', ips: ['10.0.0.12'], vm_type: 'small', process_state: 'unresponsive agent', created_at: '2026-11-26T22:06:12.000Z' },
  ]);
});

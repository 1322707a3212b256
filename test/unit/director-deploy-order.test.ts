// The rolling order: canaries first, then batches of max_in_flight; serial groups one by one.
import test from 'ava';
import { groupStages, updateBatches } from '../../orchestrator/director/deploy/update-order.ts';
import { watchVerdict } from '../../orchestrator/director/deploy/instance-updater.ts';
import type { AgentState } from '../../orchestrator/agent/protocol.ts';
import { updatePolicy } from '../fixtures/update-policy.ts';

const policy = updatePolicy;

const shape = <T>(batches: Array<{ canary: boolean; items: T[] }>) => batches.map((b) => `${b.canary ? 'canary ' : ''}${b.items.join(',')}`);

test('one canary, then one at a time', (t) => {
  t.deepEqual(shape(updateBatches([0, 1, 2, 3], policy(), 4)), ['canary 0', '1', '2', '3']);
});

test('two canaries, then batches of max_in_flight', (t) => {
  t.deepEqual(shape(updateBatches([0, 1, 2, 3, 4, 5, 6], policy({ canaries: 2, max_in_flight: { instances: 2 } }), 7)), ['canary 0,1', '2,3', '4,5', '6']);
});

test('max_in_flight as a percentage of the group, at least one', (t) => {
  t.deepEqual(shape(updateBatches([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], policy({ canaries: 1, max_in_flight: { percent: 30 } }), 10)), ['canary 0', '1,2,3', '4,5,6', '7,8,9']);
  t.deepEqual(shape(updateBatches([0, 1, 2], policy({ max_in_flight: { percent: 10 } }), 3)), ['canary 0', '1', '2']);
});

test('no canaries; more canaries than instances; nothing to update', (t) => {
  t.deepEqual(shape(updateBatches([3, 4, 5], policy({ canaries: 0, max_in_flight: { instances: 2 } }), 6)), ['3,4', '5']);
  t.deepEqual(shape(updateBatches([0, 1], policy({ canaries: 5 }), 2)), ['canary 0,1']);
  t.deepEqual(updateBatches([], policy(), 3), []);
});

test('groups run one after another; consecutive serial:false groups run together', (t) => {
  const g = (name: string, serial: boolean) => ({ name, update: policy({ serial }) });
  const stages = groupStages([g('nats', true), g('cc', false), g('router', false), g('dea', true), g('hm', false)]);
  t.deepEqual(stages.map((s) => s.map((x) => x.name).join('+')), ['nats', 'cc+router', 'dea', 'hm']);
});

function state(processes: Array<{ state: 'running' | 'starting' | 'failing' | 'stopped'; restarts: number }>): AgentState {
  const job_state = processes.every((p) => p.state === 'running') ? 'running' : 'failing';
  return {
    agent_id: 'a',
    deployment: 'dd',
    job: { name: 'router' },
    index: 0,
    job_state,
    processes: processes.map((p, i) => ({ name: `p${i}`, job: 'router', ...p })),
    vitals: { load: ['0', '0', '0'], cpu: { user: '0', sys: '0', wait: '0' }, mem: { percent: '0', kb: '0' }, swap: { percent: '0', kb: '0' }, disk: {}, uptime: { secs: 1 } },
    persistent_disk: {},
  };
}

test('a job is running when every process runs and none restarted since the last look', (t) => {
  t.deepEqual(watchVerdict(state([{ state: 'running', restarts: 0 }]), undefined), { running: true, stable: false, restarts: 0 });
  t.true(watchVerdict(state([{ state: 'running', restarts: 0 }]), 0).stable);
  // A crash loop caught while its process happens to be up is not stable.
  t.false(watchVerdict(state([{ state: 'running', restarts: 3 }]), 2).stable);
  t.false(watchVerdict(state([{ state: 'starting', restarts: 3 }]), 3).running);
});

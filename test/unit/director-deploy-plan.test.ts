// The deploy plan: desired instances against deployed ones, one decision each.
import test from 'ava';
import { planChanges, planDeployment, planInstance } from '../../orchestrator/director/deploy/plan.ts';
import type { DeployedInstance, DesiredInstance } from '../../orchestrator/director/deploy/types.ts';
import { updatePolicy } from '../fixtures/update-policy.ts';

const policy = updatePolicy();

function desired(group: string, index: number, o: Partial<DesiredInstance> = {}): DesiredInstance {
  return {
    group,
    index,
    uuid: `${group}-${index}-uuid`,
    az: 'z1',
    bootstrap: index === 0,
    vm_type: { name: 'small', cloud_properties: { memory_mb: 512 } },
    stemcell: { os: 'debian-12', version: '1' },
    networks: [{ name: 'default', type: 'manual', ip: `10.0.0.${10 + index}`, static: false, range: '10.0.0.0/24', gateway: '10.0.0.1', dns: [], default: ['dns', 'gateway'], cloud_properties: {} }],
    jobs: [{ name: group, release: 'ingot', release_version: '1', digest: 'a'.repeat(64), manifest_properties: {}, properties: { port: 8080 }, secret_paths: [] }],
    packages: [{ name: 'ingot', version: 'p1', blobstore_id: 'b'.repeat(64), sha256: 'b'.repeat(64) }],
    persistent_disk_mb: 0,
    persistent_disk_cloud_properties: {},
    env: {},
    ...o,
  };
}

function deployed(spec: DesiredInstance, o: Partial<DeployedInstance> = {}): DeployedInstance {
  return { group: spec.group, index: spec.index, uuid: spec.uuid, state: 'running', spec, vm: { cid: `vm-${spec.group}-${spec.index}`, agent_id: `agent_${spec.index}` }, disk_cid: null, ...o };
}

test('a new instance is created; one without a VM is created again', (t) => {
  t.is(planInstance(desired('router', 0), null).action, 'create');
  const d = desired('router', 0);
  const p = planInstance(d, deployed(d, { vm: null }));
  t.is(p.action, 'create');
  t.deepEqual(p.reasons, ['its VM is missing']);
});

test('the same spec on a running instance is unchanged; recreate=true recreates it', (t) => {
  const d = desired('router', 0);
  t.is(planInstance(d, deployed(d)).action, 'unchanged');
  t.is(planInstance(d, deployed(d), true).action, 'recreate');
});

test('a stemcell, vm_type or address change recreates, naming what changed', (t) => {
  const d = desired('router', 0);
  const stem = planInstance(desired('router', 0, { stemcell: { os: 'debian-12', version: '2' } }), deployed(d));
  t.is(stem.action, 'recreate');
  t.deepEqual(stem.reasons, ['stemcell debian-12/1 → debian-12/2']);
  const vm = planInstance(desired('router', 0, { vm_type: { name: 'large', cloud_properties: {} } }), deployed(d));
  t.is(vm.action, 'recreate');
  t.regex(vm.reasons[0]!, /^vm_type small → large$/);
  const cp = planInstance(desired('router', 0, { vm_type: { name: 'small', cloud_properties: { memory_mb: 1024 } } }), deployed(d));
  t.is(cp.action, 'recreate');
});

test('an instance whose persistent disk was forgotten is updated (a new disk); one that has its disk is unchanged', (t) => {
  const d = desired('router', 0, { persistent_disk_mb: 16 });
  t.is(planInstance(d, deployed(d, { disk_cid: 'disk-1' })).action, 'unchanged');
  const p = planInstance(d, deployed(d, { disk_cid: null }));
  t.is(p.action, 'update');
  t.deepEqual(p.reasons, ['its persistent disk is missing']);
});

test('properties, jobs, release versions and packages update in place', (t) => {
  const d = desired('router', 0);
  const job = d.jobs[0]!;
  const props = planInstance(desired('router', 0, { jobs: [{ ...job, digest: 'c'.repeat(64), properties: { port: 9090 } }] }), deployed(d));
  t.is(props.action, 'update');
  t.deepEqual(props.reasons, ['job router properties port']);
  const rel = planInstance(desired('router', 0, { jobs: [{ ...job, release_version: '2', digest: 'd'.repeat(64) }] }), deployed(d));
  t.is(rel.action, 'update');
  t.true(rel.reasons.includes('job router release ingot/1 → ingot/2'));
  const jobs = planInstance(desired('router', 0, { jobs: [job, { ...job, name: 'extra' }] }), deployed(d));
  t.is(jobs.action, 'update');
  t.deepEqual(jobs.reasons, ['jobs router → router, extra']);
  const tmpl = planInstance(desired('router', 0, { jobs: [{ ...job, digest: 'e'.repeat(64) }] }), deployed(d));
  t.deepEqual(tmpl.reasons, ['job router rendered templates changed']);
  const pkgs = planInstance(desired('router', 0, { packages: [] }), deployed(d));
  t.deepEqual(pkgs.reasons, ['packages changed']);
});

test('an instance whose last update failed is updated again even when its spec is the same', (t) => {
  const d = desired('router', 0);
  const p = planInstance(d, deployed(d, { state: 'failed' }));
  t.is(p.action, 'update');
  t.regex(p.reasons.join(), /did not finish/);
  t.is(planInstance(d, deployed(d, { spec: null, state: 'created' })).action, 'update');
});

test('an instance left mid-update by a killed director gets a fresh VM', (t) => {
  const d = desired('router', 0);
  const p = planInstance(d, deployed(d, { state: 'updating' }));
  t.is(p.action, 'recreate');
  t.deepEqual(p.reasons, ['its last update was interrupted (state updating)']);
});

test('a deployment plan: scale up, scale down, a removed group, and groups in manifest order', (t) => {
  const n0 = desired('nats', 0);
  const r0 = desired('router', 0);
  const r1 = desired('router', 1);
  const old = desired('old', 0);
  const plan = planDeployment({
    deployment: 'dd',
    groups: [
      { name: 'nats', update: policy, instances: [n0] },
      { name: 'router', update: policy, instances: [r0, r1] },
    ],
    deployed: [deployed(old), deployed(r0), deployed(n0), deployed(desired('nats', 1))],
    releases: ['ingot/1'],
    stemcells: ['debian-12/1'],
  });
  t.deepEqual(plan.groups.map((g) => g.name), ['nats', 'router', 'old']);
  t.deepEqual(
    plan.groups.flatMap((g) => g.instances.map((i) => `${i.group}/${i.index} ${i.action}`)),
    ['nats/0 unchanged', 'nats/1 delete', 'router/0 unchanged', 'router/1 create', 'old/0 delete'],
  );
  t.true(planChanges(plan));
});

test('nothing to do is no change', (t) => {
  const r0 = desired('router', 0);
  const plan = planDeployment({ deployment: 'dd', groups: [{ name: 'router', update: policy, instances: [r0] }], deployed: [deployed(r0)], releases: ['ingot/1'], stemcells: ['debian-12/1'] });
  t.false(planChanges(plan));
});


// The diff the operator reads before a deploy: BOSH-like lines, secrets redacted.
import test from 'ava';
import { isSecretPath, propertyChange, REDACTED, renderPlanDiff, variablePaths } from '../../orchestrator/director/deploy/diff.ts';
import { planDeployment } from '../../orchestrator/director/deploy/plan.ts';
import type { DeployedInstance, DesiredInstance, InstanceJob } from '../../orchestrator/director/deploy/types.ts';
import { updatePolicy } from '../fixtures/update-policy.ts';

const policy = updatePolicy();

function job(o: Partial<InstanceJob> = {}): InstanceJob {
  return { name: 'router', release: 'ingot', release_version: '1', digest: 'a'.repeat(64), manifest_properties: {}, properties: { router: { port: 8080 } }, secret_paths: [], ...o };
}

function desired(group: string, index: number, o: Partial<DesiredInstance> = {}): DesiredInstance {
  return {
    group,
    index,
    uuid: `${group}-${index}`,
    az: 'z1',
    bootstrap: index === 0,
    vm_type: { name: 'small', cloud_properties: {} },
    stemcell: { os: 'debian-12', version: '1' },
    networks: [{ name: 'default', type: 'manual', ip: `10.0.0.${10 + index}`, static: false, range: '10.0.0.0/24', gateway: '10.0.0.1', dns: [], default: ['gateway'], cloud_properties: {} }],
    jobs: [job()],
    packages: [],
    persistent_disk_mb: 0,
    persistent_disk_cloud_properties: {},
    env: {},
    ...o,
  };
}

const deployed = (spec: DesiredInstance): DeployedInstance => ({ group: spec.group, index: spec.index, uuid: spec.uuid, state: 'running', spec, vm: { cid: `vm-${spec.index}`, agent_id: 'a' }, disk_cid: null });

test('secret-looking keys and values from variables are redacted; others are shown', (t) => {
  t.is(propertyChange('router.port', 8080, 8081), 'router.port: 8080 → 8081');
  t.is(propertyChange('nats.password', 'old-pass', 'new-pass'), `nats.password: ${REDACTED} → ${REDACTED}`);
  for (const p of ['a.secret', 'tls.private_key', 'api.token', 'x.client_secret', 'KEY']) t.true(isSecretPath(p), p);
  t.false(isSecretPath('router.port'));
  t.is(propertyChange('nats.user', 'alice', 'bob', ['nats.user']), `nats.user: ${REDACTED} → ${REDACTED}`);
  t.is(propertyChange('nats.password', undefined, 's3cret'), `nats.password: (none) → ${REDACTED}`);
  t.deepEqual(variablePaths({ nats: { user: 'kernel', password: '((nats_password))', urls: ['nats://((user)):x@h'] }, port: 1 }), ['nats.password', 'nats.urls']);
});

test('the diff of a scale-up, a property change and a removed group', (t) => {
  const r0 = desired('router', 0);
  const changed = desired('router', 0, { jobs: [job({ digest: 'b'.repeat(64), properties: { router: { port: 9090 }, nats: { password: 'new-secret' } }, secret_paths: [] })] });
  const old = desired('old', 0);
  const plan = planDeployment({
    deployment: 'dd',
    groups: [{ name: 'router', update: policy, instances: [changed, desired('router', 1)] }],
    deployed: [deployed({ ...r0, jobs: [job({ properties: { router: { port: 8080 }, nats: { password: 'old-secret' } } })] }), deployed(old)],
    releases: ['ingot/1'],
    stemcells: ['debian-12/1'],
  });
  const lines = renderPlanDiff(plan);
  t.deepEqual(lines, [
    '+ instance_groups: router instances 1 → 2',
    `~ instance_groups: router job router property nats.password: ${REDACTED} → ${REDACTED}`,
    '~ instance_groups: router job router property router.port: 8080 → 9090',
    '~   router/0: update (job router properties nats.password, router.port)',
    '+   router/1 (z1, 10.0.0.11): create',
    '- instance_groups: old (removed, 1 instance)',
    '-   old/0: delete',
  ]);
  t.false(lines.join('\n').includes('secret'), 'no secret value appears');
});

test('a value that came from a ((variable)) is redacted even under a plain key', (t) => {
  const before = desired('nats', 0, { jobs: [job({ name: 'nats', properties: { nats: { user: 'u1' } }, manifest_properties: { nats: { user: '((nats_user))' } }, secret_paths: ['nats.user'] })] });
  const after = desired('nats', 0, { jobs: [job({ name: 'nats', digest: 'c'.repeat(64), properties: { nats: { user: 'u2' } }, manifest_properties: { nats: { user: '((nats_user))' } }, secret_paths: ['nats.user'] })] });
  const lines = renderPlanDiff(planDeployment({ deployment: 'dd', groups: [{ name: 'nats', update: policy, instances: [after] }], deployed: [deployed(before)], releases: ['ingot/1'], stemcells: ['debian-12/1'] }));
  t.true(lines.includes(`~ instance_groups: nats job nats property nats.user: ${REDACTED} → ${REDACTED}`), lines.join('\n'));
  t.false(lines.join('\n').includes('u1'));
});

test('release and stemcell versions, and a recreate', (t) => {
  const before = desired('router', 0);
  const after = desired('router', 0, { stemcell: { os: 'debian-12', version: '2' }, jobs: [job({ release_version: '2' })] });
  const lines = renderPlanDiff(planDeployment({ deployment: 'dd', groups: [{ name: 'router', update: policy, instances: [after] }], deployed: [deployed(before)], releases: ['ingot/2'], stemcells: ['debian-12/2'] }));
  t.deepEqual(lines, ['~ releases: ingot 1 → 2', '~ stemcells: debian-12 1 → 2', '~   router/0: recreate (stemcell debian-12/1 → debian-12/2)']);
});

test('an unchanged plan has no lines', (t) => {
  const r0 = desired('router', 0);
  t.deepEqual(renderPlanDiff(planDeployment({ deployment: 'dd', groups: [{ name: 'router', update: policy, instances: [r0] }], deployed: [deployed(r0)], releases: ['ingot/1'], stemcells: ['debian-12/1'] })), []);
});

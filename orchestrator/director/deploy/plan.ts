// The deploy plan (pure): desired instances against deployed ones, one decision per instance.
//   create    — no VM yet (new instance, or its VM is gone)
//   recreate  — a new VM is needed: stemcell, vm_type or networks changed, `recreate` asked, or
//               its update was interrupted by a director that died
//   update    — same VM, new bits: jobs, properties (rendered digests), releases, persistent disk,
//               or the last update of this instance did not finish
//   delete    — deployed but no longer wanted
//   unchanged — nothing to do
import type { UpdatePolicy } from '../../manifest/mod.ts';
import type { DeployedInstance, DesiredInstance, GroupPlan, InstancePlan, Plan } from './types.ts';

export interface DesiredGroup {
  name: string;
  update: UpdatePolicy;
  /** The group's zones in manifest order (its instances roll zone by zone). */
  azs?: string[];
  instances: DesiredInstance[];
}

export interface PlanInput {
  deployment: string;
  groups: DesiredGroup[];
  deployed: DeployedInstance[];
  recreate?: boolean;
  releases: string[];
  stemcells: string[];
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));

/** Keys sorted, so two equal maps written in different orders compare equal. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}

/** Why the VM must be replaced ([] when it may stay). */
export function recreateReasons(before: DesiredInstance, after: DesiredInstance): string[] {
  const out: string[] = [];
  if (before.stemcell.os !== after.stemcell.os || before.stemcell.version !== after.stemcell.version) {
    out.push(`stemcell ${before.stemcell.os}/${before.stemcell.version} → ${after.stemcell.os}/${after.stemcell.version}`);
  }
  if (before.vm_type.name !== after.vm_type.name) out.push(`vm_type ${before.vm_type.name} → ${after.vm_type.name}`);
  else if (!same(before.vm_type.cloud_properties, after.vm_type.cloud_properties)) out.push(`vm_type ${after.vm_type.name} cloud_properties changed`);
  const nets = (d: DesiredInstance) => d.networks.map((n) => ({ name: n.name, ip: n.ip, cloud_properties: n.cloud_properties }));
  if (!same(nets(before), nets(after))) {
    const describe = (d: DesiredInstance) => d.networks.map((n) => `${n.name} ${n.ip ?? 'dynamic'}`).join(', ');
    out.push(`networks ${describe(before)} → ${describe(after)}`);
  }
  if (before.az !== after.az) out.push(`az ${before.az} → ${after.az}`);
  if (!same(before.env, after.env)) out.push('env changed');
  return out;
}

/** What changes on the same VM ([] when nothing). */
export function updateReasons(before: DesiredInstance, after: DesiredInstance): string[] {
  const out: string[] = [];
  const names = (d: DesiredInstance) => d.jobs.map((j) => j.name).join(', ');
  if (names(before) !== names(after)) out.push(`jobs ${names(before) || 'none'} → ${names(after) || 'none'}`);
  for (const job of after.jobs) {
    const old = before.jobs.find((j) => j.name === job.name);
    if (!old) continue;
    if (old.release !== job.release || old.release_version !== job.release_version) out.push(`job ${job.name} release ${old.release}/${old.release_version} → ${job.release}/${job.release_version}`);
    const changed = changedPaths(old.properties, job.properties);
    if (changed.length) out.push(`job ${job.name} properties ${changed.join(', ')}`);
    else if (old.digest !== job.digest) out.push(`job ${job.name} rendered templates changed`);
  }
  const pkgs = (d: DesiredInstance) => d.packages.map((p) => `${p.name}/${p.sha256}`).join(',');
  if (pkgs(before) !== pkgs(after)) out.push('packages changed');
  if (before.persistent_disk_mb !== after.persistent_disk_mb) out.push(`persistent disk ${before.persistent_disk_mb} MB → ${after.persistent_disk_mb} MB`);
  return out;
}

/** Dotted paths whose leaf values differ between two property trees, sorted. */
export function changedPaths(a: unknown, b: unknown, prefix = ''): string[] {
  const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isMap(a) && isMap(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => changedPaths(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return same(a, b) ? [] : [prefix || '(all)'];
}

/** Instance states a deploy leaves only when its director is killed (a failure or a cancel ends in `failed`). */
export const INTERRUPTED = new Set(['updating']);

export function planInstance(desired: DesiredInstance | null, deployed: DeployedInstance | null, recreate = false): InstancePlan {
  const base = { group: (desired ?? deployed)!.group, index: (desired ?? deployed)!.index, uuid: (desired ?? deployed)!.uuid, desired, deployed };
  if (!desired) return { ...base, action: 'delete', reasons: ['no longer in the manifest'] };
  if (!deployed || !deployed.vm) return { ...base, action: 'create', reasons: [deployed ? 'its VM is missing' : 'new instance'] };
  if (recreate) return { ...base, action: 'recreate', reasons: ['recreate was asked'] };
  // Left mid-update by a director that died: its agent may still be busy with work that
  // director began (and whose task id died with it), so it gets a fresh VM.
  if (INTERRUPTED.has(deployed.state)) return { ...base, action: 'recreate', reasons: [`its last update was interrupted (state ${deployed.state})`] };
  if (!deployed.spec) return { ...base, action: 'update', reasons: ['its last update did not finish'] };
  const rec = recreateReasons(deployed.spec, desired);
  if (rec.length) return { ...base, action: 'recreate', reasons: rec };
  const upd = updateReasons(deployed.spec, desired);
  if (deployed.state !== 'running') upd.push(`its last update did not finish (state ${deployed.state})`);
  // Its disk was forgotten (cloud-check's delete_disk_reference): the update makes a new one.
  if (desired.persistent_disk_mb > 0 && !deployed.disk_cid) upd.push('its persistent disk is missing');
  if (upd.length) return { ...base, action: 'update', reasons: upd };
  return { ...base, action: 'unchanged', reasons: [] };
}

export function planDeployment(input: PlanInput): Plan {
  const byKey = new Map(input.deployed.map((d) => [`${d.group}/${d.index}`, d]));
  const used = new Set<string>();
  const groups: GroupPlan[] = input.groups.map((g) => ({
    name: g.name,
    update: g.update,
    azs: g.azs ?? [],
    instances: g.instances.map((inst) => {
      const key = `${g.name}/${inst.index}`;
      used.add(key);
      return planInstance(inst, byKey.get(key) ?? null, input.recreate);
    }),
  }));
  // Whatever is deployed but not wanted: instances beyond the new count, and removed groups.
  for (const d of input.deployed) {
    if (used.has(`${d.group}/${d.index}`)) continue;
    let group = groups.find((g) => g.name === d.group);
    if (!group) {
      group = { name: d.group, update: input.groups[0]?.update ?? defaultPolicy, azs: [], instances: [] };
      groups.push(group);
    }
    group.instances.push(planInstance(null, d));
  }
  for (const g of groups) g.instances.sort((a, b) => a.index - b.index);
  const deployedReleases = new Set<string>();
  const deployedStemcells = new Set<string>();
  for (const d of input.deployed) {
    for (const j of d.spec?.jobs ?? []) deployedReleases.add(`${j.release}/${j.release_version}`);
    if (d.spec) deployedStemcells.add(`${d.spec.stemcell.os}/${d.spec.stemcell.version}`);
  }
  return {
    deployment: input.deployment,
    groups,
    releases: { before: [...deployedReleases].sort(), after: [...input.releases].sort() },
    stemcells: { before: [...deployedStemcells].sort(), after: [...input.stemcells].sort() },
  };
}

const defaultPolicy: UpdatePolicy = {
  canaries: 1,
  max_in_flight: { instances: 1 },
  canary_watch_time: { min_ms: 1000, max_ms: 30_000 },
  update_watch_time: { min_ms: 1000, max_ms: 30_000 },
  serial: true,
  vm_strategy: 'delete-create',
};

/**
 * Whether a recreate goes create-swap-delete (BOSH's vm_strategy): the new VM is created, applied
 * and started before the old one is drained and deleted, so the instance's work never stops —
 * or, with a persistent disk (on one VM at a time), stops only while the disk moves over. The
 * new VM takes a new address (the old one still holds its own), so an instance on a static IP
 * falls back to delete-create, as in BOSH; so does one whose disk this deploy removes.
 */
export function swapsVm(i: InstancePlan, policy: UpdatePolicy): boolean {
  if (i.action !== 'recreate' || policy.vm_strategy !== 'create-swap-delete') return false;
  if (!i.deployed?.vm || !i.deployed.spec || !i.desired) return false;
  if (i.deployed.disk_cid && i.desired.persistent_disk_mb === 0) return false;
  return ![...i.desired.networks, ...i.deployed.spec.networks].some((n) => n.static);
}

/** True when applying the plan would change anything. */
export function planChanges(plan: Plan): boolean {
  return plan.groups.some((g) => g.instances.some((i) => i.action !== 'unchanged'));
}

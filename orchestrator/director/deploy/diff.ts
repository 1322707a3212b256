// The plan as the operator reads it before anything changes (pure), BOSH's diff in spirit:
//   ~ releases: ingot 0.1.0+dev.1 → 0.1.0+dev.2
//   + instance_groups: router instances 1 → 2
//   +   router/1 (z1, 10.245.1.3): create
//   ~   router/0: update (job router properties router.port)
//   ~ instance_groups: router job router property router.port: 8080 → 8081
// Secret values never appear: a value that came from a ((variable)), or whose key is named like
// a password, secret, key or token, is shown as <redacted>.
import type { DesiredInstance, GroupPlan, InstancePlan, Plan } from './types.ts';
import { changedPaths } from './plan.ts';

export const REDACTED = '<redacted>';
const SECRET_KEY = /password|secret|key|token|credential|private/i;

export function isSecretPath(path: string, secretPaths: readonly string[] = []): boolean {
  if (path.split('.').some((segment) => SECRET_KEY.test(segment))) return true;
  return secretPaths.some((p) => path === p || path.startsWith(`${p}.`) || p.startsWith(`${path}.`));
}

/** Dotted paths of string values that hold a ((variable)) reference. */
export function variablePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return /\(\([^()]+\)\)/.test(value) ? [prefix] : [];
  if (Array.isArray(value)) return value.some((v) => variablePaths(v).length > 0) ? [prefix] : [];
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => variablePaths(v, prefix ? `${prefix}.${k}` : k));
  }
  return [];
}

function dig(tree: unknown, path: string): unknown {
  let v: unknown = tree;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

function show(v: unknown): string {
  if (v === undefined) return '(none)';
  return typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v);
}

/** `router.port: 8080 → 8081`, or `nats.password: <redacted> → <redacted>`. */
export function propertyChange(path: string, before: unknown, after: unknown, secretPaths: readonly string[] = []): string {
  if (isSecretPath(path, secretPaths)) {
    const side = (v: unknown) => (v === undefined ? '(none)' : REDACTED);
    return `${path}: ${side(before)} → ${side(after)}`;
  }
  return `${path}: ${show(before)} → ${show(after)}`;
}

function byName(list: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const item of list) {
    const at = item.lastIndexOf('/');
    const name = item.slice(0, at);
    m.set(name, [...(m.get(name) ?? []), item.slice(at + 1)]);
  }
  return m;
}

function versionLines(kind: string, before: string[], after: string[]): string[] {
  const b = byName(before);
  const a = byName(after);
  const out: string[] = [];
  for (const [name, versions] of a) {
    const old = b.get(name);
    if (!old) {
      if (before.length > 0) out.push(`+ ${kind}: ${name} ${versions.join(', ')}`);
    } else if (old.join(',') !== versions.join(',')) out.push(`~ ${kind}: ${name} ${old.join(', ')} → ${versions.join(', ')}`);
  }
  for (const [name, versions] of b) if (!a.has(name)) out.push(`- ${kind}: ${name} ${versions.join(', ')}`);
  return out;
}

function instanceLine(i: InstancePlan): string | undefined {
  const name = `${i.group}/${i.index}`;
  const where = (d: DesiredInstance | null) => (d ? ` (${[d.az, ...d.networks.map((n) => n.ip ?? `${n.name} dynamic`)].filter(Boolean).join(', ')})` : '');
  switch (i.action) {
    case 'create':
      return `+   ${name}${where(i.desired)}: create`;
    case 'delete':
      return `-   ${name}: delete`;
    case 'update':
    case 'recreate':
      return `~   ${name}: ${i.action} (${i.reasons.join('; ')})`;
    default:
      return undefined;
  }
}

/** Property changes of a group, from the first instance that has a deployed spec to compare. */
function propertyLines(g: GroupPlan): string[] {
  const sample = g.instances.find((i) => i.desired && i.deployed?.spec && (i.action === 'update' || i.action === 'recreate'));
  if (!sample) return [];
  const out: string[] = [];
  for (const job of sample.desired!.jobs) {
    const old = sample.deployed!.spec!.jobs.find((j) => j.name === job.name);
    if (!old) {
      out.push(`+ instance_groups: ${g.name} job ${job.name} (${job.release}/${job.release_version})`);
      continue;
    }
    const secrets = [...job.secret_paths, ...old.secret_paths];
    for (const path of changedPaths(old.properties, job.properties)) {
      out.push(`~ instance_groups: ${g.name} job ${job.name} property ${propertyChange(path, dig(old.properties, path), dig(job.properties, path), secrets)}`);
    }
  }
  for (const old of sample.deployed!.spec!.jobs) {
    if (!sample.desired!.jobs.some((j) => j.name === old.name)) out.push(`- instance_groups: ${g.name} job ${old.name}`);
  }
  return out;
}

/** The lines of the diff; [] when the plan changes nothing. */
export function renderPlanDiff(plan: Plan): string[] {
  const out: string[] = [];
  out.push(...versionLines('releases', plan.releases.before, plan.releases.after));
  out.push(...versionLines('stemcells', plan.stemcells.before, plan.stemcells.after));
  for (const g of plan.groups) {
    const before = g.instances.filter((i) => i.deployed).length;
    const after = g.instances.filter((i) => i.desired).length;
    const changed = g.instances.filter((i) => i.action !== 'unchanged');
    if (changed.length === 0) continue;
    if (before === 0) out.push(`+ instance_groups: ${g.name} (new, ${after} instance${after === 1 ? '' : 's'})`);
    else if (after === 0) out.push(`- instance_groups: ${g.name} (removed, ${before} instance${before === 1 ? '' : 's'})`);
    else if (before !== after) out.push(`${after > before ? '+' : '-'} instance_groups: ${g.name} instances ${before} → ${after}`);
    out.push(...propertyLines(g));
    for (const i of changed) {
      const line = instanceLine(i);
      if (line) out.push(line);
    }
  }
  return out;
}

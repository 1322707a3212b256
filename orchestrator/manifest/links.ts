// Links: how a job learns where its peers are. A job's spec says what it `provides` and
// `consumes` (by name and type); each consumer is matched to the one provider of its type
// in the deployment, or to the one named by `from`. Every job finds NATS this way, never
// from an address written by hand. A consumer with no provider, or with several, is an
// error naming the consumer — an ambiguous match is never resolved by guessing.
import type { Problem } from './errors.ts';
import type { Manifest, ManifestJob } from './deployment-manifest.ts';
import { dig, isPlainMap, problemAt, setPath } from './yaml-source.ts';

/** What a release's job spec says about links and property defaults; supplied by the caller. */
export interface JobSpec {
  name: string;
  /** When set, the spec applies only to jobs from this release. */
  release?: string;
  provides: Array<{ name: string; type: string; properties?: string[] }>;
  consumes: Array<{ name: string; type: string; optional?: boolean }>;
  /** Property definitions, for the defaults a link's properties fall back to. */
  properties?: Record<string, { default?: unknown; description?: string }>;
}

export interface LinkInstance {
  name: string;
  index: number;
  id?: string;
  /** Null on a dynamic network, whose address the IaaS assigns when the VM exists. */
  address: string | null;
  az: string;
}

export interface LinkData {
  instances: LinkInstance[];
  properties: Record<string, unknown>;
}

/** An instance's addresses, as validate.ts allocated them. */
export interface AddressedInstance {
  index: number;
  id?: string;
  az: string;
  /** Address on each network, by network name. */
  addresses: Record<string, string | null>;
  /** The network that carries the default gateway. */
  default_network: string;
}

interface Provider {
  group: number;
  job: number;
  /** The name consumers use in `from`: the provides `as`, else the link's own name. */
  alias: string;
  type: string;
  properties: Record<string, unknown>;
}

/** Finds the spec of a manifest job: by name, and by release when the spec names one. */
export function findSpec(specs: readonly JobSpec[], job: { name: string; release: string }): JobSpec | undefined {
  return specs.find((s) => s.name === job.name && (s.release === undefined || s.release === job.release));
}

/**
 * Resolves every consumer of every job. Returns, per instance group and job, the link data
 * by consumer name (null for an optional link left unfilled); problems are appended.
 */
export function resolveLinks(
  manifest: Manifest,
  specs: readonly JobSpec[],
  instances: ReadonlyMap<string, readonly AddressedInstance[]>,
  problems: Problem[],
): Map<string, Map<string, Record<string, LinkData | null>>> {
  const at = (path: Array<string | number>, message: string) => problems.push(problemAt(manifest.source, path, message));
  const providers: Provider[] = [];
  const releases = new Set(manifest.releases.map((r) => r.name));
  // A job from an unknown release has no spec to speak of; that problem is reported already.
  const specOf = (job: ManifestJob) => (releases.has(job.release) ? findSpec(specs, job) : undefined);

  manifest.instance_groups.forEach((ig, g) => {
    ig.jobs.forEach((job, j) => {
      const spec = specOf(job);
      if (!spec) return;
      const jobPath = ['instance_groups', manifest.groupIndex[g]!, 'jobs', j];
      for (const key of Object.keys(job.provides)) {
        if (!spec.provides.some((p) => p.name === key)) at([...jobPath, 'provides', key], `job ${job.name} provides no link named ${key} (it provides: ${names(spec.provides)})`);
      }
      for (const key of Object.keys(job.consumes)) {
        if (!spec.consumes.some((c) => c.name === key)) at([...jobPath, 'consumes', key], `job ${job.name} consumes no link named ${key} (it consumes: ${names(spec.consumes)})`);
      }
      const offered = [...spec.provides, ...job.custom_provider_definitions];
      for (const p of offered) {
        const config = job.provides[p.name];
        if (config === null) continue; // `provides: {name: nil}` withdraws the link
        providers.push({
          group: g,
          job: j,
          alias: config?.as ?? p.name,
          type: p.type,
          properties: linkProperties(p.properties ?? [], job, ig.properties, manifest.properties, spec),
        });
      }
    });
  });

  const skippedTypes = new Set(
    manifest.skippedGroups.flatMap((s) => s.jobs.flatMap((job) => specs.filter((spec) => spec.name === job).flatMap((spec) => spec.provides.map((p) => p.type)))),
  );
  const result = new Map<string, Map<string, Record<string, LinkData | null>>>();
  manifest.instance_groups.forEach((ig, g) => {
    const byJob = new Map<string, Record<string, LinkData | null>>();
    result.set(ig.name, byJob);
    ig.jobs.forEach((job, j) => {
      const spec = specOf(job);
      if (!spec) return;
      const links: Record<string, LinkData | null> = {};
      byJob.set(job.name, links);
      for (const c of spec.consumes) {
        const config = job.consumes[c.name];
        const consumer = `${ig.name}/${job.name} consumes ${c.name} (type ${c.type})`;
        const path: Array<string | number> = config === undefined ? ['instance_groups', manifest.groupIndex[g]!, 'jobs', j] : ['instance_groups', manifest.groupIndex[g]!, 'jobs', j, 'consumes', c.name];
        if (config === null) {
          // `consumes: {name: nil}` blocks the link; only an optional one may be left empty.
          if (!c.optional) at(path, `${consumer}: the link is required and cannot be set to nil`);
          links[c.name] = null;
          continue;
        }
        if (config?.deployment !== undefined && config.deployment !== manifest.name) {
          at([...path, 'deployment'], `${consumer}: links from other deployments are not supported yet`);
          continue;
        }
        if (config?.instances !== undefined || config?.address !== undefined) {
          links[c.name] = manualLink(config.instances ?? [{ address: config.address! }], config.properties ?? {}, ig.azs[0] ?? '');
          continue;
        }
        const candidates = providers.filter((p) => p.type === c.type && (config?.from === undefined || p.alias === config.from));
        if (candidates.length === 1) {
          const p = candidates[0]!;
          const group = manifest.instance_groups[p.group]!;
          const network = config?.network;
          if (network !== undefined && !group.networks.some((n) => n.name === network)) {
            at([...path, 'network'], `${consumer}: provider ${group.name} is not on network ${network}`);
          }
          links[c.name] = {
            instances: (instances.get(group.name) ?? []).map((inst) => ({
              name: group.name,
              index: inst.index,
              ...(inst.id === undefined ? {} : { id: inst.id }),
              address: inst.addresses[network ?? inst.default_network] ?? null,
              az: inst.az,
            })),
            properties: p.properties,
          };
          continue;
        }
        if (candidates.length === 0) {
          // A group left out as invalid may hold the provider: its own problem is reported already.
          if (c.optional || skippedTypes.has(c.type)) {
            links[c.name] = null;
            continue;
          }
          const how = config?.from === undefined ? '' : ` named ${config.from}`;
          at(path, `${consumer}: no job in the deployment provides a ${c.type} link${how}`);
          continue;
        }
        const list = candidates.map((p) => `${manifest.instance_groups[p.group]!.name}/${manifest.instance_groups[p.group]!.jobs[p.job]!.name} (${p.alias})`);
        at(path, `${consumer}: ${candidates.length} providers match (${list.join(', ')}); choose one with from:`);
      }
    });
  });
  return result;
}

function manualLink(instances: Array<{ address: string; name?: string; index?: number; az?: string }>, properties: Record<string, unknown>, az: string): LinkData {
  return { instances: instances.map((i, n) => ({ name: i.name ?? 'manual', index: i.index ?? n, address: i.address, az: i.az ?? az })), properties };
}

function names(list: Array<{ name: string }>): string {
  return list.map((l) => l.name).join(', ') || 'none';
}

/**
 * The properties a link shares, nested as in the job's properties (`nats.user` →
 * `{nats: {user}}`): the job's value, else the instance group's, else the legacy global
 * one, else the spec's default. Absent everywhere means absent from the link.
 */
function linkProperties(
  wanted: readonly string[],
  job: ManifestJob,
  groupProperties: Record<string, unknown>,
  globalProperties: Record<string, unknown>,
  spec: JobSpec,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const dotted of wanted) {
    const keys = dotted.split('.');
    let value = dig(job.properties, keys);
    if (value === undefined) value = dig(groupProperties, keys);
    if (value === undefined) value = dig(globalProperties, keys);
    if (value === undefined) value = spec.properties?.[dotted]?.default;
    if (value === undefined) continue;
    setPath(out, keys, value);
  }
  return out;
}

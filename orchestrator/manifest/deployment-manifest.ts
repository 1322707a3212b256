// The BOSH v2 deployment manifest: raw YAML in, a validated and defaulted Manifest out
// (`update` resolved per instance group, watch times and max_in_flight in one shape), so
// nothing downstream re-checks it. Run it after ops files and interpolation: a `((var))`
// where a number belongs is still a string here.
import { z } from 'zod';
import { ManifestError, type Problem } from './errors.ts';
import { checkSchema } from './schema.ts';
import { isPlainMap, problemAt, readYaml, type YamlSource } from './yaml-source.ts';

const name = z.string().min(1, 'expected a non-empty name');
const properties = z.record(z.unknown()).default({});

/** `1000` (ms) or `"1000-30000"`: how long to wait for a job to be running. */
const watchTimeMessage = 'expected milliseconds (30000) or a range ("1000-30000")';
const watchTime = z.union([z.number().int().min(0, watchTimeMessage), z.string().regex(/^\s*\d+\s*(-\s*\d+\s*)?$/, watchTimeMessage)], {
  errorMap: () => ({ message: watchTimeMessage }),
});

/** A number of instances, or a share of the group (`"25%"`). */
const maxInFlightMessage = 'expected a number of instances (2) or a percentage ("25%")';
const maxInFlight = z.union([z.number().int().min(1, maxInFlightMessage), z.string().regex(/^\s*\d+(\.\d+)?\s*%\s*$/, maxInFlightMessage)], {
  errorMap: () => ({ message: maxInFlightMessage }),
});

const updateFields = {
  canaries: z.number().int().min(0),
  max_in_flight: maxInFlight,
  canary_watch_time: watchTime,
  update_watch_time: watchTime,
  serial: z.boolean().optional(),
  vm_strategy: z.enum(['delete-create', 'create-swap-delete']).optional(),
};

// `nil` blocks a link; YAML 1.2 reads the bare word as a string, so both spellings count.
const linkConfig = z.union([
  z.null(),
  z.literal('nil').transform(() => null),
  z
    .object({
      from: z.string().optional(),
      as: z.string().optional(),
      network: z.string().optional(),
      shared: z.boolean().optional(),
      deployment: z.string().optional(),
      /** A manual link: addresses and properties written in the manifest. */
      instances: z.array(z.object({ address: z.string(), name: z.string().optional(), index: z.number().int().optional(), az: z.string().optional() })).optional(),
      properties: z.record(z.unknown()).optional(),
      address: z.string().optional(),
    })
    .strict(),
]);

const job = z
  .object({
    name,
    release: name,
    properties,
    provides: z.record(linkConfig).default({}),
    consumes: z.record(linkConfig).default({}),
    custom_provider_definitions: z
      .array(z.object({ name, type: name, properties: z.array(z.string()).default([]) }).strict())
      .default([]),
  })
  .strict();

const instanceGroup = z
  .object({
    name,
    azs: z.array(name).min(1, 'expected at least one az'),
    instances: z.number().int().min(0, 'expected 0 or more instances'),
    jobs: z.array(job),
    vm_type: name,
    vm_extensions: z.array(name).default([]),
    stemcell: name,
    persistent_disk_type: name.optional(),
    persistent_disk: z.number().int().min(0).optional(),
    networks: z
      .array(
        z
          .object({
            name,
            static_ips: z.array(z.string()).optional(),
            default: z.array(z.enum(['dns', 'gateway', 'addressable'])).optional(),
          })
          .strict(),
      )
      .min(1, 'expected at least one network'),
    lifecycle: z.enum(['service', 'errand']).default('service'),
    update: z.object(updateFields).partial().strict().optional(),
    properties: properties,
    env: properties,
    migrated_from: z.array(z.object({ name, az: z.string().optional() })).optional(),
  })
  .strict();

export const manifestSchema = z
  .object({
    name,
    director_uuid: z.string().optional(),
    releases: z
      .array(
        z
          .object({
            name,
            version: z.union([z.string(), z.number()]).transform(String),
            url: z.string().url().optional(),
            sha1: z.string().optional(),
          })
          .strict(),
      )
      .min(1, 'expected at least one release'),
    stemcells: z
      .array(
        z
          .object({ alias: name, os: z.string().optional(), name: z.string().optional(), version: z.union([z.string(), z.number()]).transform(String) })
          .strict()
          .refine((s) => s.os !== undefined || s.name !== undefined, 'set os (or name)'),
      )
      .min(1, 'expected at least one stemcell'),
    update: z.object(updateFields).strict(),
    instance_groups: z.array(instanceGroup).default([]),
    variables: z
      .array(
        z
          .object({ name, type: z.enum(['password', 'certificate', 'ssh', 'rsa']), options: z.record(z.unknown()).default({}) })
          .strict(),
      )
      .default([]),
    features: z
      .object({
        use_dns_addresses: z.boolean().optional(),
        randomize_az_placement: z.boolean().optional(),
        converge_variables: z.boolean().optional(),
      })
      .passthrough()
      .default({}),
    /** Legacy global properties, read when a job has none of its own. */
    properties,
    tags: z.record(z.string()).default({}),
    addons: z.array(z.unknown()).default([]),
  })
  .strict();

type RawManifest = z.output<typeof manifestSchema>;

export interface WatchTime {
  min_ms: number;
  max_ms: number;
}

export type MaxInFlight = { instances: number } | { percent: number };

export interface UpdatePolicy {
  canaries: number;
  max_in_flight: MaxInFlight;
  canary_watch_time: WatchTime;
  update_watch_time: WatchTime;
  serial: boolean;
  vm_strategy: 'delete-create' | 'create-swap-delete';
}

export type ManifestJob = RawManifest['instance_groups'][number]['jobs'][number];
export type ManifestInstanceGroup = Omit<RawManifest['instance_groups'][number], 'update'> & { update: UpdatePolicy };
export type Manifest = Omit<RawManifest, 'update' | 'instance_groups'> & {
  update: UpdatePolicy;
  instance_groups: ManifestInstanceGroup[];
  /** The document it came from, to name lines in later cross-checks. */
  readonly source: YamlSource;
  /** For each instance group, its index in the document (they differ when invalid groups were left out). */
  readonly groupIndex: number[];
  /** Instance groups left out because they are invalid, with the jobs they name, so later checks do not blame their absence. */
  readonly skippedGroups: Array<{ index: number; jobs: string[] }>;
};

/** Parses and validates a deployment manifest; throws ManifestError listing every problem. */
export function parseManifest(text: string | YamlSource, file?: string): Manifest {
  const { manifest, problems } = readManifest(text, file);
  if (!manifest || problems.length > 0) throw new ManifestError(problems);
  return manifest;
}

const topLevel = manifestSchema.extend({ instance_groups: z.array(z.unknown()).default([]) });

/**
 * Validates what it can: the top level, then each instance group on its own, so that
 * one broken group does not hide the cross-check problems of the others. Returns the
 * manifest without the invalid groups (undefined when the top level itself is invalid).
 */
export function readManifest(text: string | YamlSource, file?: string): { manifest: Manifest | undefined; problems: Problem[] } {
  const source = typeof text === 'string' ? readYaml(text, file ?? 'manifest.yml') : text;
  const top = checkSchema(source, topLevel);
  const problems: Problem[] = top.ok ? [] : [...top.problems];
  const groups: Array<z.output<typeof instanceGroup>> = [];
  const groupIndex: number[] = [];
  const skippedGroups: Array<{ index: number; jobs: string[] }> = [];
  const rawGroups = isPlainMap(source.value) && Array.isArray(source.value.instance_groups) ? source.value.instance_groups : [];
  rawGroups.forEach((_, g) => {
    const checked = checkSchema(source, instanceGroup, ['instance_groups', g]);
    if (checked.ok) {
      groups.push(checked.value);
      groupIndex.push(g);
    } else {
      problems.push(...checked.problems);
      const jobs = (rawGroups[g] as { jobs?: unknown } | null)?.jobs;
      skippedGroups.push({ index: g, jobs: Array.isArray(jobs) ? jobs.flatMap((j) => (isPlainMap(j) && typeof j.name === 'string' ? [j.name] : [])) : [] });
    }
  });
  if (!top.ok) return { manifest: undefined, problems };
  const raw = { ...top.value, instance_groups: groups };
  const at = (path: Array<string | number>, message: string) => problems.push(problemAt(source, path, message));

  const unique = (list: Array<{ name?: string; alias?: string }>, path: Array<string | number>, what: string) => {
    const seen = new Set<string>();
    list.forEach((item, i) => {
      const key = item.alias ?? item.name ?? '';
      if (seen.has(key)) at([...path, i, item.alias === undefined ? 'name' : 'alias'], `${what} ${key} is defined twice`);
      seen.add(key);
    });
  };
  unique(raw.releases, ['releases'], 'release');
  unique(raw.stemcells, ['stemcells'], 'stemcell');
  const seenGroups = new Set<string>();
  raw.instance_groups.forEach((ig, g) => {
    if (seenGroups.has(ig.name)) at(['instance_groups', groupIndex[g]!, 'name'], `instance group ${ig.name} is defined twice`);
    seenGroups.add(ig.name);
  });
  unique(raw.variables, ['variables'], 'variable');
  raw.instance_groups.forEach((ig, i) => {
    const g = groupIndex[i]!;
    unique(ig.jobs, ['instance_groups', g, 'jobs'], 'job');
    if (ig.persistent_disk !== undefined && ig.persistent_disk_type !== undefined) {
      at(['instance_groups', g, 'persistent_disk'], 'set persistent_disk or persistent_disk_type, not both');
    }
    if (ig.networks.length > 1) {
      for (const role of ['dns', 'gateway'] as const) {
        const n = ig.networks.filter((net) => net.default?.includes(role)).length;
        if (n !== 1) at(['instance_groups', g, 'networks'], `with several networks, exactly one must be default for ${role} (found ${n})`);
      }
    }
  });

  const update = resolveUpdate(raw.update);
  const instance_groups = raw.instance_groups.map((ig) => ({ ...ig, update: resolveUpdate({ ...raw.update, ...ig.update }) }));
  raw.instance_groups.forEach((_, i) => {
    const g = groupIndex[i]!;
    const u = instance_groups[i]!.update;
    for (const key of ['canary_watch_time', 'update_watch_time'] as const) {
      if (u[key].min_ms > u[key].max_ms) at(['instance_groups', g, 'update', key], 'the range must go from low to high');
    }
  });
  for (const key of ['canary_watch_time', 'update_watch_time'] as const) {
    if (update[key].min_ms > update[key].max_ms) at(['update', key], 'the range must go from low to high');
  }
  return { manifest: { ...raw, update, instance_groups, source, groupIndex, skippedGroups }, problems };
}

function resolveUpdate(u: z.output<z.ZodObject<typeof updateFields>>): UpdatePolicy {
  return {
    canaries: u.canaries,
    max_in_flight: parseMaxInFlight(u.max_in_flight)!,
    canary_watch_time: parseWatchTime(u.canary_watch_time),
    update_watch_time: parseWatchTime(u.update_watch_time),
    serial: u.serial ?? true,
    vm_strategy: u.vm_strategy ?? 'delete-create',
  };
}

/** A single number is both bounds; a range lets the updater start polling at `min` and give up at `max`. */
export function parseWatchTime(w: number | string): WatchTime {
  if (typeof w === 'number') return { min_ms: w, max_ms: w };
  const [a, b] = w.split('-').map((s) => Number(s.trim()));
  return b === undefined ? { min_ms: a!, max_ms: a! } : { min_ms: a!, max_ms: b };
}

/**
 * `2` or `"25%"` as the manifest's `max_in_flight` reads it; undefined when it is neither. The
 * one parser of the syntax, shared by the manifest, `ingot deploy --max-in-flight` and the
 * director's deploy API (an override must mean exactly what the manifest would).
 */
export function parseMaxInFlight(value: number | string): MaxInFlight | undefined {
  const parsed = maxInFlight.safeParse(typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value);
  if (!parsed.success) return undefined;
  return typeof parsed.data === 'number' ? { instances: parsed.data } : { percent: parseFloat(parsed.data) };
}

/** Instances allowed in flight for a group of `instances`: a percentage rounds down, but at least 1. */
export function inFlight(policy: MaxInFlight, instances: number): number {
  if ('instances' in policy) return policy.instances;
  return Math.max(1, Math.floor((instances * policy.percent) / 100));
}

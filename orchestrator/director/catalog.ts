// The director's catalogue of releases and stemcells, pure: what a deployment's manifest names,
// which uploaded versions the deployments use, which versions `clean-up` removes and which of
// their blobs nothing else references. catalog-removal.ts does the I/O around these.
import { parse as parseYaml } from 'yaml';
import type { ReleaseRecord, StemcellRecord } from './types.ts';

/** How many unused versions of each name `clean-up` keeps without `remove_all` (BOSH keeps 2). */
export const CLEANUP_KEEPS = 2;

export interface ManifestSummary {
  releases: Array<{ name: string; version: string }>;
  stemcells: Array<{ alias?: string; os?: string; name?: string; version: string }>;
}

/** The releases and stemcells a manifest names (versions as text, `latest` kept); none when it does not parse. */
export function manifestSummary(text: string): ManifestSummary {
  try {
    const doc = parseYaml(text) as { releases?: Array<{ name: string; version: unknown }>; stemcells?: Array<{ alias?: string; os?: string; name?: string; version: unknown }> };
    return {
      releases: (doc.releases ?? []).map((r) => ({ name: r.name, version: String(r.version) })),
      stemcells: (doc.stemcells ?? []).map((s) => ({ ...s, version: String(s.version) })),
    };
  } catch {
    return { releases: [], stemcells: [] };
  }
}

/**
 * Newest first. A version's age is its upload order: Ingot's dev versions
 * (`0.1.0+dev.<fingerprints>`) do not order by their text, so the last uploaded is the newest
 * (what `latest` means to a deploy, pickVersion).
 */
export function newestFirst<T extends { id: number }>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => b.id - a.id);
}

/** The uploaded version a manifest's `version` means: that one, or the newest for `latest` (BOSH's). */
export function pickVersion<T extends { id: number; version: string }>(candidates: readonly T[], version: string): T | undefined {
  return version === 'latest' ? newestFirst(candidates)[0] : candidates.find((c) => c.version === version);
}

/** What a deployment is made of, as the store holds it: its manifest and its instances' applied specs. */
export interface DeploymentUse {
  name: string;
  manifest: string;
  /** Each instance's last applied spec (`jobs[].release`/`release_version`, `stemcell.os`/`version`). */
  specs: Array<Record<string, unknown>>;
}

/** Record id → the deployments that use it. */
export interface CatalogUsage {
  releases: Map<number, string[]>;
  stemcells: Map<number, string[]>;
}

/**
 * Which uploaded versions each deployment uses: those its manifest names (`latest` as the deploy
 * resolves it, a stemcell by `os` or `name`) and those its instances still run — a deploy that
 * failed half-way leaves instances on the versions of the manifest before.
 */
export function catalogUsage(deployments: readonly DeploymentUse[], releases: readonly ReleaseRecord[], stemcells: readonly StemcellRecord[]): CatalogUsage {
  const usage: CatalogUsage = { releases: new Map(), stemcells: new Map() };
  const mark = (map: Map<number, string[]>, id: number | undefined, deployment: string): void => {
    if (id === undefined) return;
    const list = map.get(id) ?? [];
    if (!list.includes(deployment)) map.set(id, [...list, deployment]);
  };
  for (const dep of deployments) {
    const m = manifestSummary(dep.manifest);
    for (const r of m.releases) mark(usage.releases, pickVersion(releases.filter((u) => u.name === r.name), r.version)?.id, dep.name);
    for (const s of m.stemcells) {
      const candidates = stemcells.filter((c) => (s.os !== undefined ? c.operating_system === s.os : c.name === s.name));
      mark(usage.stemcells, pickVersion(candidates, s.version)?.id, dep.name);
    }
    for (const spec of dep.specs) {
      const jobs = Array.isArray(spec.jobs) ? (spec.jobs as Array<{ release?: unknown; release_version?: unknown }>) : [];
      for (const j of jobs) mark(usage.releases, releases.find((r) => r.name === j.release && r.version === j.release_version)?.id, dep.name);
      const st = spec.stemcell as { os?: unknown; version?: unknown } | undefined;
      if (st) mark(usage.stemcells, stemcells.find((s) => s.operating_system === st.os && s.version === String(st.version))?.id, dep.name);
    }
  }
  return usage;
}

/**
 * What `clean-up` deletes: the unused versions of each release and stemcell name but the
 * `keep` newest unused ones (BOSH's clean-up); every unused one with `removeAll`.
 */
export function cleanupChoice<R extends { id: number; name: string }, S extends { id: number; name: string }>(
  o: { releases: readonly R[]; stemcells: readonly S[]; usage: CatalogUsage; removeAll: boolean; keep?: number },
): { releases: R[]; stemcells: S[] } {
  const keep = o.removeAll ? 0 : (o.keep ?? CLEANUP_KEEPS);
  const choose = <T extends { id: number; name: string }>(list: readonly T[], used: Map<number, string[]>): T[] => {
    const byName = new Map<string, T[]>();
    for (const item of list) if (!used.get(item.id)?.length) byName.set(item.name, [...(byName.get(item.name) ?? []), item]);
    return [...byName.values()].flatMap((unused) => newestFirst(unused).slice(keep)).sort((a, b) => a.name.localeCompare(b.name) || a.id - b.id);
  };
  return { releases: choose(o.releases, o.usage.releases), stemcells: choose(o.stemcells, o.usage.stemcells) };
}

/** Every blob a release holds: its tarball and each job's and package's. */
export function releaseBlobs(r: ReleaseRecord): string[] {
  return [r.blob_id, ...r.jobs.map((j) => j.blob_id), ...r.packages.map((p) => p.blob_id)].filter((b): b is string => typeof b === 'string');
}

/** Of `candidates`, the blobs no record in `kept` references (blobs are content-addressed: versions share them). */
export function unreferencedBlobs(candidates: Iterable<string>, kept: Iterable<string>): string[] {
  const referenced = new Set(kept);
  return [...new Set(candidates)].filter((b) => !referenced.has(b)).sort();
}

/** `ingot/1 (deployment dd)`, `ingot/1 (deployments a, b)`. */
export function usedBy(label: string, deployments: readonly string[]): string {
  return `${label} (deployment${deployments.length === 1 ? '' : 's'} ${deployments.join(', ')})`;
}

/** The cleanup task's result: `Deleted 3 releases (ingot/0.1.0-a, …), 1 stemcell (…)`. */
export function cleanupResult(deleted: { releases: string[]; stemcells: string[] }): string {
  const part = (n: number, one: string, labels: string[]) => `${n} ${n === 1 ? one : `${one}s`}${labels.length ? ` (${labels.join(', ')})` : ''}`;
  if (deleted.releases.length === 0 && deleted.stemcells.length === 0) return 'Nothing to clean up: no unused releases or stemcells to delete';
  return `Deleted ${part(deleted.releases.length, 'release', deleted.releases)}, ${part(deleted.stemcells.length, 'stemcell', deleted.stemcells)}`;
}

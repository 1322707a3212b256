// The stemcell manifest (stemcell.MF, BOSH's shape) and the description of what the local
// image holds: parsed once at the edge into typed objects, rendered back for the tarball. Pure.

import { isMap, isSeq, parseDocument, stringify, LineCounter, type Document } from 'yaml';
import { z } from 'zod';

export class StemcellManifestError extends Error {
  override readonly name = 'StemcellManifestError';
  readonly code = 'invalid_stemcell_manifest';
  constructor(
    message: string,
    readonly problems: string[],
  ) {
    super(message);
  }
}

export const StemcellManifest = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'expected lowercase letters, digits, ".", "_" and "-"'),
    version: z.union([z.string().min(1), z.number()]).transform(String),
    api_version: z.number().int().positive().default(1),
    bosh_protocol: z.union([z.string(), z.number()]).transform(String).default('1'),
    operating_system: z.string().regex(/^[a-z0-9]+-[0-9.]+$/, 'expected <os>-<version>, e.g. debian-12'),
    stemcell_formats: z.array(z.string().min(1)).nonempty().default(['ingot-local']),
    /** sha1 of the `image` file in the tarball; set by build.ts. */
    sha1: z.string().regex(/^[0-9a-f]{40}$/, 'expected 40 hex digits').optional(),
    cloud_properties: z.record(z.unknown()).default({}),
  })
  .strict();
export type StemcellManifest = z.output<typeof StemcellManifest>;

/** What the local VM image holds: the host's OS, the Node.js runtime, the agent, and the
 *  Debian packages the job specs asked for. Written as `image` in the stemcell tarball. */
export interface ImageDescription {
  os: { id: string; version_id: string; pretty_name: string };
  node: { path: string; version: string };
  agent: { main: string; command: string[] };
  debian_packages: Array<{ name: string; version: string; wanted_by: string[] }>;
}

function lineOf(doc: Document, lines: LineCounter, path: (string | number)[]): number | null {
  let node: unknown = doc.contents;
  for (const key of path) {
    if (isMap(node)) node = node.get(key, true) ?? node;
    else if (isSeq(node) && typeof key === 'number') node = node.get(key, true) ?? node;
    else break;
  }
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? lines.linePos(range[0]).line : null;
}

/** stemcell.MF text → a validated manifest; every problem is reported at once with its line. */
export function parseStemcellManifest(text: string, source = 'stemcell.MF'): StemcellManifest {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  if (doc.errors.length) {
    const problems = doc.errors.map((e) => `${source}:${e.linePos?.[0]?.line ?? '?'} ${e.message.split('\n')[0]}`);
    throw new StemcellManifestError(`Parsing ${source}: ${problems.join('; ')}`, problems);
  }
  const parsed = StemcellManifest.safeParse(doc.toJS() ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => {
    const line = lineOf(doc, lines, i.path);
    return `${source}${line ? `:${line}` : ''} ${i.path.join('.') || '(root)'}: ${i.message}`;
  });
  throw new StemcellManifestError(`Parsing ${source}: ${problems.join('; ')}`, problems);
}

export function renderStemcellManifest(m: StemcellManifest): string {
  const ordered = {
    name: m.name,
    version: m.version,
    api_version: m.api_version,
    bosh_protocol: m.bosh_protocol,
    operating_system: m.operating_system,
    stemcell_formats: m.stemcell_formats,
    ...(m.sha1 ? { sha1: m.sha1 } : {}),
    cloud_properties: m.cloud_properties,
  };
  return stringify(ordered);
}

/** /etc/os-release text → its fields (quotes removed, comments skipped). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!;
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1).replace(/\\(["\\$`])/g, '$1');
    out[m[1]!] = v;
  }
  return out;
}

/** The OS a stemcell claims (`debian-12`) must be the host's, since the local VM shares it. */
export function operatingSystemOf(osRelease: Record<string, string>): string {
  return `${osRelease.ID ?? 'unknown'}-${(osRelease.VERSION_ID ?? '').split('.')[0] || 'unknown'}`;
}

const DebianPackageName = z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, 'expected a Debian package name');
/** The part of a release job's spec the stemcell cares about (other keys are the job's own). */
export const JobSpecPackages = z.object({ name: z.string().optional(), debian_packages: z.array(DebianPackageName).default([]) }).passthrough();

/** Job specs (name → parsed spec) → each Debian package with the jobs that want it, sorted. */
export function collectDebianPackages(specs: Array<{ job: string; spec: unknown; source: string }>): Array<{ name: string; wanted_by: string[] }> {
  const wanted = new Map<string, Set<string>>();
  const problems: string[] = [];
  for (const { job, spec, source } of specs) {
    const parsed = JobSpecPackages.safeParse(spec ?? {});
    if (!parsed.success) {
      for (const i of parsed.error.issues) problems.push(`${source} ${i.path.join('.')}: ${i.message}`);
      continue;
    }
    for (const p of parsed.data.debian_packages) {
      if (!wanted.has(p)) wanted.set(p, new Set());
      wanted.get(p)!.add(job);
    }
  }
  if (problems.length) throw new StemcellManifestError(`Reading job specs: ${problems.join('; ')}`, problems);
  return [...wanted].sort(([a], [b]) => a.localeCompare(b)).map(([name, jobs]) => ({ name, wanted_by: [...jobs].sort() }));
}

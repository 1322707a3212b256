// readRelease: checks a release tarball before the director takes it — release.MF against
// its schema, each job and package member present with the sha1 release.MF gives, nothing
// unlisted, no entry that is a link or climbs out of the archive (in the release and in each
// member), each job's job.MF a valid spec whose templates are all there and whose fingerprint
// matches. Every problem is reported at once, naming the member and the path.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseDocument } from 'yaml';
import { formatPath } from '../../kernel/component/config.ts';
import { ReleaseError } from './errors.ts';
import { JobSpecSchema, type JobSpec } from './job-spec.ts';
import { jobFingerprint } from './jobs.ts';
import { ReleaseManifest, jobMember, packageMember, type ReleaseJob, type ReleasePackage } from './release-manifest.ts';
import { checkTemplates } from './renderer.ts';
import { readTgz, sha1 } from './tarball.ts';

export interface ReleaseArchiveJob extends ReleaseJob {
  spec: JobSpec;
  templates: Record<string, string>;
  tarball: Buffer;
}

export interface ReleaseArchivePackage extends ReleasePackage {
  tarball: Buffer;
}

export interface ReleaseArchive {
  manifest: ReleaseManifest;
  jobs: ReleaseArchiveJob[];
  packages: ReleaseArchivePackage[];
}

/** Reads and checks a release tarball (a path or its bytes); throws a ReleaseError listing every problem. */
export async function readRelease(source: string | Uint8Array, label = typeof source === 'string' ? basename(source) : 'release tarball'): Promise<ReleaseArchive> {
  const problems: string[] = [];
  const data = typeof source === 'string' ? await readFile(source) : source;
  const entries = await readTgz(data, label, problems);
  const members = new Map(entries.map((e) => [e.path, e.data]));

  const mfData = members.get('release.MF');
  if (!mfData) throw new ReleaseError('invalid_release', [...problems, `${label}: has no release.MF`]);
  const doc = parseDocument(mfData.toString('utf8'), { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) throw new ReleaseError('invalid_release', [...problems, `${label}: release.MF: ${doc.errors[0]!.message.split('\n')[0]}`]);
  const parsed = ReleaseManifest.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    throw new ReleaseError('invalid_release', [
      ...problems,
      ...parsed.error.issues.map((i) => `${label}: release.MF${i.path.length > 0 ? ` ${formatPath(i.path)}` : ''}: ${i.code === 'invalid_type' && i.received === 'undefined' ? 'required' : i.message}`),
    ]);
  }
  const manifest = parsed.data;
  const listed = new Set(['release.MF', ...manifest.jobs.map((j) => jobMember(j.name)), ...manifest.packages.map((p) => packageMember(p.name))]);
  for (const path of members.keys()) {
    if (!listed.has(path)) problems.push(`${label}: ${path} is not listed in release.MF`);
  }

  const member = async (path: string, item: { sha1: string }): Promise<Buffer | undefined> => {
    const bytes = members.get(path);
    if (!bytes) {
      problems.push(`${label}: ${path} is listed in release.MF but missing`);
      return undefined;
    }
    const actual = sha1(bytes);
    if (actual !== item.sha1) {
      problems.push(`${label}: ${path}: sha1 mismatch (release.MF says ${item.sha1}, the file has ${actual})`);
      return undefined;
    }
    return bytes;
  };

  const packageNames = new Set(manifest.packages.map((p) => p.name));
  const packages: ReleaseArchivePackage[] = [];
  for (const pkg of manifest.packages) {
    const path = packageMember(pkg.name);
    const bytes = await member(path, pkg);
    if (!bytes) continue;
    const before = problems.length;
    await readTgz(bytes, `${label}: ${path}`, problems);
    if (problems.length === before) packages.push({ ...pkg, tarball: bytes });
  }

  const jobs: ReleaseArchiveJob[] = [];
  for (const job of manifest.jobs) {
    const path = jobMember(job.name);
    const bytes = await member(path, job);
    if (!bytes) continue;
    const at = `${label}: ${path}`;
    const before = problems.length;
    const files = await readTgz(bytes, at, problems);
    if (problems.length > before) continue;
    const jobMf = files.find((f) => f.path === 'job.MF');
    if (!jobMf) {
      problems.push(`${at}: has no job.MF`);
      continue;
    }
    const jdoc = parseDocument(jobMf.data.toString('utf8'), { prettyErrors: false, uniqueKeys: true });
    const spec = jdoc.errors.length > 0 ? undefined : JobSpecSchema.safeParse(jdoc.toJS() ?? {});
    if (!spec?.success) {
      const issues = spec ? spec.error.issues.map((i) => `${formatPath(i.path) || '(top)'}: ${i.message}`) : [jdoc.errors[0]!.message.split('\n')[0]!];
      problems.push(...issues.map((m) => `${at}: job.MF ${m}`));
      continue;
    }
    if (spec.data.name !== job.name) problems.push(`${at}: job.MF names job ${spec.data.name}, release.MF ${job.name}`);
    spec.data.packages.forEach((p, i) => {
      if (!packageNames.has(p)) problems.push(`${at}: job.MF packages[${i}]: ${p} is not in the release`);
    });
    const templates: Record<string, string> = {};
    for (const f of files) {
      if (f.path === 'job.MF') continue;
      const src = f.path.startsWith('templates/') ? f.path.slice('templates/'.length) : undefined;
      if (src === undefined || !Object.hasOwn(spec.data.templates, src)) problems.push(`${at}: ${f.path} is not a template the job names`);
      else templates[src] = f.data.toString('utf8');
    }
    problems.push(...checkTemplates(spec.data, templates, at));
    const fingerprint = jobFingerprint(files.map((f) => ({ path: f.path, data: f.data })));
    if (fingerprint !== job.fingerprint) problems.push(`${at}: fingerprint mismatch (release.MF says ${job.fingerprint}, the contents hash to ${fingerprint})`);
    if (problems.length === before) jobs.push({ ...job, spec: spec.data, templates, tarball: bytes });
  }

  if (problems.length > 0) throw new ReleaseError('invalid_release', problems);
  return { manifest, jobs, packages };
}

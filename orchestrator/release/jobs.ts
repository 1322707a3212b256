// The release's jobs, read from kernel/jobs/<name>/: spec.yml and templates/. Each job's
// files become the tarball's members (job.MF, the normalised spec, and templates/<file>);
// its fingerprint is the hash of exactly those members, so a reader can check it.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { stringify } from 'yaml';
import { ReleaseError } from './errors.ts';
import { JobSpecSchema, parseJobSpec, type JobSpec } from './job-spec.ts';
import { checkTemplates } from './renderer.ts';
import { sha256 } from './tarball.ts';

export interface JobSource {
  name: string;
  spec: JobSpec;
  templates: Record<string, string>;
  /** The tarball's members: job.MF and templates/<file>. */
  files: Array<{ path: string; data: Buffer }>;
  fingerprint: string;
}

/** The members' hash: path and content of each, sorted (the same function the reader uses). */
export function jobFingerprint(files: ReadonlyArray<{ path: string; data: Uint8Array }>): string {
  const lines = [...files]
    .sort((a, b) => (a.path < b.path ? -1 : 1))
    .map((f) => `${f.path}\0${sha256(f.data)}`)
    .join('\n');
  return sha256(`job (1)\n${lines}\n`);
}

export function jobFiles(spec: JobSpec, templates: Readonly<Record<string, string>>): Array<{ path: string; data: Buffer }> {
  return [
    { path: 'job.MF', data: Buffer.from(stringify(JobSpecSchema.parse(spec), { lineWidth: 0 })) },
    ...Object.keys(spec.templates)
      .sort()
      .map((src) => ({ path: `templates/${src}`, data: Buffer.from(templates[src] ?? '') })),
  ];
}

/** Reads every job under jobsDir; throws a ReleaseError listing every problem of every job. */
export function loadJobs(jobsDir: string, repoRoot: string, packages: ReadonlySet<string>): JobSource[] {
  const problems: string[] = [];
  const jobs: JobSource[] = [];
  if (!existsSync(jobsDir)) throw new ReleaseError('invalid_job_spec', [`${jobsDir}: no jobs folder`]);
  for (const dir of readdirSync(jobsDir).sort()) {
    const jobDir = join(jobsDir, dir);
    if (!statSync(jobDir).isDirectory()) continue;
    const specFile = join(jobDir, 'spec.yml');
    const label = relative(repoRoot, specFile);
    if (!existsSync(specFile)) {
      problems.push(`${label}: missing (every folder of kernel/jobs is a job with a spec.yml)`);
      continue;
    }
    let spec: JobSpec;
    try {
      spec = parseJobSpec(readFileSync(specFile, 'utf8'), label);
    } catch (err) {
      if (err instanceof ReleaseError) problems.push(...err.problems);
      else throw err;
      continue;
    }
    const before = problems.length;
    if (spec.name !== dir) problems.push(`${label}: name is ${spec.name}, but the folder is ${dir}`);
    spec.packages.forEach((p, i) => {
      if (!packages.has(p)) problems.push(`${label} packages[${i}]: ${p} is not a package of the release (${[...packages].join(', ')})`);
    });
    const templates: Record<string, string> = {};
    const templatesDir = join(jobDir, 'templates');
    const present = existsSync(templatesDir) ? readdirSync(templatesDir) : [];
    for (const src of Object.keys(spec.templates)) {
      if (present.includes(src)) templates[src] = readFileSync(join(templatesDir, src), 'utf8');
    }
    for (const extra of present.filter((f) => !Object.hasOwn(spec.templates, f))) {
      problems.push(`${relative(repoRoot, join(templatesDir, extra))}: not named in the spec's templates`);
    }
    problems.push(...checkTemplates(spec, templates, `${relative(repoRoot, jobDir)}`));
    if (problems.length > before) continue;
    const files = jobFiles(spec, templates);
    jobs.push({ name: spec.name, spec, templates, files, fingerprint: jobFingerprint(files) });
  }
  if (problems.length > 0) throw new ReleaseError('invalid_job_spec', problems);
  if (jobs.length === 0) throw new ReleaseError('invalid_job_spec', [`${relative(repoRoot, jobsDir) || jobsDir}: no jobs`]);
  return jobs;
}

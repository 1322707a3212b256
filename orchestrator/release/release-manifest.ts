// release.MF: what a release tarball holds. One schema, used by the builder that writes it
// and the reader that checks an uploaded one.
import { z } from 'zod';
import { NamePattern } from './job-spec.ts';

const Name = z.string().regex(NamePattern, 'a name is letters, digits, ".", "_" and "-"');
const Fingerprint = z.string().regex(/^[0-9a-f]{64}$/, 'a fingerprint is 64 hex digits (sha256)');
const Sha1 = z.string().regex(/^[0-9a-f]{40}$/, 'a sha1 is 40 hex digits');
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.+_-]*$/;
const Version = z.union([z.string().min(1), z.number().transform(String)]).pipe(z.string().regex(VERSION_PATTERN, 'a version is letters, digits, ".", "+", "_" and "-"'));

export const ReleaseJob = z.object({ name: Name, version: Version, fingerprint: Fingerprint, sha1: Sha1 }).strict();
export const ReleasePackage = z
  .object({ name: Name, version: Version, fingerprint: Fingerprint, sha1: Sha1, dependencies: z.array(Name).default([]) })
  .strict();

export const ReleaseManifest = z
  .object({
    name: Name,
    version: Version,
    commit_hash: z.string().min(1),
    uncommitted_changes: z.boolean().default(false),
    jobs: z.array(ReleaseJob),
    packages: z.array(ReleasePackage),
  })
  .strict()
  .superRefine((mf, ctx) => {
    for (const key of ['jobs', 'packages'] as const) {
      const seen = new Set<string>();
      mf[key].forEach((item, i) => {
        if (seen.has(item.name)) ctx.addIssue({ code: 'custom', path: [key, i, 'name'], message: `${item.name} is listed twice` });
        seen.add(item.name);
      });
    }
    const packages = new Set(mf.packages.map((p) => p.name));
    mf.packages.forEach((p, i) =>
      p.dependencies.forEach((d, j) => {
        if (!packages.has(d)) ctx.addIssue({ code: 'custom', path: ['packages', i, 'dependencies', j], message: `package ${d} is not in the release` });
      }),
    );
  });

export type ReleaseManifest = z.output<typeof ReleaseManifest>;
export type ReleaseJob = z.output<typeof ReleaseJob>;
export type ReleasePackage = z.output<typeof ReleasePackage>;

/** The name of a job's member in the tarball, and of a package's. */
export const jobMember = (name: string) => `jobs/${name}.tgz`;
export const packageMember = (name: string) => `packages/${name}.tgz`;

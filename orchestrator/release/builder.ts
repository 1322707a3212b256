// createRelease: builds the release tarball from this repository — release.MF, jobs/<name>.tgz
// and packages/<name>.tgz, BOSH's layout. Fingerprints are content hashes computed before
// anything is built; built tarballs are cached under <outDir>/.cache by fingerprint, so a
// rebuild of an unchanged tree compiles nothing and yields the same fingerprints and sha1s.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { doing, ReleaseError } from './errors.ts';
import { loadJobs } from './jobs.ts';
import { ingotPackage, natsServerPackage, type PackageSource } from './packages.ts';
import { ReleaseManifest, VERSION_PATTERN, jobMember, packageMember } from './release-manifest.ts';
import { listFiles, sha1, sha256, tarFiles, tarMemory } from './tarball.ts';

export const RELEASE_NAME = 'ingot';

export interface CreateReleaseOptions {
  repoRoot: string;
  outDir: string;
  /** Default: <package.json version>+dev.<12 hex digits of the fingerprints>, the same for the same tree. */
  version?: string;
  /** Progress lines ("Building package ingot"), for the CLI. */
  onProgress?: (line: string) => void;
}

export interface BuiltItem {
  name: string;
  version: string;
  fingerprint: string;
  sha1: string;
  /** Whether the tarball came from the cache. */
  cached: boolean;
}

export interface CreatedRelease {
  name: string;
  version: string;
  commit_hash: string;
  uncommitted_changes: boolean;
  /** The release tarball. */
  tarball: string;
  jobs: BuiltItem[];
  packages: Array<BuiltItem & { dependencies: string[] }>;
}

export async function createRelease(options: CreateReleaseOptions): Promise<CreatedRelease> {
  const repoRoot = resolve(options.repoRoot);
  const outDir = resolve(options.outDir);
  const progress = options.onProgress ?? (() => {});
  if (options.version !== undefined && !VERSION_PATTERN.test(options.version)) {
    throw new ReleaseError('build_failed', [`version ${JSON.stringify(options.version)}: a version is letters, digits, ".", "+", "_" and "-", starting with a letter or digit`]);
  }
  const cache = join(outDir, '.cache');
  mkdirSync(cache, { recursive: true });

  const packages: PackageSource[] = await doing('Reading the packages', async () => [await ingotPackage(repoRoot, options.version), natsServerPackage()]);
  const jobs = loadJobs(join(repoRoot, 'kernel', 'jobs'), repoRoot, new Set(packages.map((p) => p.name)));

  const builtPackages: CreatedRelease['packages'] = [];
  const blobs = new Map<string, string>(); // member → cached file
  for (const pkg of packages) {
    const file = join(cache, 'packages', pkg.name, `${pkg.fingerprint}.tgz`);
    const cached = existsSync(file);
    if (!cached) {
      progress(`Building package ${pkg.name}`);
      await doing(`Building package ${pkg.name}`, async () => {
        const stage = join(cache, 'tmp', `${pkg.name}-${process.pid}-${Date.now()}`);
        rmSync(stage, { recursive: true, force: true });
        mkdirSync(stage, { recursive: true });
        try {
          await pkg.build(stage);
          writeAtomically(file, await tarFiles(stage, listFiles(stage).map((f) => f.path)));
        } finally {
          rmSync(stage, { recursive: true, force: true });
        }
      });
    } else progress(`Package ${pkg.name} unchanged (${pkg.fingerprint.slice(0, 12)})`);
    pruneCache(join(cache, 'packages', pkg.name), file);
    builtPackages.push({ name: pkg.name, version: pkg.fingerprint, fingerprint: pkg.fingerprint, sha1: sha1(readFileSync(file)), dependencies: pkg.dependencies, cached });
    blobs.set(packageMember(pkg.name), file);
  }

  const builtJobs: BuiltItem[] = [];
  for (const job of jobs) {
    const file = join(cache, 'jobs', job.name, `${job.fingerprint}.tgz`);
    const cached = existsSync(file);
    if (!cached) {
      await doing(`Building job ${job.name}`, async () => writeAtomically(file, tarMemory(job.files)));
    }
    builtJobs.push({ name: job.name, version: job.fingerprint, fingerprint: job.fingerprint, sha1: sha1(readFileSync(file)), cached });
    blobs.set(jobMember(job.name), file);
  }

  const pkgJson = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version?: string };
  const combined = sha256([...builtJobs, ...builtPackages].map((i) => `${i.name} ${i.fingerprint}`).join('\n'));
  const version = options.version ?? `${pkgJson.version ?? '0'}+dev.${combined.slice(0, 12)}`;
  const git = gitState(repoRoot);
  const manifest = ReleaseManifest.parse({
    name: RELEASE_NAME,
    version,
    commit_hash: git.commit,
    uncommitted_changes: git.dirty,
    jobs: builtJobs.map(({ cached: _, ...j }) => j),
    packages: builtPackages.map(({ cached: _, ...p }) => p),
  });

  progress(`Writing release ${RELEASE_NAME}/${manifest.version}`);
  const tarball = join(outDir, `${RELEASE_NAME}-${manifest.version}.tgz`);
  await doing(`Writing ${tarball}`, async () => {
    const stage = join(cache, 'tmp', `release-${process.pid}-${Date.now()}`);
    try {
      mkdirSync(join(stage, 'jobs'), { recursive: true });
      mkdirSync(join(stage, 'packages'), { recursive: true });
      writeFileSync(join(stage, 'release.MF'), stringify(manifest, { lineWidth: 0 }));
      for (const [member, file] of blobs) writeFileSync(join(stage, member), readFileSync(file));
      writeAtomically(tarball, await tarFiles(stage, ['release.MF', ...blobs.keys()]));
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
  });
  return { name: manifest.name, version: manifest.version, commit_hash: manifest.commit_hash, uncommitted_changes: manifest.uncommitted_changes, tarball, jobs: builtJobs, packages: builtPackages };
}

function writeAtomically(file: string, data: Uint8Array): void {
  mkdirSync(join(file, '..'), { recursive: true });
  const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/** Keeps the cache from growing without end: the tarball just used and the few newest others. */
const CACHE_KEEP = 3;
function pruneCache(dir: string, current: string): void {
  const others = readdirSync(dir)
    .filter((f) => f.endsWith('.tgz') && join(dir, f) !== current)
    .map((f) => ({ path: join(dir, f), mtime: statSync(join(dir, f)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const old of others.slice(CACHE_KEEP - 1)) rmSync(old.path, { force: true });
}

function gitState(repoRoot: string): { commit: string; dirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = execFileSync('git', ['status', '--porcelain'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { commit: commit || 'unknown', dirty: status.trim() !== '' };
  } catch {
    return { commit: 'unknown', dirty: true };
  }
}

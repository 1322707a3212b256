// Release commands of the operator CLI: `ingot create-release` builds the release tarball of
// this checkout (orchestrator/release). For the lead to wire in cli/main.ts with
// `registerReleaseCommands(cli)`.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { createRelease, ReleaseError, RenderError, type CreatedRelease } from '../release/mod.ts';

/** The checkout to build from: the nearest folder upwards holding Ingot's package.json and kernel/jobs. */
export function findRepoRoot(from: string): string | undefined {
  let dir = resolve(from);
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && existsSync(join(dir, 'kernel', 'jobs'))) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'ingot') return dir;
      } catch {
        // not Ingot's package.json; keep looking upwards
      }
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

export function formatRelease(r: CreatedRelease): string {
  const width = Math.max(...[...r.jobs, ...r.packages].map((i) => i.name.length), 'Package'.length) + 2;
  const rows = (title: string, items: CreatedRelease['jobs']) => [
    `${title.padEnd(width)}Fingerprint`,
    ...items.map((i) => `${i.name.padEnd(width)}${i.fingerprint}${i.cached ? '' : '  (new)'}`),
  ];
  return [
    `Name         ${r.name}`,
    `Version      ${r.version}`,
    `Commit hash  ${r.commit_hash}${r.uncommitted_changes ? '+' : ''}`,
    `Tarball      ${r.tarball}`,
    '',
    ...rows('Job', r.jobs),
    '',
    ...rows('Package', r.packages),
  ].join('\n');
}

export function registerReleaseCommands(y: Argv): Argv {
  return y.command(
    'create-release',
    'Build a release tarball (jobs and packages, fingerprinted) from this checkout',
    (c) =>
      c
        .option('dir', { type: 'string', describe: 'Where the tarball (and the build cache) go; default: <checkout>/.ingot-run/releases' })
        .option('version', { type: 'string', describe: 'The release version; default: <package version>+dev.<fingerprints>' })
        .option('json', { type: 'boolean', default: false, describe: 'Print JSON' }),
    async (args) => {
      const repoRoot = findRepoRoot(process.cwd());
      try {
        if (!repoRoot) throw new ReleaseError('build_failed', [`${process.cwd()} is not inside an Ingot checkout (no package.json of ingot with kernel/jobs above it)`]);
        const outDir = args.dir === undefined ? join(repoRoot, '.ingot-run', 'releases') : resolve(args.dir);
        const release = await createRelease({
          repoRoot,
          outDir,
          ...(args.version === undefined ? {} : { version: args.version }),
          ...(args.json ? {} : { onProgress: (line: string) => process.stderr.write(`${line}\n`) }),
        });
        process.stdout.write(`${args.json ? JSON.stringify(release) : formatRelease(release)}\n`);
      } catch (err) {
        if (!(err instanceof ReleaseError || err instanceof RenderError)) throw err;
        process.stderr.write(`ingot: create-release: ${err.problems.join('; ')}\n`);
        process.exitCode = 1;
      }
    },
  );
}

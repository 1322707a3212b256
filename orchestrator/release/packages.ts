// The release's packages, built from this machine: `ingot` (the repository's TypeScript
// compiled to JavaScript, with its production node_modules and a bin wrapper, so a VM runs
// `ingot component …` with plain node) and `nats-server` (the binary of Debian's package).
// Each has a fingerprint computed from its inputs alone, before anything is built, so an
// unchanged tree is recognised and its cached tarball reused.
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { listFiles, sha256, treeFingerprint, type FileEntry } from './tarball.ts';

export interface PackageSource {
  name: string;
  dependencies: string[];
  /** sha256 of everything the package is built from. */
  fingerprint: string;
  /** Builds the package's files into an empty directory (what the agent unpacks at <root>/packages/<name>). */
  build(dir: string): Promise<void>;
}

/** Folders of the repository that the ingot package compiles; kernel/jobs is the release's jobs, not code. */
const SOURCE_ROOTS = ['cli', 'kernel', 'orchestrator', 'stemcells'];
const SKIPPED = new Set(['kernel/jobs']);

interface LockFile {
  packages?: Record<string, { version?: string; integrity?: string; dev?: boolean; link?: boolean; resolved?: string }>;
}

/** The production packages at the top of node_modules, from package-lock.json (what `npm ci --omit=dev` installs). */
export function productionModules(repoRoot: string): Array<{ path: string; version: string; integrity: string }> {
  const lockFile = join(repoRoot, 'package-lock.json');
  const lock = JSON.parse(readFileSync(lockFile, 'utf8')) as LockFile;
  return Object.entries(lock.packages ?? {})
    .filter(([key, v]) => key.startsWith('node_modules/') && !v.dev && !v.link && !key.slice('node_modules/'.length).includes('node_modules/'))
    .map(([key, v]) => ({ path: key, version: v.version ?? '', integrity: v.integrity ?? v.resolved ?? '' }))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
}

function sourceFiles(repoRoot: string): FileEntry[] {
  const files: FileEntry[] = [];
  for (const root of SOURCE_ROOTS) {
    const skip = new Set([...SKIPPED].filter((s) => s.startsWith(`${root}/`)).map((s) => s.slice(root.length + 1)));
    for (const f of listFiles(join(repoRoot, root), skip)) {
      if (f.path.split('/').some((s) => s.startsWith('.') || s === 'node_modules')) continue;
      files.push({ ...f, path: `${root}/${f.path}` });
    }
  }
  files.push({ path: 'bin/ingot.js', executable: true }, { path: 'package.json', executable: false });
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function esbuildModule(): Promise<typeof import('esbuild')> {
  return import('esbuild');
}

/**
 * The `ingot` package. A release version given explicitly (`create-release --version V`) is
 * stamped into the package's package.json, which components report in /varz: a new release
 * of an unchanged tree is then a new package, and a deploy of it rolls every kernel job — what
 * an operator shipping "V" expects. The default dev version is derived from the fingerprints,
 * so it cannot be part of them, and the checkout's own version stays.
 */
export async function ingotPackage(repoRoot: string, releaseVersion?: string): Promise<PackageSource> {
  const files = sourceFiles(repoRoot);
  const modules = productionModules(repoRoot);
  const esbuild = await esbuildModule();
  const fingerprint = treeFingerprint(repoRoot, files, [
    'package ingot (1)',
    `esbuild ${esbuild.version}`,
    `node-abi ${process.versions.modules} ${process.platform}-${process.arch}`,
    ...modules.map((m) => `${m.path}@${m.version} ${m.integrity}`),
    ...(releaseVersion === undefined ? [] : [`release version ${releaseVersion}`]),
  ]);
  return {
    name: 'ingot',
    dependencies: [],
    fingerprint,
    build: async (dir) => {
      const ts = files.filter((f) => f.path.endsWith('.ts') && !f.path.endsWith('.d.ts')).map((f) => join(repoRoot, f.path));
      // Each module compiled on its own, its relative imports rewritten .ts → .js (what tsc's
      // rewriteRelativeImportExtensions does), every import left external: the tree keeps its
      // layout, which code relying on import.meta.url (router workers, buildpacks) needs.
      const result = await esbuild.build({
        absWorkingDir: repoRoot,
        entryPoints: ts,
        outdir: dir,
        outbase: repoRoot,
        bundle: true,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        logLevel: 'silent',
        tsconfig: join(repoRoot, 'tsconfig.json'),
        plugins: [
          {
            name: 'ingot-external-imports',
            setup(build) {
              build.onResolve({ filter: /.*/ }, (args) => {
                if (args.kind === 'entry-point') return undefined;
                const path = args.path.startsWith('.') ? args.path.replace(/\.(m?)ts$/, '.$1js') : args.path;
                return { path, external: true };
              });
            },
          },
        ],
      });
      if (result.errors.length > 0) throw new Error(result.errors.map((e) => `${e.location?.file ?? ''}:${e.location?.line ?? ''} ${e.text}`).join('; '));
      for (const f of files) {
        if (f.path.endsWith('.ts')) continue;
        mkdirSync(dirname(join(dir, f.path)), { recursive: true });
        copyFileSync(join(repoRoot, f.path), join(dir, f.path));
        if (f.executable) chmodSync(join(dir, f.path), 0o755);
      }
      if (releaseVersion !== undefined) {
        const pkgJson = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
        writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ ...pkgJson, version: releaseVersion }, null, 2)}\n`);
      }
      for (const m of modules) {
        const src = join(repoRoot, m.path);
        if (!existsSync(src)) throw new Error(`${m.path} is in package-lock.json but not installed; run npm ci`);
        cpSync(src, join(dir, m.path), { recursive: true, dereference: true, filter: (p) => keepModuleFile(relative(src, p).split(sep).join('/'), m.path) });
      }
      mkdirSync(join(dir, 'bin'), { recursive: true });
      // The executable jobs name: plain node runs the compiled CLI, whichever directory it is called from.
      writeFileSync(join(dir, 'bin', 'ingot'), '#!/bin/sh\n# ingot from a release package: the compiled CLI on the node of the stemcell.\nhere=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)\nexec "${INGOT_NODE:-node}" "$here/ingot.js" "$@"\n', { mode: 0o755 });
    },
  };
}

/** Leaves out what only a build needs: .bin links, and better-sqlite3's C sources and objects (its .node addon stays). */
function keepModuleFile(rel: string, modulePath: string): boolean {
  if (rel === '') return true;
  if (rel === '.bin' || rel.startsWith('.bin/') || rel.includes('/.bin')) return false;
  if (modulePath === 'node_modules/better-sqlite3') {
    if (rel === 'deps' || rel.startsWith('deps/') || rel === 'src' || rel.startsWith('src/')) return false;
    if (rel === 'build' || rel === 'build/Release') return true;
    if (rel.startsWith('build/')) return /^build\/Release\/[^/]+\.node$/.test(rel);
  }
  return true;
}

const NATS_SERVER_PATHS = ['/usr/sbin/nats-server', '/usr/bin/nats-server'];

export function natsServerBinary(): string {
  const found = NATS_SERVER_PATHS.find((p) => existsSync(p));
  if (!found) throw new Error(`nats-server is not installed (looked at ${NATS_SERVER_PATHS.join(', ')}); apt-get install -y nats-server`);
  return found;
}

export function natsServerPackage(): PackageSource {
  const binary = natsServerBinary();
  const fingerprint = sha256(`package nats-server (1)\nbin/nats-server\0x\0${sha256(readFileSync(binary))}\n`);
  return {
    name: 'nats-server',
    dependencies: [],
    fingerprint,
    build: async (dir) => {
      mkdirSync(join(dir, 'bin'), { recursive: true });
      copyFileSync(binary, join(dir, 'bin', 'nats-server'));
      chmodSync(join(dir, 'bin', 'nats-server'), 0o755);
    },
  };
}

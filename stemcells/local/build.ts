// Builds the local stemcell tarball: stemcell.MF (with the image's sha1) and `image`, a
// description of what every local VM sees — the host's OS, the Node.js runtime, the agent, and
// the Debian packages the job specs list. Missing packages are installed (apt-get, on the host:
// DESIGN.md §4) only when --install is given; otherwise the build stops and names them.
//
//   node --import tsx stemcells/local/build.ts [--out FILE] [--jobs DIR]... [--install]

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import * as tar from 'tar';
import { parse as parseYaml } from 'yaml';
import {
  collectDebianPackages,
  operatingSystemOf,
  parseOsRelease,
  parseStemcellManifest,
  renderStemcellManifest,
  StemcellManifestError,
  type ImageDescription,
} from './manifest.ts';

const execFileP = promisify(execFile);
const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(HERE, '..', '..');
export const MANIFEST_FILE = join(HERE, 'stemcell.MF');
export const AGENT_MAIN = join(ROOT, 'orchestrator/agent/main.ts');

export interface BuildOptions {
  out: string;
  /** Release job directories: each `<dir>/<job>/spec` (YAML) or `spec.json` is read. */
  jobDirs: string[];
  install: boolean;
  manifestFile?: string;
  osReleaseFile?: string;
  log?: (line: string) => void;
}

async function readJobSpecs(dirs: string[]): Promise<Array<{ job: string; spec: unknown; source: string }>> {
  const specs: Array<{ job: string; spec: unknown; source: string }> = [];
  for (const dir of dirs) {
    const entries = await readdir(dir, { withFileTypes: true }).catch((err: Error) => {
      throw new StemcellManifestError(`Reading job directory ${dir}: ${err.message}`, [err.message]);
    });
    for (const e of entries.filter((x) => x.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
      for (const file of ['spec', 'spec.yml', 'spec.json']) {
        const source = join(dir, e.name, file);
        const text = await readFile(source, 'utf8').catch(() => null);
        if (text === null) continue;
        specs.push({ job: e.name, spec: parseYaml(text) as unknown, source });
        break;
      }
    }
  }
  return specs;
}

/** name → installed version, for the packages dpkg knows as installed. */
async function installedVersions(names: string[]): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const name of names) {
    const r = await execFileP('dpkg-query', ['-W', '-f', '${db:Status-Status}\t${Version}', name]).catch(() => null);
    const [status, version] = (r?.stdout ?? '').split('\t');
    if (status === 'installed' && version) found.set(name, version);
  }
  return found;
}

export async function describeImage(opts: { jobDirs: string[]; install: boolean; osReleaseFile?: string; log?: (l: string) => void }): Promise<ImageDescription> {
  const osRelease = parseOsRelease(await readFile(opts.osReleaseFile ?? '/etc/os-release', 'utf8'));
  const wanted = collectDebianPackages(await readJobSpecs(opts.jobDirs));
  let versions = await installedVersions(wanted.map((p) => p.name));
  const missing = wanted.filter((p) => !versions.has(p.name)).map((p) => p.name);
  if (missing.length && !opts.install) {
    throw new StemcellManifestError(`Debian packages the jobs need are not installed on this host: ${missing.join(', ')} (build with --install to apt-get them)`, missing);
  }
  if (missing.length) {
    opts.log?.(`Installing ${missing.join(', ')} with apt-get`);
    await execFileP('apt-get', ['install', '-y', '--no-install-recommends', ...missing], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      maxBuffer: 64 * 1024 * 1024,
    }).catch((err: Error & { stderr?: string }) => {
      throw new StemcellManifestError(`Installing ${missing.join(', ')}: ${(err.stderr ?? err.message).trim().split('\n').slice(-3).join(' ')}`, missing);
    });
    versions = await installedVersions(wanted.map((p) => p.name));
  }
  return {
    os: { id: osRelease.ID ?? 'unknown', version_id: osRelease.VERSION_ID ?? 'unknown', pretty_name: osRelease.PRETTY_NAME ?? '' },
    node: { path: process.execPath, version: process.version },
    agent: { main: AGENT_MAIN, command: [process.execPath, '--import', 'tsx', AGENT_MAIN, '--settings', '/var/vcap/bosh/settings.json'] },
    debian_packages: wanted.map((p) => ({ name: p.name, version: versions.get(p.name) ?? 'unknown', wanted_by: p.wanted_by })),
  };
}

/** Writes the tarball (stemcell.MF + image) and returns the manifest as written. */
export async function buildStemcell(opts: BuildOptions) {
  const manifestFile = opts.manifestFile ?? MANIFEST_FILE;
  const manifest = parseStemcellManifest(await readFile(manifestFile, 'utf8'), manifestFile);
  const image = await describeImage(opts);
  const hostOs = operatingSystemOf({ ID: image.os.id, VERSION_ID: image.os.version_id });
  if (hostOs !== manifest.operating_system) {
    throw new StemcellManifestError(`Building ${manifest.name}: the manifest says ${manifest.operating_system} but this host runs ${hostOs}, which the local VMs share`, [hostOs]);
  }
  const imageText = JSON.stringify(image, null, 2) + '\n';
  const written = { ...manifest, sha1: createHash('sha1').update(imageText).digest('hex') };
  const staging = await mkdtemp(join(tmpdir(), 'ingot-stemcell-'));
  try {
    await writeFile(join(staging, 'image'), imageText);
    await writeFile(join(staging, 'stemcell.MF'), renderStemcellManifest(written));
    await tar.c({ gzip: true, cwd: staging, portable: true, file: opts.out }, ['stemcell.MF', 'image']);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return { manifest: written, image };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, jobs: { type: 'string', multiple: true }, install: { type: 'boolean', default: false } },
  });
  const out = values.out ?? 'ingot-local-bookworm.tgz';
  buildStemcell({ out, jobDirs: values.jobs ?? [], install: values.install ?? false, log: (l) => process.stderr.write(`${l}\n`) }).then(
    ({ manifest, image }) => {
      process.stdout.write(`${out}: ${manifest.name}/${manifest.version} (${manifest.operating_system}, node ${image.node.version}, ${image.debian_packages.length} Debian packages)\n`);
    },
    (err: unknown) => {
      process.stderr.write(`stemcell build: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}

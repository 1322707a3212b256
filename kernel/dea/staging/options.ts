// The stager's options: raw input in, a validated and defaulted object out. Nothing downstream
// re-checks them. Every problem is reported at once, each naming its option.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProcessSandbox } from './sandbox.ts';
import type { ArchiveLimits, CompiledStagerOptions, StagerOptions } from './types.ts';

export const DEFAULT_BUILDPACK_ORDER = ['nodejs', 'python', 'java', 'staticfile', 'binary'];

const MiB = 1024 * 1024;

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = {
  maxPackageBytes: 1024 * MiB,
  maxEntries: 100_000,
  maxUnpackedBytes: 4096 * MiB,
  maxRatio: 200,
  ratioFloorBytes: MiB,
};

/** Where the system's commands live; the buildpacks' runtimes (node, python3, java) are found here. */
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function compileStagerOptions(raw: StagerOptions): CompiledStagerOptions {
  const problems: string[] = [];
  const positive = (name: string, v: number | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!Number.isFinite(v) || v <= 0) problems.push(`${name}: expected a positive number, got ${v}`);
    return v;
  };
  const url = (name: string, v: string | undefined): string | undefined => {
    if (v === undefined) return undefined;
    try {
      const u = new URL(v);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') problems.push(`${name}: expected an http(s) URL, got ${v}`);
    } catch {
      problems.push(`${name}: expected a URL, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const absolute = (name: string, v: string | undefined): void => {
    if (v !== undefined && !isAbsolute(v)) problems.push(`${name}: expected an absolute path, got ${JSON.stringify(v)}`);
  };

  absolute('workDir', raw.workDir);
  absolute('buildpacksDir', raw.buildpacksDir);
  absolute('appCacheDir', raw.appCacheDir);
  const a = raw.archive ?? {};
  const archive: ArchiveLimits = {
    maxPackageBytes: positive('archive.maxPackageBytes', a.maxPackageBytes, DEFAULT_ARCHIVE_LIMITS.maxPackageBytes),
    maxEntries: positive('archive.maxEntries', a.maxEntries, DEFAULT_ARCHIVE_LIMITS.maxEntries),
    maxUnpackedBytes: positive('archive.maxUnpackedBytes', a.maxUnpackedBytes, DEFAULT_ARCHIVE_LIMITS.maxUnpackedBytes),
    maxRatio: positive('archive.maxRatio', a.maxRatio, DEFAULT_ARCHIVE_LIMITS.maxRatio),
    ratioFloorBytes: positive('archive.ratioFloorBytes', a.ratioFloorBytes, DEFAULT_ARCHIVE_LIMITS.ratioFloorBytes),
  };
  const order = raw.buildpackOrder ?? DEFAULT_BUILDPACK_ORDER;
  for (const name of order) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) problems.push(`buildpackOrder: ${JSON.stringify(name)} is not a buildpack name`);
  }
  if (raw.uploadMethod !== undefined && raw.uploadMethod !== 'PUT' && raw.uploadMethod !== 'POST') {
    problems.push(`uploadMethod: expected PUT or POST, got ${JSON.stringify(raw.uploadMethod)}`);
  }
  const compiled: CompiledStagerOptions = {
    workDir: raw.workDir,
    sandbox: raw.sandbox ?? ProcessSandbox.factory(),
    timeoutMs: positive('timeoutMs', raw.timeoutMs, 15 * 60_000),
    memoryMb: positive('memoryMb', raw.memoryMb, 1024),
    diskMb: positive('diskMb', raw.diskMb, 4096),
    stack: raw.stack ?? 'bookworm',
    npmRegistry: url('npmRegistry', raw.npmRegistry),
    proxy: url('proxy', raw.proxy),
    buildpacksDir: raw.buildpacksDir ?? builtinBuildpacksDir(),
    buildpackOrder: order,
    allowLocalBuildpacks: raw.allowLocalBuildpacks ?? false,
    appCacheDir: raw.appCacheDir,
    path: raw.path ?? defaultPath(),
    git: raw.git ?? 'git',
    uploadMethod: raw.uploadMethod ?? 'PUT',
    transferAttempts: Math.floor(positive('transferAttempts', raw.transferAttempts, 3)),
    archive,
    keepWorkspace: raw.keepWorkspace ?? false,
  };
  if (problems.length > 0) throw new TypeError(`Invalid stager options: ${problems.join('; ')}`);
  return compiled;
}

/**
 * kernel/buildpacks next to this module. Compiled code runs from dist/kernel/dea/staging, where
 * tsc copies no scripts, so the source tree's folder is the fallback.
 */
export function builtinBuildpacksDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '../../buildpacks'), join(here, '../../../../kernel/buildpacks')];
  return candidates.find((d) => existsSync(join(d, 'nodejs/bin/detect'))) ?? candidates[0]!;
}

/** The system PATH with this Node's directory first, so buildpacks find the node the DEA runs on. */
function defaultPath(): string {
  const nodeDir = dirname(process.execPath);
  const dirs = SYSTEM_PATH.split(':');
  return dirs.includes(nodeDir) ? SYSTEM_PATH : `${nodeDir}:${SYSTEM_PATH}`;
}

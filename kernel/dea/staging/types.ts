// Public shapes of staging: the stager's options as a caller writes them, the compiled form
// the rest of the module trusts, the job (a staging request with the fields staging reads),
// buildpacks, and what a staging returns.
import { z } from 'zod';
import { stagingRequest } from '../../bus/mod.ts';
import type { SandboxFactory } from './sandbox.ts';

export type LogStream = 'out' | 'err';
/** Receives every staging log line as it is produced (the DEA publishes them on logs.<app_id>, source STG). */
export type OnLog = (line: string, stream: LogStream) => void;

/**
 * A staging request as the stager reads it. `command` (the user's start command) and
 * `package_sha256` are not in the bus schema yet; they arrive as passthrough fields.
 */
export const stagingJob = stagingRequest.extend({
  command: z.string().min(1).max(4096).optional(),
  package_sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/i, 'expected 64 hex digits')
    .optional(),
});
export type StagingJob = z.infer<typeof stagingJob>;

export interface ArchiveLimits {
  /** Largest package download. */
  maxPackageBytes: number;
  /** Most entries (files, dirs, links) a package may hold. */
  maxEntries: number;
  /** Most bytes a package may unpack to (further capped by the request's disk_mb). */
  maxUnpackedBytes: number;
  /** Highest uncompressed/compressed ratio of an entry larger than ratioFloorBytes. */
  maxRatio: number;
  /** Entries smaller than this are not ratio-checked: small files of repeated bytes compress very well. */
  ratioFloorBytes: number;
}

export interface StagerOptions {
  /** Host directory under which each staging gets its own workspace, removed when it ends. */
  workDir: string;
  /** Runs buildpack commands. Default: ProcessSandbox.factory() (plain child processes). */
  sandbox?: SandboxFactory;
  /** Whole staging, download to upload. Default 15 minutes. */
  timeoutMs?: number;
  /** Memory for buildpack commands; at least the app's own. Default 1024. */
  memoryMb?: number;
  /** Disk staging may fill; the package unpacks to at most this. Default 4096. */
  diskMb?: number;
  /** CF_STACK when the request names none. Default 'bookworm'. */
  stack?: string;
  /** npm registry handed to buildpacks as npm_config_registry. */
  npmRegistry?: string;
  /** Forward proxy handed to buildpacks as npm_config_proxy, npm_config_https_proxy, http(s)_proxy. */
  proxy?: string;
  /** Directory holding one folder per buildpack. Default: the built-in kernel/buildpacks. */
  buildpacksDir?: string;
  /** Detection order by name; buildpacks of the directory not named follow, by name. Default nodejs, python, java, staticfile, binary. */
  buildpackOrder?: string[];
  /** Allow a request to name a buildpack by host directory or file:// git URL. Only for trusted callers (tests). */
  allowLocalBuildpacks?: boolean;
  /** Keep each app's buildpack cache here (<dir>/<app_id>) between stagings; default: a fresh cache each time. */
  appCacheDir?: string;
  /** PATH for buildpack commands. Default: the system's directories plus this Node's. */
  path?: string;
  /** git executable used to clone buildpacks. Default 'git'. */
  git?: string;
  /** HTTP method of the droplet upload. Default PUT. */
  uploadMethod?: 'PUT' | 'POST';
  /** Attempts for the download and the upload on network errors and 5xx answers. Default 3. */
  transferAttempts?: number;
  archive?: Partial<ArchiveLimits>;
  /** Leave each workspace behind (for debugging). */
  keepWorkspace?: boolean;
}

export interface CompiledStagerOptions {
  workDir: string;
  sandbox: SandboxFactory;
  timeoutMs: number;
  memoryMb: number;
  diskMb: number;
  stack: string;
  npmRegistry: string | undefined;
  proxy: string | undefined;
  buildpacksDir: string;
  buildpackOrder: string[];
  allowLocalBuildpacks: boolean;
  appCacheDir: string | undefined;
  path: string;
  git: string;
  uploadMethod: 'PUT' | 'POST';
  transferAttempts: number;
  archive: ArchiveLimits;
  keepWorkspace: boolean;
}

/** A buildpack ready to run: a host directory holding bin/detect, bin/release and bin/compile or bin/supply + bin/finalize. */
export interface Buildpack {
  /** Its name (built-in or admin buildpack), or the directory or URL it was asked for by. */
  name: string;
  dir: string;
  origin: 'builtin' | 'directory' | 'git';
}

/** What the request's `buildpack` field asks for. */
export type BuildpackRequest =
  | { kind: 'detect' }
  | { kind: 'name'; name: string }
  | { kind: 'directory'; path: string }
  | { kind: 'git'; url: string; ref: string | undefined };

/** The parsed output of bin/release. */
export interface ReleaseInfo {
  defaultProcessTypes: Record<string, string>;
  configVars: Record<string, string>;
}

export interface StagingResult {
  droplet_sha256: string;
  /** bin/detect's output, or the buildpack's name when it printed nothing or detection was skipped. */
  detected_buildpack: string;
  start_command: string;
  /** The buildpack that staged the app: its name, directory or URL (credentials removed). */
  buildpack: string;
  droplet_size: number;
}

export interface StageOptions {
  onLog?: OnLog;
  /** Aborting cancels staging (code `cancelled`). */
  signal?: AbortSignal;
}

// Staging, the DEA's stager: turns an app package into a droplet with buildpacks
// (Cloud Foundry's buildpack v2 contract), running them in a sandbox the DEA supplies.
export { Stager, createStager } from './stager.ts';
export { compileStagerOptions, builtinBuildpacksDir, DEFAULT_BUILDPACK_ORDER, DEFAULT_ARCHIVE_LIMITS } from './options.ts';
export { ProcessSandbox, type ProcessSandboxOptions, type SandboxExit, type SandboxFactory, type SandboxRunOptions, type SandboxSpec, type StagingDirs, type StagingSandbox, chownTree, isWithin } from './sandbox.ts';
export { StagingError, type StagingErrorCode, type StagingStep } from './errors.ts';
export { unpackZip, safeEntryPath, type UnpackSummary } from './archive.ts';
export { parseBuildpackRequest } from './buildpacks.ts';
export { parseProcfile, parseRelease, selectStartCommand } from './release.ts';
export { renderStagingInfo, type StagingInfo } from './droplet.ts';
export {
  stagingJob,
  type ArchiveLimits,
  type Buildpack,
  type BuildpackRequest,
  type CompiledStagerOptions,
  type LogStream,
  type OnLog,
  type ReleaseInfo,
  type StageOptions,
  type StagerOptions,
  type StagingJob,
  type StagingResult,
} from './types.ts';

// The release package: job specs and their renderer, the release builder and the reader the
// director checks an upload with.
export { RenderError, ReleaseError } from './errors.ts';
export { JobSpecSchema, parseJobSpec, linkSpecOf, type JobSpec } from './job-spec.ts';
export { renderJob, checkTemplates, packRenderedJob, type InstanceContext, type RenderedJob } from './renderer.ts';
export { loadJobs, jobFingerprint, type JobSource } from './jobs.ts';
export { createRelease, RELEASE_NAME, type CreateReleaseOptions, type CreatedRelease, type BuiltItem } from './builder.ts';
export { readRelease, type ReleaseArchive, type ReleaseArchiveJob, type ReleaseArchivePackage } from './reader.ts';
export { ReleaseManifest, jobMember, packageMember } from './release-manifest.ts';
export { tarFiles, tarMemory, readTgz, sha1, sha256 } from './tarball.ts';
export { checkComponentConfigs } from './component-configs.ts';

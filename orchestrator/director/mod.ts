// The director: REST API, state store, tasks + event log, locks, blobstore and the mbus.
export { startDirector, type Director, type DirectorHandle, type DirectorOptions } from './main.ts';
export { directorConfigSchema, loadDirectorConfig, parseDirectorConfig, type DirectorConfig } from './config.ts';
export { DirectorStore, type NewTask, type TaskFilter } from './store.ts';
export { TaskRunner, RESTARTED_SENTENCE, STOPPED_SENTENCE } from './task-runner.ts';
export { transition, isFinished, TASK_STATES, type TaskState, type TaskHappening } from './task-states.ts';
export { Blobstore } from './blobstore.ts';
export { Mbus, renderMbusConfig, type MbusCredential } from './mbus.ts';
export { agentBlobstoreUrl, deploymentLock, enqueueOrConflict, presentTask } from './api.ts';
export { minimalReleaseCheck, tarMembers } from './release-tarball.ts';
export { LockHeldError, TaskStateError, MbusError, ReleaseInvalidError, apiErrors } from './errors.ts';
export type * from './types.ts';

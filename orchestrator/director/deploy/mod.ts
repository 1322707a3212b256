// The deploy engine: plan (pure), variables, the agent client, the `deploy` task and its API.
// installDeployEngine is what startDirector calls to wire it into a director.
import type { Cpi } from '../../cpi/types.ts';
import type { ReleaseArchive } from '../../release/mod.ts';
import { agentUploadPath } from '../api.ts';
import type { Director } from '../main.ts';
import { lazyAgentClient, type AgentClient } from './agent-client.ts';
import type { RecreateDeps } from './recreate-instance.ts';
import { deployHandler } from './deploy-task.ts';
import { registerErrandRoutes, runErrandHandler } from './errand.ts';
import { changeJobStateHandler, fetchLogsHandler, type InstanceOpsDeps } from './instance-ops.ts';
import { registerInstanceOpsRoutes } from './instance-ops-routes.ts';
import { registerDeployRoutes } from './routes.ts';

export { planDeployment, planInstance, planChanges, changedPaths, recreateReasons, updateReasons, type DesiredGroup, type PlanInput } from './plan.ts';
export { allocateAddresses, applyAddresses, IpAllocationError, type AddressBook } from './ip-allocation.ts';
export { renderPlanDiff, propertyChange, isSecretPath, variablePaths, REDACTED } from './diff.ts';
export { updateBatches, groupStages, type Batch } from './update-order.ts';
export { AgentClient, AgentCallError } from './agent-client.ts';
export { DeploymentVariableStore, variableKey } from './variables.ts';
export { prepareDeploy, deployedInstances, manifestName, DeployInvalidError } from './preparation.ts';
export { InstanceUpdateError, watchVerdict } from './instance-updater.ts';
export { selectInstances, resourcePath, InstanceTargetError, JOB_STATE_CHANGES, type JobStateChange } from './instance-ops.ts';
export { vmRows, type VmRow } from './instances.ts';
export type * from './types.ts';

export interface DeployEngineOptions {
  uuid: string;
  tmpDir: string;
  pingTimeoutMs: number;
  watchPollMs?: number;
}

/** What every task that makes or replaces VMs needs, from the director's parts (deploy, recreate, cloud-check). */
export function vmTaskDeps(d: Director, cpi: Cpi | undefined, o: DeployEngineOptions, agents: () => Promise<AgentClient>): RecreateDeps {
  return {
    store: d.store,
    cpi,
    agents,
    registerAgent: d.registerAgent,
    unregisterAgent: d.unregisterAgent,
    uploadPath: (id) => agentUploadPath(d.config.data_dir, id),
    tmpDir: o.tmpDir,
    pingTimeoutMs: o.pingTimeoutMs,
    ...(o.watchPollMs ? { watchPollMs: o.watchPollMs } : {}),
  };
}

/** Registers the `deploy`, `fetch_logs`, `change_job_state` and `run_errand` tasks and their routes; returns what stops it (the mbus connection). */
export function installDeployEngine(d: Director, cpi: Cpi | undefined, o: DeployEngineOptions): () => Promise<void> {
  const releaseCache = new Map<string, ReleaseArchive>();
  const { agents, close } = lazyAgentClient(d.mbus.directorCredential, o.uuid);
  d.tasks.register(
    'deploy',
    deployHandler({ ...vmTaskDeps(d, cpi, o, agents), blobs: d.blobs, releaseCache }),
  );
  registerDeployRoutes(d.api, { store: d.store, blobs: d.blobs, releaseCache, tasks: d.tasks, agents });
  const ops: InstanceOpsDeps = {
    store: d.store,
    agents,
    dataDir: d.config.data_dir,
    uploadPath: (id) => agentUploadPath(d.config.data_dir, id),
    tmpDir: o.tmpDir,
    ...(o.watchPollMs ? { watchPollMs: o.watchPollMs } : {}),
  };
  d.tasks.register('fetch_logs', fetchLogsHandler(ops));
  d.tasks.register('change_job_state', changeJobStateHandler(ops));
  d.tasks.register('run_errand', runErrandHandler({ store: d.store, agents }));
  registerErrandRoutes(d.api, { store: d.store, tasks: d.tasks });
  registerInstanceOpsRoutes(d.api, { store: d.store, tasks: d.tasks, agents, dataDir: d.config.data_dir });
  return close;
}

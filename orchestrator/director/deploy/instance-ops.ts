// Operations on a deployment's instances outside a deploy, BOSH's `logs`, `start`, `stop` and
// `restart`: which instances a target names (pure), the `fetch_logs` task (the agent's log
// tarball kept as a resource the CLI downloads) and the `change_job_state` task (stop = drain
// and stop; start = start and watch until running; restart = both, one instance at a time, so
// a group of two keeps one serving). The state asked is kept per instance: a deploy leaves a
// stopped instance stopped.
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { parseManifest, type WatchTime } from '../../manifest/mod.ts';
import { AGENT_UPLOAD_ID } from '../api.ts';
import type { DirectorStore } from '../store.ts';
import type { InstanceRecord, TaskHandler, VmRecord } from '../types.ts';
import type { AgentClient } from './agent-client.ts';
import { InstanceUpdateError, startAndWatch, type UpdaterDeps } from './instance-updater.ts';

/** A target that names nothing: `not_found` (404) or a malformed index (`invalid`, 422). */
export class InstanceTargetError extends Error {
  override name = 'InstanceTargetError';
  constructor(
    readonly code: 'not_found' | 'invalid',
    message: string,
  ) {
    super(message);
  }
}

export const INDEX_OR_UUID = /^(\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

export function instanceLabel(i: InstanceRecord): string {
  return `${i.instance_group}/${i.idx}`;
}

/**
 * The instances a target names, in group then index order: every one for group `*`, a group's
 * for GROUP, one for GROUP/INDEX (INDEX the index or the instance's uuid). Pure.
 */
export function selectInstances(instances: InstanceRecord[], deployment: string, group: string, index?: string): InstanceRecord[] {
  const sorted = [...instances].sort((a, b) => (a.instance_group === b.instance_group ? a.idx - b.idx : a.instance_group < b.instance_group ? -1 : 1));
  if (group === '*') {
    if (index !== undefined) throw new InstanceTargetError('invalid', `Instance */${index}: name a group to pick an instance of it`);
    if (sorted.length === 0) throw new InstanceTargetError('not_found', `Deployment ${deployment} has no instances`);
    return sorted;
  }
  const members = sorted.filter((i) => i.instance_group === group);
  if (members.length === 0) {
    const known = [...new Set(sorted.map((i) => i.instance_group))];
    throw new InstanceTargetError('not_found', `Instance group ${group} is not in deployment ${deployment} (it has ${known.length ? known.join(', ') : 'no instances'})`);
  }
  if (index === undefined) return members;
  if (!INDEX_OR_UUID.test(index)) throw new InstanceTargetError('invalid', `Instance ${group}/${index}: the index is a number or the instance's uuid`);
  const found = members.find((i) => String(i.idx) === index || i.uuid === index);
  if (!found) throw new InstanceTargetError('not_found', `Instance ${group}/${index} is not in deployment ${deployment} (${group} has ${members.map((i) => i.idx).join(', ')})`);
  return [found];
}

// ---- resources: fetched log tarballs ------------------------------------------------------------

/** Where a fetch_logs task keeps the tarball it fetched; only such ids are ever served. */
export function resourcePath(dataDir: string, id: string): string {
  if (!AGENT_UPLOAD_ID.test(id)) throw new InstanceTargetError('invalid', `Resource ${JSON.stringify(id)}: a resource id is a UUID`);
  return join(dataDir, 'resources', `${id}.tgz`);
}

/** Fetched logs are downloaded at once by the CLI that asked; a day is ample. */
const RESOURCE_TTL_MS = 24 * 3600_000;

async function pruneResources(dir: string, now: number): Promise<void> {
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const file = join(dir, f);
    const st = await stat(file).catch(() => undefined);
    if (st && now - st.mtimeMs > RESOURCE_TTL_MS) await rm(file, { force: true });
  }
}

// ---- the tasks ----------------------------------------------------------------------------------

export const JOB_STATE_CHANGES = ['started', 'stopped', 'restarted'] as const;
export type JobStateChange = (typeof JOB_STATE_CHANGES)[number];

/** The tasks' params, as the routes store them; checked again since they come from the database. */
export const FetchLogsParams = z.object({ instance: z.string().min(1) }).strict();
export const ChangeJobStateParams = z.object({ state: z.enum(JOB_STATE_CHANGES), instances: z.array(z.string().min(1)).min(1) }).strict();

export function parseParams<S extends z.ZodTypeAny>(schema: S, params: unknown, type: string): z.output<S> {
  const parsed = schema.safeParse(params);
  if (!parsed.success) throw new Error(`Reading the ${type} task's params: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export interface InstanceOpsDeps {
  store: DirectorStore;
  agents: () => Promise<AgentClient>;
  dataDir: string;
  /** The file an agent's upload (fetch_logs) landed in, by its id. */
  uploadPath(id: string): string;
  tmpDir: string;
  taskTimeoutMs?: number;
  watchPollMs?: number;
}

/** The instance (by uuid) and its VM, as the store has them now. */
async function instanceWithVm(store: DirectorStore, deployment: string, uuid: string): Promise<{ inst: InstanceRecord; vm: VmRecord | undefined }> {
  const [rows, vms] = await Promise.all([store.instances(deployment), store.vms(deployment)]);
  const inst = rows.find((r) => r.uuid === uuid);
  if (!inst) throw new Error(`Instance ${uuid} is no longer in deployment ${deployment}`);
  return { inst, vm: vms.find((v) => v.instance_id === inst.id) };
}

/** `fetch_logs`: the agent tars its job logs and uploads them; the task's result is the resource id. */
export function fetchLogsHandler(deps: InstanceOpsDeps): TaskHandler {
  return async ({ task, events, signal }) => {
    const p = parseParams(FetchLogsParams, task.params, 'fetch_logs');
    const name = task.deployment ?? '';
    const { inst, vm } = await instanceWithVm(deps.store, name, p.instance);
    const label = instanceLabel(inst);
    const ev = { stage: 'Fetching logs', task: `${label} (${inst.uuid})`, index: 1, total: 1 };
    events.emit({ ...ev, state: 'started', progress: 0 });
    try {
      if (!vm) throw new Error(`instance ${label} has no VM`);
      const ref = (await (await deps.agents()).task(vm.agent_id, 'fetch_logs', [], deps.taskTimeoutMs ?? 120_000, signal)) as { blobstore_id?: unknown } | null;
      const id = ref?.blobstore_id;
      if (typeof id !== 'string' || !AGENT_UPLOAD_ID.test(id)) throw new Error(`the agent answered ${JSON.stringify(ref)}, not the id of its upload`);
      const dir = join(deps.dataDir, 'resources');
      await mkdir(dir, { recursive: true });
      await pruneResources(dir, Date.now());
      await rename(deps.uploadPath(id), resourcePath(deps.dataDir, id));
      events.emit({ ...ev, state: 'finished', progress: 100 });
      return id;
    } catch (err) {
      events.emit({ ...ev, state: 'failed', progress: 100, data: { error: (err as Error).message } });
      throw new Error(`Fetching the logs of ${label}: ${(err as Error).message}`, { cause: err });
    }
  };
}

const STAGES: Record<JobStateChange, string> = { started: 'Starting instance', stopped: 'Stopping instance', restarted: 'Restarting instance' };
const DONE: Record<JobStateChange, string> = { started: 'Started', stopped: 'Stopped', restarted: 'Restarted' };

/** The update_watch_time of each group, from the deployment's manifest. */
export function watchTimes(manifestText: string, deployment: string): Map<string, WatchTime> {
  try {
    return new Map(parseManifest(manifestText, 'manifest.yml').instance_groups.map((g) => [g.name, g.update.update_watch_time]));
  } catch (err) {
    throw new Error(`Reading the manifest of deployment ${deployment}: ${(err as Error).message}`, { cause: err });
  }
}

/** drain('shutdown') then stop; a failure is a sentence naming the instance and the step. */
async function stopJobs(updater: UpdaterDeps, doing: string, label: string, agentId: string, signal: AbortSignal): Promise<void> {
  const timeout = updater.taskTimeoutMs ?? 600_000;
  for (const [what, method, args] of [['draining', 'drain', ['shutdown']], ['stopping', 'stop', []]] as const) {
    try {
      await updater.agents.task(agentId, method, [...args], timeout, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      throw new InstanceUpdateError(label, undefined, `${doing} ${label}: ${what}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** `change_job_state`: each instance in turn, its desired state recorded before its agent is asked. */
export function changeJobStateHandler(deps: InstanceOpsDeps): TaskHandler {
  return async ({ task, events, signal, log }) => {
    const p = parseParams(ChangeJobStateParams, task.params, 'change_job_state');
    const name = task.deployment ?? '';
    const dep = await deps.store.deployment(name);
    if (!dep) throw new Error(`Deployment ${name} is gone`);
    const watch = watchTimes(dep.manifest, name);
    const updater: UpdaterDeps = {
      agents: await deps.agents(),
      uploadPath: deps.uploadPath,
      tmpDir: deps.tmpDir,
      log,
      ...(deps.taskTimeoutMs ? { taskTimeoutMs: deps.taskTimeoutMs } : {}),
      ...(deps.watchPollMs ? { watchPollMs: deps.watchPollMs } : {}),
    };
    const stage = STAGES[p.state];
    const labels: string[] = [];
    for (const [n, uuid] of p.instances.entries()) {
      signal.throwIfAborted();
      const { inst, vm } = await instanceWithVm(deps.store, name, uuid);
      const label = instanceLabel(inst);
      const ev = { stage, task: label, index: n + 1, total: p.instances.length };
      events.emit({ ...ev, state: 'started', progress: 0 });
      try {
        await deps.store.setDesiredState([uuid], p.state === 'stopped' ? 'stopped' : 'started');
        if (!vm) log(`${label} has no VM: its desired state is recorded for the next deploy`);
        else {
          if (p.state !== 'started') await stopJobs(updater, stage, label, vm.agent_id, signal);
          if (p.state !== 'stopped') {
            const jobs = (inst.spec as { jobs?: Array<{ name: string }> }).jobs;
            const groupWatch = watch.get(inst.instance_group);
            if (!groupWatch) throw new Error(`instance group ${inst.instance_group} is not in the deployment's manifest`);
            await startAndWatch(updater, stage, label, vm.agent_id, jobs?.[0]?.name, groupWatch, signal);
          }
        }
        events.emit({ ...ev, state: 'finished', progress: 100 });
        labels.push(label);
      } catch (err) {
        events.emit({ ...ev, state: 'failed', progress: 100, data: { error: (err as Error).message } });
        if (err instanceof InstanceUpdateError || signal.aborted) throw err;
        throw new Error(`${stage} ${label}: ${(err as Error).message}`, { cause: err });
      }
    }
    return `${DONE[p.state]} ${labels.length} instance${labels.length === 1 ? '' : 's'} of ${name}: ${labels.join(', ')}`;
  };
}

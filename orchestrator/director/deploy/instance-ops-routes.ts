// The instance operations' API: GET /deployments/:name/vms (BOSH's `vms`: each VM with its
// agent's word now); POST …/instances/:group/:index/logs queues a `fetch_logs` task and GET
// /resources/:id hands out the tarball it fetched; POST /deployments/:name/jobs/:group[/:index]
// ?state=started|stopped|restarted queues a `change_job_state` task under the deployment's lock.
// A target that names nothing is refused here, with a sentence naming it, before any task.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { z } from 'zod';
import { parseQuery } from '../../../kernel/cloud-controller/http/query.ts';
import type { ApiServer, RequestContext } from '../../../kernel/cloud-controller/http/server.ts';
import { deploymentLock, enqueueOrConflict, presentTask } from '../api.ts';
import { ApiError, apiErrors } from '../errors.ts';
import type { DirectorStore } from '../store.ts';
import type { TaskRunner } from '../task-runner.ts';
import type { InstanceRecord } from '../types.ts';
import type { AgentClient } from './agent-client.ts';
import { InstanceTargetError, instanceLabel, JOB_STATE_CHANGES, resourcePath, selectInstances, type JobStateChange } from './instance-ops.ts';
import { vmRows } from './instances.ts';
import { STATE_TIMEOUT_MS } from './routes.ts';

export interface InstanceOpsRouteDeps {
  store: DirectorStore;
  tasks: TaskRunner;
  agents: () => Promise<AgentClient>;
  dataDir: string;
}

/** The deployment's instances; 404 when there is no such deployment. */
async function deploymentInstances(store: DirectorStore, name: string): Promise<InstanceRecord[]> {
  if (!(await store.deployment(name))) throw apiErrors.notFound(`Deployment ${name}`);
  return store.instances(name);
}

/** The instances a target names, or a 404/422 naming what does not exist. */
export async function targetOf(store: DirectorStore, ctx: RequestContext): Promise<{ name: string; instances: InstanceRecord[] }> {
  const { name, group, index } = ctx.params as { name: string; group: string; index?: string };
  const all = await deploymentInstances(store, name);
  try {
    return { name, instances: selectInstances(all, name, group, index) };
  } catch (err) {
    if (!(err instanceof InstanceTargetError)) throw err;
    if (err.code === 'invalid') throw apiErrors.invalid(err.message);
    // The sentence names what is missing and what there is; notFound's `X not found` would not.
    throw new ApiError(404, 40400, 'Director-NotFound', err.message);
  }
}

const VERBS: Record<JobStateChange, string> = { started: 'start', stopped: 'stop', restarted: 'restart' };

export function registerInstanceOpsRoutes(api: ApiServer, d: InstanceOpsRouteDeps): void {
  api.route('GET', '/deployments/:name/vms', 'user', async (ctx) => {
    parseQuery(ctx.query, z.object({}).strict());
    const name = ctx.params.name!;
    const instances = await deploymentInstances(d.store, name);
    const vms = await d.store.vms(name);
    const states = await (await d.agents()).states(vms.map((vm) => vm.agent_id), STATE_TIMEOUT_MS);
    return { status: 200, body: vmRows(instances, vms, states) };
  });

  api.route('POST', '/deployments/:name/instances/:group/:index/logs', 'user', async (ctx) => {
    const { name, instances } = await targetOf(d.store, ctx);
    const inst = instances[0]!;
    const vms = await d.store.vms(name);
    if (!vms.some((v) => v.instance_id === inst.id)) throw apiErrors.invalid(`Instance ${instanceLabel(inst)} of deployment ${name} has no VM: there are no logs to fetch`);
    const task = await d.tasks.enqueue({
      type: 'fetch_logs',
      description: `fetch logs of ${name} ${instanceLabel(inst)}`,
      deployment: name,
      username: ctx.principal.kind === 'user' ? ctx.principal.username : 'anonymous',
      params: { instance: inst.uuid },
    });
    return { status: 202, body: presentTask(task), headers: { Location: `/tasks/${task.id}` } };
  });

  api.route('GET', '/resources/:id', 'user', async (ctx) => {
    let file: string;
    try {
      file = resourcePath(d.dataDir, ctx.params.id!);
    } catch (err) {
      if (err instanceof InstanceTargetError) throw apiErrors.badRequest(err.message);
      throw err;
    }
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) throw apiErrors.notFound(`Resource ${ctx.params.id}`);
    ctx.res.writeHead(200, { 'Content-Type': 'application/gzip', 'Content-Length': String(st.size) });
    createReadStream(file).pipe(ctx.res);
    return { handled: true as const };
  });

  const changeState = async (ctx: RequestContext) => {
    const q = parseQuery(ctx.query, z.object({ state: z.enum(JOB_STATE_CHANGES, { errorMap: () => ({ message: `expected one of ${JOB_STATE_CHANGES.join(', ')}` }) }) }).strict());
    const { name, instances } = await targetOf(d.store, ctx);
    const { group, index } = ctx.params as { group: string; index?: string };
    const what = group === '*' ? 'all instances' : index === undefined ? group : instanceLabel(instances[0]!);
    const task = await enqueueOrConflict(d.tasks, {
      type: 'change_job_state',
      description: `${VERBS[q.state]} ${name} ${what}`,
      deployment: name,
      username: ctx.principal.kind === 'user' ? ctx.principal.username : 'anonymous',
      locks: [deploymentLock(name)],
      params: { state: q.state, instances: instances.map((i) => i.uuid) },
    });
    return { status: 202, body: presentTask(task), headers: { Location: `/tasks/${task.id}` } };
  };
  api.route('POST', '/deployments/:name/jobs/:group', 'user', changeState);
  api.route('POST', '/deployments/:name/jobs/:group/:index', 'user', changeState);
}

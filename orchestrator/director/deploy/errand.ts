// BOSH's colocated errands: `run_errand` runs job NAME's errand (its spec's `errand`, or a
// bin/run) to its end on every instance that has the job, side by side, under the deployment's
// lock. The task's result is each instance's exit code and output tails (JSON); an errand that
// exits non-zero has still run, so the task is done and the CLI's exit status says it failed
// (as BOSH's does). POST /deployments/:name/errands/:errand/runs queues it.
import { z } from 'zod';
import { parseManifest } from '../../manifest/mod.ts';
import type { ApiServer } from '../../../kernel/cloud-controller/http/server.ts';
import { deploymentLock, enqueueOrConflict, presentTask } from '../api.ts';
import { ApiError, apiErrors } from '../errors.ts';
import type { DirectorStore } from '../store.ts';
import type { TaskRunner } from '../task-runner.ts';
import type { InstanceRecord, TaskHandler } from '../types.ts';
import type { AgentClient } from './agent-client.ts';
import { instanceLabel } from './instance-ops.ts';
import type { DesiredInstance } from './types.ts';

export interface ErrandRun {
  instance: string;
  id: string;
  exit_code: number | null;
  stdout: string;
  stderr: string;
}

export interface ErrandResult {
  errand: string;
  runs: ErrandRun[];
}

const AgentErrandReply = z.object({ exit_code: z.number().int().nullable(), stdout: z.string(), stderr: z.string() });
const ErrandParams = z.object({ errand: z.string().min(1) });

/** The instances whose last applied spec has job `errand`, in group then index order. Pure. */
export function errandInstances(instances: InstanceRecord[], errand: string): InstanceRecord[] {
  return instances
    .filter((i) => ((i.spec as Partial<DesiredInstance>).jobs ?? []).some((j) => j.name === errand))
    .sort((a, b) => (a.instance_group === b.instance_group ? a.idx - b.idx : a.instance_group < b.instance_group ? -1 : 1));
}

/** Why no instance can run it: a sentence naming what there is. */
function noErrand(manifestText: string | undefined, deployment: string, errand: string): string {
  try {
    const group = manifestText ? parseManifest(manifestText, 'manifest.yml').instance_groups.find((g) => g.name === errand) : undefined;
    if (group?.lifecycle === 'errand') {
      return `Instance group ${errand} has lifecycle: errand, which this director does not run on VMs of their own yet; colocate job ${errand} on an instance group of the deployment`;
    }
  } catch {
    // The stored manifest was valid when deployed; a reading problem only loses the hint.
  }
  return `No instance of deployment ${deployment} has a job named ${errand}`;
}

export function runErrandHandler(deps: { store: DirectorStore; agents: () => Promise<AgentClient>; timeoutMs?: number }): TaskHandler {
  return async ({ task, events, signal }) => {
    const p = ErrandParams.parse(task.params);
    const name = task.deployment ?? '';
    const [instances, vms] = await Promise.all([deps.store.instances(name), deps.store.vms(name)]);
    const targets = errandInstances(instances, p.errand);
    if (targets.length === 0) throw new Error(noErrand((await deps.store.deployment(name))?.manifest, name, p.errand));
    const client = await deps.agents();
    const runs = await Promise.all(
      targets.map(async (inst, i): Promise<ErrandRun> => {
        const label = instanceLabel(inst);
        const ev = { stage: 'Running errand', task: `${label} (${inst.uuid})`, index: i + 1, total: targets.length };
        events.emit({ ...ev, state: 'started', progress: 0 });
        const vm = vms.find((v) => v.instance_id === inst.id);
        try {
          if (!vm) throw new Error('it has no VM');
          const reply = AgentErrandReply.parse(await client.task(vm.agent_id, 'run_errand', [p.errand], deps.timeoutMs ?? 3600_000, signal));
          events.emit({ ...ev, state: reply.exit_code === 0 ? 'finished' : 'failed', progress: 100, ...(reply.exit_code === 0 ? {} : { data: { error: `exit code ${reply.exit_code}` } }) });
          return { instance: label, id: inst.uuid, ...reply };
        } catch (err) {
          events.emit({ ...ev, state: 'failed', progress: 100, data: { error: (err as Error).message } });
          throw new Error(`Running errand ${p.errand} on ${label}: ${(err as Error).message}`, { cause: err });
        }
      }),
    );
    return JSON.stringify({ errand: p.errand, runs } satisfies ErrandResult);
  };
}

export function registerErrandRoutes(api: ApiServer, d: { store: DirectorStore; tasks: TaskRunner }): void {
  api.route('POST', '/deployments/:name/errands/:errand/runs', 'user', async (ctx) => {
    const { name, errand } = ctx.params as { name: string; errand: string };
    const deployment = await d.store.deployment(name);
    if (!deployment) throw apiErrors.notFound(`Deployment ${name}`);
    if (errandInstances(await d.store.instances(name), errand).length === 0) throw new ApiError(404, 40400, 'Director-NotFound', noErrand(deployment.manifest, name, errand));
    const task = await enqueueOrConflict(d.tasks, {
      type: 'run_errand',
      description: `run errand ${errand} of ${name}`,
      deployment: name,
      username: ctx.principal.kind === 'user' ? ctx.principal.username : 'anonymous',
      locks: [deploymentLock(name)],
      params: { errand },
    });
    return { status: 202, body: presentTask(task), headers: { Location: `/tasks/${task.id}` } };
  });
}

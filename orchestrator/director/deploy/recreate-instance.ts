// Recreating an instance's VM outside a deploy — BOSH's `recreate`, the resurrector's
// `scan_and_fix` and cloud-check's recreate_vm: the old VM drained and stopped when it still
// answers, its persistent disk detached, the VM deleted (what is left of a VM that vanished
// is cleaned up too), a new VM created with the same disk, and the instance's last applied
// spec applied and started. Built from the deploy path's own steps (vm-lifecycle.ts,
// instance-updater.ts), one instance at a time, under the deployment's lock.
import { z } from 'zod';
import type { Cpi } from '../../cpi/types.ts';
import type { InstanceRecord, TaskContext, TaskHandler } from '../types.ts';
import type { AgentClient } from './agent-client.ts';
import type { DeployEngineDeps } from './deploy-task.ts';
import { instanceLabel, parseParams, watchTimes } from './instance-ops.ts';
import { applySpecOf, InstanceUpdateError, updateInstanceOnVm, type UpdaterDeps } from './instance-updater.ts';
import type { DesiredInstance } from './types.ts';
import { createInstanceVm, deleteInstanceVm, type VmDeps } from './vm-lifecycle.ts';

/** What a recreate needs: the deploy engine's own dependencies, less what only a deploy reads. */
export type RecreateDeps = Pick<DeployEngineDeps, 'store' | 'cpi' | 'agents' | 'registerAgent' | 'unregisterAgent' | 'uploadPath' | 'tmpDir' | 'pingTimeoutMs' | 'watchPollMs'>;

/** How long an old VM's agent has to answer before it is treated as gone (no drain, no stop). */
const PING_MS = 3000;

/** Whether the agent answers ping within `ms`. */
export async function agentAnswers(agents: AgentClient, agentId: string, ms = PING_MS): Promise<boolean> {
  return (await agents.request(agentId, 'ping', [], ms).catch(() => undefined)) === 'pong';
}

export function vmDepsOf(deps: RecreateDeps, cpi: Cpi, agents: AgentClient, log: (line: string) => void): VmDeps {
  return { store: deps.store, cpi, registerAgent: deps.registerAgent, unregisterAgent: deps.unregisterAgent, agents, pingTimeoutMs: deps.pingTimeoutMs, log };
}

export function updaterOf(deps: RecreateDeps, agents: AgentClient, log: (line: string) => void): UpdaterDeps {
  return { agents, uploadPath: deps.uploadPath, tmpDir: deps.tmpDir, log, ...(deps.watchPollMs ? { watchPollMs: deps.watchPollMs } : {}) };
}

/** The CPI, or a sentence saying the director has none. */
export function needCpi(cpi: Cpi | undefined, doing: string): Cpi {
  if (!cpi) throw new Error(`${doing}: the director has no CPI (set cpi_config in its config)`);
  return cpi;
}

/** The instance's last applied spec, or a sentence saying it was never deployed. */
function deployedSpec(inst: InstanceRecord): DesiredInstance {
  const spec = inst.spec as Partial<DesiredInstance>;
  if (spec.group !== inst.instance_group) throw new Error(`${instanceLabel(inst)} has never been deployed; deploy it first`);
  return spec as DesiredInstance;
}

/**
 * Recreates the VM of instance `uuid` and applies its spec; resolves with the new VM's cid.
 * `drain` false skips draining the old VM's jobs (the resurrector: it is gone or silent).
 */
export async function recreateInstance(deps: RecreateDeps, deployment: string, uuid: string, ctx: Pick<TaskContext, 'log' | 'signal'>, o: { drain: boolean }): Promise<string> {
  const { log, signal } = ctx;
  const cpi = needCpi(deps.cpi, `Recreating instance ${uuid} of ${deployment}`);
  const [dep, rows, vms, disks, stemcells] = await Promise.all([
    deps.store.deployment(deployment),
    deps.store.instances(deployment),
    deps.store.vms(deployment),
    deps.store.disks(deployment),
    deps.store.stemcells(),
  ]);
  if (!dep) throw new Error(`Deployment ${deployment} is gone`);
  const inst = rows.find((r) => r.uuid === uuid);
  if (!inst) throw new Error(`Instance ${uuid} is no longer in deployment ${deployment}`);
  const label = instanceLabel(inst);
  const spec = deployedSpec(inst);
  const stemcell = stemcells.find((s) => s.operating_system === spec.stemcell.os && s.version === spec.stemcell.version);
  if (!stemcell?.cpi_cid) throw new Error(`Recreating ${label}: stemcell ${spec.stemcell.os}/${spec.stemcell.version} is not uploaded to the CPI any more`);
  const watch = watchTimes(dep.manifest, deployment).get(inst.instance_group);
  if (!watch) throw new Error(`Recreating ${label}: instance group ${inst.instance_group} is not in the deployment's manifest`);
  const agents = await deps.agents();
  const vmDeps = vmDepsOf(deps, cpi, agents, log);
  const old = vms.find((v) => v.instance_id === inst.id);
  const disk = disks.find((d) => d.instance_id === inst.id)?.cid ?? null;

  if (old) {
    const exists = await cpi.has_vm(old.cid).catch(() => true);
    if (exists && o.drain && (await agentAnswers(agents, old.agent_id))) {
      await agents.task(old.agent_id, 'drain', ['shutdown'], 600_000, signal).catch((err: Error) => log(`${label}: drain before recreate: ${err.message}`));
      await agents.task(old.agent_id, 'stop', [], 600_000, signal).catch((err: Error) => log(`${label}: stop before recreate: ${err.message}`));
    }
    if (exists && disk) await cpi.detach_disk(old.cid, disk).catch((err: Error) => log(`${label}: detaching disk ${disk}: ${err.message}`));
    // What is left of a vanished VM (its address claim, its cgroup) would stand in the new one's way.
    if (!exists) await cpi.delete_vm(old.cid).catch((err: Error) => log(`${label}: deleting what is left of VM ${old.cid}: ${err.message}`));
    await deleteInstanceVm(vmDeps, old);
  }
  signal.throwIfAborted();
  const save = (state: string) =>
    deps.store.saveInstance({ deployment, instance_group: inst.instance_group, idx: inst.idx, uuid, az: inst.az, state, bootstrap: inst.bootstrap, spec: inst.spec });
  await save('recreating');
  try {
    const vm = await createInstanceVm(vmDeps, deployment, inst.id, spec, stemcell.cpi_cid, disk, signal);
    await updateInstanceOnVm(updaterOf(deps, agents, log), label, vm.agent_id, applySpecOf(deployment, spec, new Map()), false, watch, signal, undefined, {
      start: inst.desired_state !== 'stopped',
    });
    await save('running');
    log(`${label}: recreated on VM ${vm.cid}${disk ? ` with disk ${disk}` : ''}`);
    return vm.cid;
  } catch (err) {
    await save('failed').catch(() => undefined);
    throw err;
  }
}

export const RecreateParams = z.object({ instances: z.array(z.string().min(1)).min(1), drain: z.boolean().default(true) }).strict();

/** Runs `each` on every instance in turn as one stage of events; the first failure ends the task. */
async function eachInstance(
  deps: RecreateDeps,
  ctx: TaskContext,
  uuids: string[],
  stage: string,
  each: (uuid: string, label: string) => Promise<string | undefined>,
): Promise<string[]> {
  const name = ctx.task.deployment ?? '';
  const done: string[] = [];
  for (const [n, uuid] of uuids.entries()) {
    ctx.signal.throwIfAborted();
    const inst = (await deps.store.instances(name)).find((r) => r.uuid === uuid);
    const label = inst ? instanceLabel(inst) : uuid;
    const ev = { stage, task: `${label} (${uuid})`, index: n + 1, total: uuids.length };
    ctx.events.emit({ ...ev, state: 'started', progress: 0 });
    try {
      const what = await each(uuid, label);
      if (what) done.push(what);
      ctx.events.emit({ ...ev, state: 'finished', progress: 100 });
    } catch (err) {
      ctx.events.emit({ ...ev, state: 'failed', progress: 100, data: { error: (err as Error).message } });
      if (err instanceof InstanceUpdateError || ctx.signal.aborted) throw err;
      throw new Error(`${stage} ${label}: ${(err as Error).message}`, { cause: err });
    }
  }
  return done;
}

/** `recreate`: each named instance gets a new VM, one at a time. */
export function recreateHandler(deps: RecreateDeps): TaskHandler {
  return async (ctx) => {
    const p = parseParams(RecreateParams, ctx.task.params, 'recreate');
    const name = ctx.task.deployment ?? '';
    const done = await eachInstance(deps, ctx, p.instances, 'Recreating instance', async (uuid, label) => {
      await recreateInstance(deps, name, uuid, ctx, { drain: p.drain });
      return label;
    });
    return `Recreated ${done.length} instance${done.length === 1 ? '' : 's'} of ${name}: ${done.join(', ')}`;
  };
}

export const ScanAndFixParams = z.object({ instances: z.array(z.string().min(1)).min(1) }).strict();

/**
 * `scan_and_fix` (the resurrector's task): each instance is looked at again — a VM the CPI
 * still has whose agent answers is left alone (it came back) — and the others are recreated.
 */
export function scanAndFixHandler(deps: RecreateDeps): TaskHandler {
  return async (ctx) => {
    const p = parseParams(ScanAndFixParams, ctx.task.params, 'scan_and_fix');
    const name = ctx.task.deployment ?? '';
    const cpi = needCpi(deps.cpi, `Resurrecting instances of ${name}`);
    const agents = await deps.agents();
    const done = await eachInstance(deps, ctx, p.instances, 'Resurrecting instance', async (uuid, label) => {
      const inst = (await deps.store.instances(name)).find((r) => r.uuid === uuid);
      const vm = inst && (await deps.store.vms(name)).find((v) => v.instance_id === inst.id);
      if (!vm) {
        ctx.log(`${label} has no VM any more: nothing to resurrect`);
        return undefined;
      }
      if ((await cpi.has_vm(vm.cid).catch(() => false)) && (await agentAnswers(agents, vm.agent_id))) {
        ctx.log(`${label} answers again: left alone`);
        return undefined;
      }
      await recreateInstance(deps, name, uuid, ctx, { drain: false });
      return label;
    });
    return done.length ? `Resurrected ${done.length} instance${done.length === 1 ? '' : 's'} of ${name}: ${done.join(', ')}` : `Nothing to resurrect in ${name}: every instance answers`;
  };
}

// BOSH's cloud-check as two tasks under the deployment's lock: `cck_scan` looks at every VM
// (the CPI's has_vm, the agent's ping and list_disk) and disk (has_disk) of a deployment and
// records what is wrong as its open problems (health-monitor/analysis.ts detectProblems);
// `cck_apply` applies the resolution chosen for each — recreate_vm, reboot_vm,
// delete_vm_reference, delete_disk_reference, reattach_disk, reattach_disk_and_reboot or
// ignore — and marks it resolved.
import { z } from 'zod';
import type { Cpi } from '../../cpi/types.ts';
import { detectProblems, RESOLUTIONS, type ProblemType, type Resolution, type ScannedInstance } from '../../health-monitor/analysis.ts';
import type { ProblemRecord, TaskContext, TaskHandler } from '../types.ts';
import type { AgentClient } from './agent-client.ts';
import { instanceLabel, parseParams, watchTimes } from './instance-ops.ts';
import { startAndWatch } from './instance-updater.ts';
import { agentAnswers, needCpi, recreateInstance, updaterOf, type RecreateDeps } from './recreate-instance.ts';
import { attachAndMount, listDisks } from './vm-lifecycle.ts';

/** How long an agent has to answer ping during a scan before it counts as unresponsive. */
const SCAN_PING_MS = 5000;

/** `cck_scan`: the deployment's problems, found now; the previous open ones are closed. */
export function cloudCheckScanHandler(deps: RecreateDeps): TaskHandler {
  return async ({ task, events }) => {
    const name = task.deployment ?? '';
    const cpi = needCpi(deps.cpi, `Scanning deployment ${name}`);
    const [rows, vms, disks] = await Promise.all([deps.store.instances(name), deps.store.vms(name), deps.store.disks(name)]);
    const agents = await deps.agents();
    const vmState = new Map<string, { exists: boolean; responsive: boolean }>();
    /** Each answering agent's list_disk; an agent that cannot say (an older one) is left out. */
    const listed = new Map<string, Set<string>>();
    const diskState = new Map<string, boolean>();
    const scan = async (what: string, checks: Array<() => Promise<void>>): Promise<void> => {
      const ev = { stage: 'Scanning', task: what, index: 1, total: 1 };
      events.emit({ ...ev, state: 'started', progress: 0 });
      await Promise.all(checks.map((c) => c()));
      events.emit({ ...ev, task: `${what}: ${checks.length} checked`, state: 'finished', progress: 100 });
    };
    await scan(
      'VMs',
      vms.map((vm) => async () => {
        const exists = await cpi.has_vm(vm.cid).catch(() => true);
        const responsive = exists && (await agentAnswers(agents, vm.agent_id, SCAN_PING_MS));
        vmState.set(vm.cid, { exists, responsive });
        const mounted = responsive ? await listDisks(agents, vm.agent_id, SCAN_PING_MS).catch(() => undefined) : undefined;
        if (mounted) listed.set(vm.agent_id, mounted);
      }),
    );
    await scan(
      'persistent disks',
      disks.map((d) => async () => void diskState.set(d.cid, await cpi.has_disk(d.cid).catch(() => true))),
    );
    const scanned: ScannedInstance[] = [...rows]
      .sort((a, b) => (a.instance_group === b.instance_group ? a.idx - b.idx : a.instance_group < b.instance_group ? -1 : 1))
      .map((r) => {
        const vm = vms.find((v) => v.instance_id === r.id);
        return {
          uuid: r.uuid,
          label: instanceLabel(r),
          vm: vm ? { cid: vm.cid, agent_id: vm.agent_id, ...vmState.get(vm.cid)! } : null,
          disks: disks
            .filter((d) => d.instance_id === r.id)
            .map((d) => {
              const mounted = vm && listed.get(vm.agent_id);
              return { cid: d.cid, exists: diskState.get(d.cid) ?? true, ...(mounted ? { mounted: mounted.has(d.cid) } : {}) };
            }),
        };
      });
    const found = await deps.store.replaceProblems(name, detectProblems(scanned));
    return `${found.length} problem${found.length === 1 ? '' : 's'} found in ${name}`;
  };
}

export const CloudCheckApplyParams = z.object({ resolutions: z.record(z.string().regex(/^\d+$/), z.string().min(1)) }).strict();

/** Whether `resolution` is one problem `p` offers. Pure. */
export function offers(p: Pick<ProblemRecord, 'type'>, resolution: string): resolution is Resolution {
  return ((RESOLUTIONS[p.type as ProblemType] ?? []) as readonly string[]).includes(resolution);
}

/** `cck_apply`: each chosen resolution, in problem order; the first failure ends the task. */
export function cloudCheckApplyHandler(deps: RecreateDeps): TaskHandler {
  return async (ctx) => {
    const { task, events, log, signal } = ctx;
    const p = parseParams(CloudCheckApplyParams, task.params, 'cck_apply');
    const name = task.deployment ?? '';
    const cpi = needCpi(deps.cpi, `Resolving the problems of ${name}`);
    const chosen = (await deps.store.problems(name)).filter((pr) => p.resolutions[String(pr.id)] !== undefined);
    const counts = new Map<string, number>();
    for (const [n, pr] of chosen.entries()) {
      signal.throwIfAborted();
      const resolution = p.resolutions[String(pr.id)]!;
      const data = pr.data as { instance?: string; vm_cid?: string; agent_id?: string; disk_cid?: string; description?: string };
      const ev = { stage: 'Applying problem resolutions', task: `${pr.type} ${pr.id}: ${data.description ?? pr.resource_id} (${resolution})`, index: n + 1, total: chosen.length };
      events.emit({ ...ev, state: 'started', progress: 0 });
      try {
        if (!offers(pr, resolution)) throw new Error(`${resolution} is not a resolution of ${pr.type} (it offers ${RESOLUTIONS[pr.type as ProblemType]?.join(', ') ?? 'none'})`);
        const vm = data.vm_cid ? (await deps.store.vms(name)).find((v) => v.cid === data.vm_cid) : undefined;
        switch (resolution) {
          case 'ignore':
            break;
          case 'recreate_vm':
            await recreateInstance(deps, name, pr.resource_id, ctx, { drain: false });
            break;
          case 'reboot_vm':
            if (!vm) throw new Error(`VM ${data.vm_cid} is no longer the instance's`);
            await rebootVm(deps, cpi, ctx, name, pr.resource_id, vm);
            break;
          case 'reattach_disk':
            if (!vm || !data.disk_cid) throw new Error(`VM ${data.vm_cid} is no longer the instance's`);
            await reattachDisk(deps, cpi, ctx, name, pr.resource_id, vm, data.disk_cid);
            break;
          case 'reattach_disk_and_reboot':
            if (!vm || !data.disk_cid) throw new Error(`VM ${data.vm_cid} is no longer the instance's`);
            await attachAndMount(cpi, await deps.agents(), vm, data.disk_cid, SCAN_PING_MS);
            await rebootVm(deps, cpi, ctx, name, pr.resource_id, vm, data.disk_cid);
            break;
          case 'delete_vm_reference':
            if (vm) {
              if (!(await cpi.has_vm(vm.cid).catch(() => true))) await cpi.delete_vm(vm.cid).catch((err: Error) => log(`deleting what is left of VM ${vm.cid}: ${err.message}`));
              await deps.store.deleteVm(vm.cid);
              await deps.unregisterAgent(vm.agent_id);
            }
            break;
          case 'delete_disk_reference':
            if (data.disk_cid) await deps.store.deleteDisk(data.disk_cid);
            break;
        }
        await deps.store.resolveProblem(pr.id);
        counts.set(resolution, (counts.get(resolution) ?? 0) + 1);
        events.emit({ ...ev, state: 'finished', progress: 100 });
      } catch (err) {
        events.emit({ ...ev, state: 'failed', progress: 100, data: { error: (err as Error).message } });
        throw new Error(`Applying ${resolution} to problem ${pr.id} (${data.description ?? pr.type}): ${(err as Error).message}`, { cause: err });
      }
    }
    const summary = [...counts].map(([r, c]) => `${r} ×${c}`).join(', ');
    return `${chosen.length} problem${chosen.length === 1 ? '' : 's'} of ${name} resolved${summary ? `: ${summary}` : ''}`;
  };
}

/** Starts the instance's jobs and watches them come up, unless `ingot stop` left it stopped. */
async function startJobs(deps: RecreateDeps, agents: AgentClient, ctx: Pick<TaskContext, 'log' | 'signal'>, deployment: string, uuid: string, agentId: string, doing: string): Promise<void> {
  const inst = (await deps.store.instances(deployment)).find((r) => r.uuid === uuid);
  const dep = await deps.store.deployment(deployment);
  const watch = inst && dep ? watchTimes(dep.manifest, deployment).get(inst.instance_group) : undefined;
  if (!inst || !watch || inst.desired_state === 'stopped') return;
  const jobs = (inst.spec as { jobs?: Array<{ name: string }> }).jobs;
  await startAndWatch(updaterOf(deps, agents, ctx.log), doing, instanceLabel(inst), agentId, jobs?.[0]?.name, watch, ctx.signal);
}

/**
 * BOSH's reboot_vm: the CPI reboots the VM, its agent answers again, then the jobs are started
 * and watched. With `disk`, the agent must list that disk mounted after the boot.
 */
async function rebootVm(deps: RecreateDeps, cpi: Cpi, ctx: Pick<TaskContext, 'log' | 'signal'>, deployment: string, uuid: string, vm: { cid: string; agent_id: string }, disk?: string): Promise<void> {
  const agents = await deps.agents();
  await cpi.reboot_vm(vm.cid);
  await agents.waitForPing(vm.agent_id, deps.pingTimeoutMs, ctx.signal);
  if (disk && !(await listDisks(agents, vm.agent_id, SCAN_PING_MS)).has(disk)) throw new Error(`agent ${vm.agent_id} does not list disk ${disk} after the reboot`);
  await startJobs(deps, agents, ctx, deployment, uuid, vm.agent_id, 'Rebooting');
}

/**
 * BOSH's reattach_disk: the disk attached and mounted again (attachAndMount), then the jobs
 * restarted so they see the disk rather than the directory under it.
 */
async function reattachDisk(deps: RecreateDeps, cpi: Cpi, ctx: Pick<TaskContext, 'log' | 'signal'>, deployment: string, uuid: string, vm: { cid: string; agent_id: string }, disk: string): Promise<void> {
  const agents = await deps.agents();
  await attachAndMount(cpi, agents, vm, disk, SCAN_PING_MS);
  await agents.task(vm.agent_id, 'stop', [], 600_000, ctx.signal);
  await startJobs(deps, agents, ctx, deployment, uuid, vm.agent_id, 'Reattaching disk to');
}

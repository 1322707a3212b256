// The `deploy` task: prepare (parse, interpolate, check, render every instance — every problem
// reported before anything is touched), then create missing VMs in parallel, update instance
// groups in manifest order (zone by zone: canaries, then batches of max_in_flight), delete what
// is no longer wanted. Each step is an event; each outcome is in the store as soon as it
// happens, so a director killed mid-deploy leaves a state the next deploy continues from.
import { z } from 'zod';
import type { ApplySpec } from '../../agent/protocol.ts';
import type { Cpi } from '../../cpi/types.ts';
import { parseMaxInFlight, type WatchTime } from '../../manifest/mod.ts';
import type { Blobstore } from '../blobstore.ts';
import type { DirectorStore } from '../store.ts';
import type { TaskHandler } from '../types.ts';
import type { AgentClient } from './agent-client.ts';
import { renderPlanDiff } from './diff.ts';
import { applySpecOf, InstanceUpdateError, updateInstanceOnVm, type UpdaterDeps } from './instance-updater.ts';
import { planChanges } from './plan.ts';
import { deployedInstances, prepareDeploy, type PrepareDeps, type Prepared } from './preparation.ts';
import type { DeployedInstance, InstancePlan } from './types.ts';
import { groupStages, overridePolicy, skipsDrain, updateBatches, type PolicyOverrides } from './update-order.ts';
import { attachAndMount, createInstanceVm, deleteInstanceVm, listDisks, type VmDeps } from './vm-lifecycle.ts';

export interface DeployEngineDeps extends PrepareDeps {
  store: DirectorStore;
  blobs: Blobstore;
  cpi: Cpi | undefined;
  agents: () => Promise<AgentClient>;
  registerAgent: VmDeps['registerAgent'];
  unregisterAgent: VmDeps['unregisterAgent'];
  uploadPath(id: string): string;
  tmpDir: string;
  pingTimeoutMs: number;
  taskTimeoutMs?: number;
  watchPollMs?: number;
}

/** The task's params, as POST /deployments stores them; checked again since they come from the database. */
export const DeployParams = z
  .object({
    manifest: z.string().min(1),
    recreate: z.boolean().default(false),
    dry_run: z.boolean().default(false),
    /** Overrides of every group's update block for this deploy (`ingot deploy --canaries/--max-in-flight`). */
    canaries: z.number().int().min(0).optional(),
    max_in_flight: z.union([z.number(), z.string()]).refine((v) => parseMaxInFlight(v) !== undefined, 'expected a number of instances (2) or a percentage ("25%")').optional(),
    /** Groups whose instances are stopped without their drain scripts; `*` is every group (BOSH's --skip-drain). */
    skip_drain: z.array(z.string().min(1)).default([]),
  })
  .strict();
export type DeployParams = z.output<typeof DeployParams>;

function label(i: { group: string; index: number }, canary = false): string {
  return `${i.group}/${i.index}${canary ? ' (canary)' : ''}`;
}

/** Forgets VMs the CPI no longer has (their instances are then created again) and re-registers the agents of the others. */
async function reconcileVms(deps: DeployEngineDeps, cpi: Cpi, name: string, log: (l: string) => void): Promise<DeployedInstance[]> {
  for (const vm of await deps.store.vms(name)) {
    if (await cpi.has_vm(vm.cid)) {
      await deps.registerAgent(vm.agent_id);
      continue;
    }
    log(`VM ${vm.cid} (agent ${vm.agent_id}) is gone: its instance will be created again`);
    // What is left of it (an address claim, a network) would stand in the new VM's way.
    await cpi.delete_vm(vm.cid).catch((err: Error) => log(`deleting what is left of VM ${vm.cid}: ${err.message}`));
    await deps.store.deleteVm(vm.cid);
    await deps.unregisterAgent(vm.agent_id);
  }
  // Two VMs for one instance: a create-swap-delete cut short by a director that died. The older
  // VM is the one the instance's spec describes (its row still says updating, so it is recreated
  // anyway); the newer one goes.
  const seen = new Set<number>();
  const byAge = [...(await deps.store.vms(name))].sort((a, b) => a.created_at.localeCompare(b.created_at) || a.cid.localeCompare(b.cid));
  for (const vm of byAge) {
    if (vm.instance_id === null) continue;
    if (!seen.has(vm.instance_id)) {
      seen.add(vm.instance_id);
      continue;
    }
    log(`VM ${vm.cid} is a second VM of its instance, left by an interrupted create-swap-delete: deleting it`);
    await cpi.delete_vm(vm.cid).catch((err: Error) => log(`deleting VM ${vm.cid}: ${err.message}`));
    await deps.store.deleteVm(vm.cid);
    await deps.unregisterAgent(vm.agent_id);
  }
  return deployedInstances(deps.store, name);
}

export function deployHandler(deps: DeployEngineDeps): TaskHandler {
  return async (ctx) => {
    const parsed = DeployParams.safeParse(ctx.task.params);
    if (!parsed.success) throw new Error(`Reading the deploy task's params: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`).join('; ')}`);
    const params = parsed.data;
    const { events, log, signal } = ctx;
    const name = ctx.task.deployment ?? '';
    let deployed: DeployedInstance[] | undefined;
    if (!params.dry_run && deps.cpi) deployed = await reconcileVms(deps, deps.cpi, name, log);

    events.emit({ stage: 'Preparing deployment', task: 'Rendering templates', index: 1, total: 1, state: 'started', progress: 0 });
    let prepared: Prepared;
    try {
      prepared = await prepareDeploy(deps, params.manifest, { recreate: params.recreate, persistVariables: !params.dry_run, ...(deployed ? { deployed } : {}) });
    } catch (err) {
      events.emit({ stage: 'Preparing deployment', task: 'Rendering templates', index: 1, total: 1, state: 'failed', progress: 100, data: { error: (err as Error).message } });
      throw err;
    }
    events.emit({ stage: 'Preparing deployment', task: 'Rendering templates', index: 1, total: 1, state: 'finished', progress: 100 });
    const unknownGroups = params.skip_drain.filter((g) => g !== '*' && !prepared.plan.groups.some((p) => p.name === g));
    if (unknownGroups.length) {
      throw new Error(`Deploying ${name}: --skip-drain names ${unknownGroups.map((g) => `instance group ${g}`).join(', ')}, which the deployment does not have (groups: ${prepared.plan.groups.map((g) => g.name).join(', ')})`);
    }
    const overrides: PolicyOverrides = {
      ...(params.canaries !== undefined ? { canaries: params.canaries } : {}),
      ...(params.max_in_flight !== undefined ? { max_in_flight: parseMaxInFlight(params.max_in_flight)! } : {}),
    };
    const policyOf = (group: string) => overridePolicy(prepared.plan.groups.find((g) => g.name === group)!.update, overrides);
    const drainOf = (group: string) => !skipsDrain(params.skip_drain, group);
    const diff = renderPlanDiff(prepared.plan);
    for (const line of diff) log(`plan: ${line}`);
    const all = prepared.plan.groups.flatMap((g) => g.instances);
    const changing = all.filter((i) => i.action !== 'unchanged');
    if (params.dry_run) return `Dry run of ${name}: ${changing.length ? `${changing.length} instance${changing.length === 1 ? '' : 's'} would change` : 'no changes'}; nothing was changed`;
    if (!planChanges(prepared.plan)) {
      await deps.store.saveDeployment(name, prepared.manifestText, prepared.cloudConfigId);
      return `No changes: deployment ${name} is up to date`;
    }
    const cpi = deps.cpi;
    if (!cpi) throw new Error(`Deploying ${name}: the director has no CPI (set cpi_config in its config)`);
    // Checked before anything changes: a disk is created, attached or removed, never resized.
    const resized = changing.filter((i) => i.desired && i.deployed?.disk_cid && i.deployed.spec && i.desired.persistent_disk_mb > 0 && i.deployed.spec.persistent_disk_mb !== i.desired.persistent_disk_mb);
    if (resized.length) {
      throw new Error(`Deploying ${name}: resizing a persistent disk is not supported yet (${resized.map((i) => `${label(i)} ${i.deployed!.spec!.persistent_disk_mb} MB → ${i.desired!.persistent_disk_mb} MB`).join(', ')})`);
    }
    const agents = await deps.agents();
    await deps.store.saveDeployment(name, prepared.manifestText, prepared.cloudConfigId);

    // The rendered jobs of every instance that will be applied, in the blobstore.
    for (const i of changing) {
      if (!i.desired) continue;
      for (const r of prepared.desired.rendered.get(i.uuid) ?? []) await deps.blobs.put(r.tarball);
    }

    const vmDeps: VmDeps = { store: deps.store, cpi, registerAgent: deps.registerAgent, unregisterAgent: deps.unregisterAgent, agents, pingTimeoutMs: deps.pingTimeoutMs, log };
    const rows = async () => new Map((await deps.store.instances(name)).map((r) => [`${r.instance_group}/${r.idx}`, r]));
    /** The instance's row, created when missing; its state set. */
    const ensureRow = async (i: InstancePlan, state: string): Promise<number> =>
      deps.store.saveInstance({
        deployment: name,
        instance_group: i.group,
        idx: i.index,
        uuid: i.uuid,
        az: i.desired?.az ?? null,
        state,
        bootstrap: i.index === 0,
        spec: (i.deployed?.spec ?? {}) as unknown as Record<string, unknown>,
      });
    const stemcellCid = (i: InstancePlan): string => {
      const s = prepared.stemcells.get(`${i.desired!.stemcell.os}/${i.desired!.stemcell.version}`);
      if (!s?.cpi_cid) throw new Error(`stemcell ${i.desired!.stemcell.os}/${i.desired!.stemcell.version} has no CPI cid`);
      return s.cpi_cid;
    };
    const vmOf = new Map<string, { cid: string; agent_id: string }>();
    for (const i of all) if (i.deployed?.vm) vmOf.set(i.uuid, i.deployed.vm);

    // ---- create missing VMs, in parallel -------------------------------------------------------
    const creates = changing.filter((i) => i.action === 'create');
    const failures: string[] = [];
    await Promise.all(
      creates.map(async (i, n) => {
        const ev = { stage: 'Creating missing vms', task: `${label(i)} (${i.uuid})`, index: n + 1, total: creates.length };
        events.emit({ ...ev, state: 'started', progress: 0 });
        try {
          const id = await ensureRow(i, 'creating');
          const vm = await createInstanceVm(vmDeps, name, id, i.desired!, stemcellCid(i), i.deployed?.disk_cid ?? null, signal);
          vmOf.set(i.uuid, vm);
          await ensureRow(i, 'created');
          events.emit({ ...ev, state: 'finished', progress: 100 });
        } catch (err) {
          events.emit({ ...ev, state: 'failed', progress: 100, data: { error: (err as Error).message } });
          failures.push(`Creating VM for ${label(i)}: ${(err as Error).message}`);
        }
      }),
    );
    if (failures.length) throw new Error(failures.length === 1 ? failures[0] : `${failures.length} VMs could not be created:\n  ${failures.join('\n  ')}`);

    // ---- update groups in order: canaries, then batches ----------------------------------------
    const updater: UpdaterDeps = {
      agents,
      uploadPath: deps.uploadPath,
      tmpDir: deps.tmpDir,
      log,
      ...(deps.taskTimeoutMs ? { taskTimeoutMs: deps.taskTimeoutMs } : {}),
      ...(deps.watchPollMs ? { watchPollMs: deps.watchPollMs } : {}),
    };
    const counts = { created: creates.length, updated: 0, recreated: 0, deleted: 0 };
    // Instances stopped by `ingot stop` get the new spec but stay stopped (BOSH keeps them so).
    const keptStopped = new Set((await deps.store.instances(name)).filter((r) => r.desired_state === 'stopped').map((r) => r.uuid));
    /** A disk the group now has is created and attached (the CPI mounts it); one it no longer has is detached and deleted. */
    const reconcileDisk = async (i: InstancePlan, id: number, vm: { cid: string }): Promise<void> => {
      const disks = (await deps.store.disks(name)).filter((d) => d.instance_id === id);
      const want = i.desired!.persistent_disk_mb;
      if (want > 0 && disks.length === 0) {
        const disk = await cpi.create_disk(want, i.desired!.persistent_disk_cloud_properties, vm.cid);
        await deps.store.saveDisk({ cid: disk, deployment: name, instance_id: id, size_mb: want });
        await cpi.attach_disk(vm.cid, disk);
        log(`${label(i)}: created and attached disk ${disk} (${want} MB)`);
      } else if (want === 0) {
        for (const d of disks) {
          await cpi.detach_disk(vm.cid, d.cid).catch((err: Error) => log(`${label(i)}: detaching disk ${d.cid}: ${err.message}`));
          await cpi.delete_disk(d.cid);
          await deps.store.deleteDisk(d.cid);
          log(`${label(i)}: deleted disk ${d.cid}`);
        }
      }
    };
    /** Drain (unless skipped) and stop the jobs of a VM about to go; a failure is logged, the VM goes anyway. */
    const stopOldJobs = async (i: InstancePlan, vm: { agent_id: string }, drain: boolean): Promise<void> => {
      if (drain) await agents.task(vm.agent_id, 'drain', ['shutdown'], 600_000, signal).catch((err: Error) => log(`${label(i)}: drain: ${err.message}`));
      else log(`${label(i)}: drain skipped (--skip-drain)`);
      await agents.task(vm.agent_id, 'stop', [], 600_000, signal).catch((err: Error) => log(`${label(i)}: stop: ${err.message}`));
    };
    /**
     * create-swap-delete: a new VM (on its new address) is created, applied, started and watched
     * while the old one keeps running; only then is the old one drained, stopped and deleted. A
     * new VM that does not come up is deleted and the old one keeps serving, as it was. An
     * instance's persistent disk is on one VM at a time: the new VM is made while the old one
     * serves, then the old one stops, the disk moves over and the new one starts on it; if it
     * does not come up, the disk goes back and the old one starts again.
     */
    const swapVm = async (
      i: InstancePlan,
      id: number,
      old: { cid: string; agent_id: string },
      wasApplied: boolean,
      lbl: string,
      spec: ApplySpec,
      watch: WatchTime,
      o: { start: boolean; drain: boolean },
    ): Promise<{ cid: string; agent_id: string }> => {
      const disk = i.deployed?.disk_cid ?? null;
      // Made without a disk when the instance has one already: that one moves over at the swap.
      const fresh = await createInstanceVm(vmDeps, name, id, disk ? { ...i.desired!, persistent_disk_mb: 0 } : i.desired!, stemcellCid(i), null, signal);
      log(`${lbl}: created VM ${fresh.cid} next to VM ${old.cid} (create-swap-delete): the old one runs until the new one ${disk ? 'takes its disk' : 'does'}`);
      try {
        if (disk) {
          if (wasApplied) await stopOldJobs(i, old, o.drain);
          await detachQuietly(lbl, old, disk);
          await attachAndMount(cpi, agents, fresh, disk);
          log(`${lbl}: disk ${disk} moved from VM ${old.cid} to VM ${fresh.cid}`);
        }
        await updateInstanceOnVm(updater, lbl, fresh.agent_id, spec, false, watch, signal, undefined, o);
      } catch (err) {
        if (disk) await agents.task(fresh.agent_id, 'stop', [], 600_000, signal).catch(() => undefined);
        if (disk) await detachQuietly(lbl, fresh, disk);
        await deleteInstanceVm(vmDeps, fresh).catch((e: Error) => log(`${lbl}: deleting the new VM ${fresh.cid}: ${e.message}`));
        if (disk) await putBack(lbl, old, disk, wasApplied && o.start);
        throw err;
      }
      if (wasApplied && !disk) await stopOldJobs(i, old, o.drain);
      await deleteInstanceVm(vmDeps, old);
      log(`${lbl}: VM ${old.cid} replaced by VM ${fresh.cid}`);
      return fresh;
    };
    /** A detach that fails (the disk is not there, the VM is gone) is logged: the attach that follows says what matters. */
    const detachQuietly = (lbl: string, vm: { cid: string }, disk: string): Promise<unknown> =>
      cpi.detach_disk(vm.cid, disk).catch((err: Error) => log(`${lbl}: detaching disk ${disk} from VM ${vm.cid}: ${err.message}`));
    /** After a swap that failed once the old VM had stopped: its disk back on it, its jobs started again (the task still fails). */
    const putBack = async (lbl: string, old: { cid: string; agent_id: string }, disk: string, start: boolean): Promise<void> => {
      try {
        if (!(await listDisks(agents, old.agent_id)).has(disk)) await attachAndMount(cpi, agents, old, disk);
        if (start) await agents.request(old.agent_id, 'start', []);
        log(`${lbl}: VM ${old.cid} ${start ? 'runs again' : 'is back'} on its disk ${disk}`);
      } catch (err) {
        log(`${lbl}: putting VM ${old.cid} back on its disk ${disk}: ${(err as Error).message}`);
      }
    };
    const updateOne = async (i: InstancePlan, canary: boolean, n: number, total: number): Promise<void> => {
      const ev = { stage: 'Updating instance', task: label(i, canary), index: n, total };
      // Recorded before it is announced: whoever sees the event finds the state in the store.
      const id = await ensureRow(i, 'updating');
      events.emit({ ...ev, state: 'started', progress: 0 });
      try {
        let vm = vmOf.get(i.uuid)!;
        let applied = i.action !== 'create' && Boolean(i.deployed?.spec);
        const policy = policyOf(i.group);
        const spec = applySpecOf(name, i.desired!, new Map());
        const watch = canary ? policy.canary_watch_time : policy.update_watch_time;
        const o = { start: !keptStopped.has(i.uuid), drain: drainOf(i.group) };
        if (i.action === 'recreate' && prepared.swapped.has(i.uuid)) {
          vm = await swapVm(i, id, vm, applied, label(i, canary), spec, watch, o);
          vmOf.set(i.uuid, vm);
        } else {
          if (i.action === 'recreate') {
            if (applied) await stopOldJobs(i, vm, o.drain);
            if (i.deployed?.disk_cid) await cpi.detach_disk(vm.cid, i.deployed.disk_cid).catch((err: Error) => log(`${label(i)}: detaching disk: ${err.message}`));
            await deleteInstanceVm(vmDeps, vm);
            vm = await createInstanceVm(vmDeps, name, id, i.desired!, stemcellCid(i), i.deployed?.disk_cid ?? null, signal);
            vmOf.set(i.uuid, vm);
            applied = false;
          }
          const on = vm;
          await updateInstanceOnVm(updater, label(i, canary), vm.agent_id, spec, applied, watch, signal, () => reconcileDisk(i, id, on), o);
        }
        await deps.store.saveInstance({
          deployment: name,
          instance_group: i.group,
          idx: i.index,
          uuid: i.uuid,
          az: i.desired!.az,
          state: 'running',
          bootstrap: i.index === 0,
          spec: i.desired as unknown as Record<string, unknown>,
        });
        if (i.action === 'update') counts.updated++;
        if (i.action === 'recreate') counts.recreated++;
        events.emit({ ...ev, state: 'finished', progress: 100 });
      } catch (err) {
        await ensureRow(i, 'failed').catch(() => undefined);
        events.emit({ ...ev, state: 'failed', progress: 100, data: { error: (err as Error).message } });
        throw err;
      }
    };
    const groupsWanted = prepared.plan.groups.filter((g) => g.instances.some((i) => i.desired));
    for (const stage of groupStages(groupsWanted)) {
      await Promise.all(
        stage.map(async (g) => {
          const items = g.instances.filter((i) => i.action === 'create' || i.action === 'update' || i.action === 'recreate');
          const size = g.instances.filter((i) => i.desired).length;
          let n = 0;
          for (const batch of updateBatches(items, policyOf(g.name), size, (i) => i.desired?.az, g.azs)) {
            signal.throwIfAborted();
            const results = await Promise.allSettled(batch.items.map((i) => updateOne(i, batch.canary, ++n, items.length)));
            const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
            if (failed) throw failed.reason instanceof InstanceUpdateError ? failed.reason : new Error(`Updating instance group ${g.name}: ${(failed.reason as Error).message}`, { cause: failed.reason });
          }
        }),
      );
    }

    // ---- delete what is no longer wanted -------------------------------------------------------
    const deletes = changing.filter((i) => i.action === 'delete');
    const current = await rows();
    for (const [n, i] of deletes.entries()) {
      signal.throwIfAborted();
      const ev = { stage: 'Deleting unneeded instances', task: `${label(i)} (${i.uuid})`, index: n + 1, total: deletes.length };
      events.emit({ ...ev, state: 'started', progress: 0 });
      try {
        const vm = i.deployed?.vm;
        if (vm) {
          await stopOldJobs(i, vm, drainOf(i.group));
          await deleteInstanceVm(vmDeps, vm);
        }
        if (i.deployed?.disk_cid) {
          await cpi.delete_disk(i.deployed.disk_cid);
          await deps.store.deleteDisk(i.deployed.disk_cid);
        }
        const row = current.get(`${i.group}/${i.index}`);
        if (row) await deps.store.deleteInstance(row.id);
        counts.deleted++;
        events.emit({ ...ev, state: 'finished', progress: 100 });
      } catch (err) {
        events.emit({ ...ev, state: 'failed', progress: 100, data: { error: (err as Error).message } });
        throw new Error(`Deleting instance ${label(i)}: ${(err as Error).message}`, { cause: err });
      }
    }
    return `Deployed ${name}: ${counts.created} created, ${counts.updated} updated, ${counts.recreated} recreated, ${counts.deleted} deleted`;
  };
}


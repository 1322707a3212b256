// The delete_deployment task: for each VM, delete it through the CPI (when one is wired) and
// withdraw its agent's mbus credential; then the disks; then the deployment's records. Each
// step is an event; cancellation stops between steps.
import type { Cpi } from '../cpi/types.ts';
import type { Mbus } from './mbus.ts';
import type { DirectorStore } from './store.ts';
import type { TaskHandler } from './types.ts';

export function deleteDeploymentHandler(deps: { store: DirectorStore; mbus: Mbus; cpi?: Cpi }): TaskHandler {
  return async ({ task, events, signal, log }) => {
    const name = String(task.params.name);
    const vms = await deps.store.vms(name);
    const disks = await deps.store.disks(name);
    const step = async (stage: string, items: string[], fn: (item: string) => Promise<void>): Promise<void> => {
      for (const [i, item] of items.entries()) {
        signal.throwIfAborted();
        events.emit({ stage, task: item, index: i + 1, total: items.length, state: 'started', progress: 0 });
        try {
          await fn(item);
        } catch (err) {
          events.emit({ stage, task: item, index: i + 1, total: items.length, state: 'failed', progress: 100, data: { error: (err as Error).message } });
          throw new Error(`${stage} ${item}: ${(err as Error).message}`, { cause: err });
        }
        events.emit({ stage, task: item, index: i + 1, total: items.length, state: 'finished', progress: 100 });
      }
    };
    await step('Deleting VMs', vms.map((v) => v.cid), async (cid) => {
      const vm = vms.find((v) => v.cid === cid)!;
      if (deps.cpi) await deps.cpi.delete_vm(cid);
      else log(`no CPI is wired: VM ${cid} is only forgotten`);
      await deps.mbus.unregisterAgent(vm.agent_id);
      await deps.store.deleteVm(cid);
    });
    await step('Deleting disks', disks.map((d) => d.cid), async (cid) => {
      if (deps.cpi) await deps.cpi.delete_disk(cid);
      else log(`no CPI is wired: disk ${cid} is only forgotten`);
    });
    signal.throwIfAborted();
    await deps.store.deleteDeployment(name);
    events.emit({ stage: 'Deleting deployment', task: name, index: 1, total: 1, state: 'finished', progress: 100 });
    return `/deployments/${name}`;
  };
}

// The health monitor and the repairs it and operators ask for: installHealthMonitor is what
// startDirector calls. It registers the `recreate`, `scan_and_fix`, `cck_scan` and `cck_apply`
// tasks (deploy/recreate-instance.ts, deploy/cloud-check.ts) and their routes, the events and
// resurrection routes, and starts the monitor when the config enables it.
import type { Cpi } from '../cpi/types.ts';
import type { Director } from '../director/main.ts';
import { lazyAgentClient } from '../director/deploy/agent-client.ts';
import { cloudCheckApplyHandler, cloudCheckScanHandler } from '../director/deploy/cloud-check.ts';
import { registerCloudCheckRoutes } from '../director/deploy/cloud-check-routes.ts';
import { vmTaskDeps, type DeployEngineOptions } from '../director/deploy/mod.ts';
import { recreateHandler, scanAndFixHandler } from '../director/deploy/recreate-instance.ts';
import { HealthMonitor } from './health-monitor.ts';
import { registerHealthMonitorRoutes } from './routes.ts';

export { HealthMonitor, RESURRECTION_PAUSED, HM_USER, type AlertContext } from './health-monitor.ts';
export * from './analysis.ts';

export type HealthMonitorOptions = DeployEngineOptions;

/**
 * Wires it into a director at once (tasks and routes are registered before anything awaits, so
 * tasks queued before a restart find their handlers); `start` begins watching, `stop` ends it.
 */
export function installHealthMonitor(d: Director, cpi: Cpi | undefined, o: HealthMonitorOptions): { start: () => Promise<void>; stop: () => Promise<void> } {
  const { agents, close } = lazyAgentClient(d.mbus.directorCredential, `${o.uuid}-hm`);
  const deps = vmTaskDeps(d, cpi, o, agents);
  d.tasks.register('recreate', recreateHandler(deps));
  d.tasks.register('scan_and_fix', scanAndFixHandler(deps));
  d.tasks.register('cck_scan', cloudCheckScanHandler(deps));
  d.tasks.register('cck_apply', cloudCheckApplyHandler(deps));
  registerCloudCheckRoutes(d.api, { store: d.store, tasks: d.tasks });
  registerHealthMonitorRoutes(d.api, { store: d.store, config: d.config.health_monitor });

  const config = d.config.health_monitor;
  const monitor = config.enabled
    ? new HealthMonitor({ config, store: d.store, tasks: d.tasks, cpi, credential: { ...d.mbus.healthMonitorCredential, url: d.mbus.directorCredential.url }, log: d.log })
    : undefined;
  return {
    start: async () => monitor?.start(),
    stop: async () => {
      await monitor?.stop();
      await close();
    },
  };
}

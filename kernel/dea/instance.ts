// An instance as the DEA knows it: what it was asked to run, where it runs, and its state.
// The registry is plain data so it can be persisted (adoption after a DEA restart) and
// filtered by the pure matchers below (dea.stop, dea.find.droplet).
import type { DeaFindDroplet, DeaStart, DeaStop, InstanceState } from '../bus/mod.ts';

export interface Instance {
  instance_id: string;
  app_id: string;
  app_name: string;
  index: number;
  version: string;
  state: InstanceState;
  /** Seconds since the epoch, as on the wire. */
  state_timestamp: number;
  uris: string[];
  droplet_sha256: string;
  memory_mb: number;
  disk_mb: number;
  host_port: number;
  /** Container port (PORT inside). */
  port: number;
  started_at: number;
  /** The whole start message, so an adopted instance can be described and re-registered. */
  start: DeaStart;
  /** Set once the DEA reported it evacuating. */
  evacuating?: boolean;
  exit_description?: string;
  exit_status?: number;
}

export const ACTIVE_STATES: readonly InstanceState[] = ['STARTING', 'RUNNING', 'EVACUATING'];

export function isActive(i: Instance): boolean {
  return ACTIVE_STATES.includes(i.state);
}

/** Does a dea.stop or dea.find.droplet filter select this instance? Absent filters match all. */
export function matches(i: Instance, f: DeaStop | DeaFindDroplet): boolean {
  if (i.app_id !== f.app_id) return false;
  if (f.version !== undefined && i.version !== f.version) return false;
  if (f.instance_ids !== undefined && !f.instance_ids.includes(i.instance_id)) return false;
  if (f.indices !== undefined && !f.indices.includes(i.index)) return false;
  if (f.states !== undefined && !f.states.includes(i.state)) return false;
  return true;
}

/** Running and starting instances per app: what placement and dea.advertise report. */
export function appCounts(instances: Iterable<Instance>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const i of instances) if (isActive(i)) counts[i.app_id] = (counts[i.app_id] ?? 0) + 1;
  return counts;
}

export function reservedMemoryMb(instances: Iterable<Instance>): number {
  let mb = 0;
  for (const i of instances) if (isActive(i)) mb += i.memory_mb;
  return mb;
}

export function reservedDiskMb(instances: Iterable<Instance>): number {
  let mb = 0;
  for (const i of instances) if (isActive(i) || i.state === 'CRASHED') mb += i.disk_mb;
  return mb;
}

export function nowSeconds(): number {
  return Date.now() / 1000;
}

// The health managers' requests (`cloudcontrollers.hm.requests`): the HM notices, the
// controller decides. A request is carried out only while the controller still agrees with
// it — the HM's view may be stale (the app was stopped, scaled or restarted since). These
// are the pure decisions; the runner (app-runner.ts) carries out what is agreed and records
// each agreed request as the app's audit event (app-events.ts: hm_start, hm_stop).
import type { HmRequest } from '../bus/mod.ts';

/** The app as the controller wants it. Undefined when the app no longer exists. */
export interface DesiredApp {
  state: 'STARTED' | 'STOPPED';
  version: string;
  instances: number;
  has_droplet: boolean;
  /** A rolling restart owns the app's instances until it ends. */
  rolling: boolean;
}

/** An instance as the DEAs report it (dea.find.droplet). */
export interface ObservedInstance {
  instance_id: string;
  index: number;
  version: string;
  state: string;
}

export type Decision =
  | { act: false; reason: string }
  | { act: true; indices?: number[]; instance_ids?: string[]; version?: string; partial?: string };

export function decideStart(app: DesiredApp | undefined, req: HmRequest): Decision {
  if (!app) return { act: false, reason: 'the app no longer exists' };
  if (app.rolling) return { act: false, reason: 'a rolling restart is replacing the instances' };
  if (app.state !== 'STARTED') return { act: false, reason: 'the app is stopped' };
  if (req.version !== app.version) return { act: false, reason: `version ${req.version} is not the current version ${app.version}` };
  if (!app.has_droplet) return { act: false, reason: 'the app has no droplet' };
  const asked = [...new Set(req.indices ?? [])];
  if (asked.length === 0) return { act: false, reason: 'no indices given' };
  const indices = asked.filter((i) => i < app.instances).sort((a, b) => a - b);
  if (indices.length === 0) return { act: false, reason: `every index is beyond the ${app.instances} desired instances` };
  return indices.length === asked.length ? { act: true, indices } : { act: true, indices, partial: `indices ≥ ${app.instances} ignored` };
}

/**
 * STOP is agreed for instances that are extra: the app is gone or stopped, the instance is
 * of another version, its index is beyond the desired count, or (by instance id) another
 * RUNNING instance of the current version holds the same index (a duplicate, e.g. left by an
 * evacuation).
 */
export function decideStop(app: DesiredApp | undefined, req: HmRequest, observed: ObservedInstance[] = []): Decision {
  if (app?.rolling) return { act: false, reason: 'a rolling restart is replacing the instances' };
  const whole = !app || app.state === 'STOPPED' || req.version !== app.version;
  const ids = req.instance_ids ?? [];
  const indices = req.indices ?? [];
  if (ids.length === 0 && indices.length === 0) {
    return whole ? { act: true, version: req.version } : { act: false, reason: 'the request names no instances and the version is current' };
  }
  if (ids.length > 0) {
    if (whole) return { act: true, instance_ids: ids };
    const agreed = ids.filter((id) => {
      const inst = observed.find((o) => o.instance_id === id);
      if (!inst) return false;
      if (inst.version !== app.version || inst.index >= app.instances) return true;
      return observed.some((o) => o.instance_id !== id && o.index === inst.index && o.version === app.version && o.state === 'RUNNING');
    });
    if (agreed.length === 0) return { act: false, reason: 'every named instance is one the app still needs' };
    return agreed.length === ids.length ? { act: true, instance_ids: agreed } : { act: true, instance_ids: agreed, partial: 'instances the app still needs were kept' };
  }
  if (whole) return { act: true, indices: [...new Set(indices)].sort((a, b) => a - b), version: req.version };
  const extra = [...new Set(indices)].filter((i) => i >= app.instances).sort((a, b) => a - b);
  if (extra.length === 0) return { act: false, reason: `every index is within the ${app.instances} desired instances` };
  return { act: true, indices: extra, version: req.version };
}

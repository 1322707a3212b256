// What a change of an app's desired state means for its instances, as pure functions: which
// indices to start and stop when scaling, and the order of a rolling restart. The runner
// (app-runner.ts) carries the plans out over NATS.

export interface ScalePlan {
  /** Indices to place (discover + start), in order. */
  start: number[];
  /** Indices to stop: always the highest, so the survivors keep indices 0…n-1. */
  stop: number[];
}

export function planScale(current: number, desired: number): ScalePlan {
  if (!Number.isInteger(current) || !Number.isInteger(desired) || current < 0 || desired < 0) {
    throw new RangeError(`instance counts must be non-negative integers (got ${current} → ${desired})`);
  }
  return {
    start: range(current, desired),
    stop: range(desired, current),
  };
}

/** How a change of a STARTED process reaches its instances. */
export type ProcessChange = { kind: 'none' } | { kind: 'scale'; plan: ScalePlan } | { kind: 'restart' };

export interface ProcessShape {
  instances: number;
  memory_in_mb: number;
  disk_in_mb: number;
}

/**
 * Instances are resized only by replacing them: a new memory or disk limit means a restart
 * (a new version); a new count alone starts or stops indices of the running version.
 */
export function planProcessChange(started: boolean, before: ProcessShape, after: ProcessShape): ProcessChange {
  if (!started) return { kind: 'none' };
  if (before.memory_in_mb !== after.memory_in_mb || before.disk_in_mb !== after.disk_in_mb) return { kind: 'restart' };
  if (before.instances === after.instances) return { kind: 'none' };
  return { kind: 'scale', plan: planScale(before.instances, after.instances) };
}

/** A rolling restart replaces one index at a time, lowest first. */
export function rollingOrder(instances: number): number[] {
  return range(0, instances);
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) out.push(i);
  return out;
}

// The rolling order (pure): which instances of a group are updated together. Instances roll
// availability zone by zone, in the order of the group's `azs` (BOSH's order: losing a zone's
// worth of capacity at a time is what a multi-AZ layout is built to survive, losing some of
// every zone is not). Canaries come first (from the first zone), then batches of max_in_flight
// (a percentage of the group's desired size) that never span two zones. Groups go one after
// another, except that consecutive groups with `serial: false` run side by side.
import { inFlight, type MaxInFlight, type UpdatePolicy } from '../../manifest/mod.ts';

export interface Batch<T> {
  canary: boolean;
  items: T[];
}

/** Per-deploy overrides of every group's update block (`ingot deploy --canaries/--max-in-flight`). */
export interface PolicyOverrides {
  canaries?: number;
  max_in_flight?: MaxInFlight;
}

export function overridePolicy(policy: UpdatePolicy, o: PolicyOverrides): UpdatePolicy {
  return { ...policy, ...(o.canaries !== undefined ? { canaries: o.canaries } : {}), ...(o.max_in_flight ? { max_in_flight: o.max_in_flight } : {}) };
}

/** `items` stably ordered zone by zone: the zones of `azs` in order, then any other zone in order of first appearance. */
export function orderByZone<T>(items: readonly T[], azOf: (item: T) => string | undefined, azs: readonly string[]): T[][] {
  const zones = new Map<string, T[]>(azs.map((az) => [az, []]));
  for (const item of items) {
    const az = azOf(item) ?? '';
    (zones.get(az) ?? zones.set(az, []).get(az)!).push(item);
  }
  return [...zones.values()].filter((z) => z.length > 0);
}

/**
 * Batches of `items` (already in index order) under `policy`; `groupSize` is the desired
 * instance count. With `azOf`, items roll zone by zone in the order of `azs`.
 */
export function updateBatches<T>(items: readonly T[], policy: UpdatePolicy, groupSize: number, azOf?: (item: T) => string | undefined, azs: readonly string[] = []): Array<Batch<T>> {
  const zones = azOf ? orderByZone(items, azOf, azs) : items.length ? [[...items]] : [];
  const out: Array<Batch<T>> = [];
  let canaries = Math.min(policy.canaries, items.length);
  if (canaries > 0) out.push({ canary: true, items: zones.flat().slice(0, canaries) });
  const size = Math.max(1, inFlight(policy.max_in_flight, Math.max(groupSize, 1)));
  for (const zone of zones) {
    // The canaries came off the front of the first zones.
    const skip = Math.min(canaries, zone.length);
    canaries -= skip;
    for (let i = skip; i < zone.length; i += size) out.push({ canary: false, items: zone.slice(i, i + size) });
  }
  return out;
}

/** Groups in manifest order, as stages: a stage of several groups runs them side by side. */
export function groupStages<G extends { update: UpdatePolicy }>(groups: readonly G[]): G[][] {
  const stages: G[][] = [];
  for (const g of groups) {
    const last = stages.at(-1);
    if (g.update.serial === false && last && last.every((x) => x.update.serial === false)) last.push(g);
    else stages.push([g]);
  }
  return stages;
}

/** Whether `--skip-drain` covers a group: `['*']` is every group (BOSH's bare flag), else the named ones. */
export function skipsDrain(skipDrain: readonly string[], group: string): boolean {
  return skipDrain.includes('*') || skipDrain.includes(group);
}

// The rolling order (pure): which instances of a group are updated together. Canaries first,
// one batch each of `canaries` instances, then batches of max_in_flight (a percentage of the
// group's desired size); groups go one after another, except that consecutive groups with
// `serial: false` run side by side.
import { inFlight, type UpdatePolicy } from '../../manifest/mod.ts';

export interface Batch<T> {
  canary: boolean;
  items: T[];
}

/** Batches of `items` (already in index order) under `policy`; `groupSize` is the desired instance count. */
export function updateBatches<T>(items: readonly T[], policy: UpdatePolicy, groupSize: number): Array<Batch<T>> {
  const out: Array<Batch<T>> = [];
  const canaries = Math.min(policy.canaries, items.length);
  if (canaries > 0) out.push({ canary: true, items: items.slice(0, canaries) });
  const size = Math.max(1, inFlight(policy.max_in_flight, Math.max(groupSize, 1)));
  for (let i = canaries; i < items.length; i += size) out.push({ canary: false, items: items.slice(i, i + size) });
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

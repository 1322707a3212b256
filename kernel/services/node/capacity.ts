// A node's capacity and ports, as functions of data: which units are taken, what fits, which
// port a new unit gets. The node around them does the I/O.
import type { PlanLimits } from './config.ts';

export interface CapacityView {
  /** Units still free on the node. */
  available: number;
  /** How many more instances of each plan fit. */
  per_plan: Record<string, number>;
}

export function capacityOf(plans: Record<string, PlanLimits>, capacity: number, unitPlans: Iterable<string>): CapacityView {
  let used = 0;
  // A unit whose plan has left the config still holds what it took; count it as one unit.
  for (const plan of unitPlans) used += plans[plan]?.capacity_units ?? 1;
  const available = Math.max(0, capacity - used);
  const per_plan = Object.fromEntries(Object.entries(plans).map(([name, p]) => [name, Math.floor(available / p.capacity_units)]));
  return { available, per_plan };
}

/** Why a plan does not fit, or undefined when it does. */
export function refuseCapacity(nodeId: string, planName: string, plan: PlanLimits, view: CapacityView): string | undefined {
  if (plan.capacity_units <= view.available) return undefined;
  return `no capacity: node ${nodeId} has ${view.available} free unit(s) and plan ${planName} needs ${plan.capacity_units}`;
}

/** Ports of the range not in `taken`, lowest first. */
export function* freePorts(range: { min: number; max: number }, taken: ReadonlySet<number>): Generator<number> {
  for (let port = range.min; port <= range.max; port++) if (!taken.has(port)) yield port;
}

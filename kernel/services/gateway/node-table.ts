// The nodes a gateway knows, from their announcements: what each still takes per plan and
// when it was last heard. A node silent for 3 of its announce intervals is gone. Choosing a
// node is a function of this data: the one with the most room for the plan.
import type { ServiceNodeAnnounce } from '../../bus/mod.ts';

export interface NodeEntry {
  node_id: string;
  plans: string[];
  available: number;
  plan_capacity: Record<string, number> | undefined;
  heard_at: number;
  interval_ms: number;
}

export const SILENT_INTERVALS = 3;

export class NodeTable {
  private readonly nodes = new Map<string, NodeEntry>();

  constructor(private readonly defaultIntervalMs: number) {}

  hear(msg: ServiceNodeAnnounce, now: number): void {
    this.nodes.set(msg.node_id, {
      node_id: msg.node_id,
      plans: msg.plans,
      available: msg.available_capacity,
      plan_capacity: msg.plan_capacity,
      heard_at: now,
      interval_ms: (msg.interval_s ?? this.defaultIntervalMs / 1000) * 1000,
    });
  }

  /** After a provision on a node, until it announces again: one fewer of that plan fits. */
  took(nodeId: string, plan: string): void {
    const n = this.nodes.get(nodeId);
    if (n?.plan_capacity?.[plan] !== undefined) n.plan_capacity[plan] = Math.max(0, n.plan_capacity[plan] - 1);
    else if (n) n.available = Math.max(0, n.available - 1);
  }

  forget(nodeId: string): void {
    this.nodes.delete(nodeId);
  }

  alive(now: number): NodeEntry[] {
    return [...this.nodes.values()].filter((n) => isAlive(n, now));
  }
}

export function isAlive(n: NodeEntry, now: number): boolean {
  return now - n.heard_at <= SILENT_INTERVALS * n.interval_ms;
}

/** How many more instances of `plan` fit on the node, as it last said. */
export function roomFor(n: NodeEntry, plan: string): number {
  if (!n.plans.includes(plan)) return 0;
  return n.plan_capacity?.[plan] ?? n.available;
}

/** Alive nodes with room for the plan, most room first (ties: by node id, so every gateway agrees). */
export function rankNodes(nodes: NodeEntry[], plan: string, now: number): NodeEntry[] {
  return nodes
    .filter((n) => isAlive(n, now) && roomFor(n, plan) > 0)
    .sort((a, b) => roomFor(b, plan) - roomFor(a, plan) || (a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : 0));
}

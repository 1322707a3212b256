// Placement, the DEA's side (DESIGN.md §3, the "delay taint"): a DEA that can run an app
// answers dea.discover after a delay that grows with the instances of that app it already
// runs and with its load, so the controller — which takes the first reply — spreads an app
// across DEAs and balances the pool without anyone precomputing a plan.
import type { DeaDiscover } from '../bus/mod.ts';

export interface PlacementState {
  stacks: string[];
  draining: boolean;
  totalMemoryMb: number;
  availableMemoryMb: number;
  totalDiskMb: number;
  availableDiskMb: number;
  /** Running and starting instances per app id. */
  appCounts: Record<string, number>;
  /** Recent CPU load of the host, 0..1 (all cores). */
  cpuLoad: number;
}

export interface TaintWeights {
  /** Added per instance of the same app already here: the spreading term. */
  perInstanceMs: number;
  /** Added at full memory use: the balancing term. */
  memoryMs: number;
  /** Added at full CPU load. */
  cpuMs: number;
  /** The delay never exceeds this (controllers wait only so long). */
  maxMs: number;
}

export const defaultTaintWeights: TaintWeights = { perInstanceMs: 100, memoryMs: 50, cpuMs: 25, maxMs: 400 };

export type Fit = { ok: true } | { ok: false; reason: string };

export function fits(state: PlacementState, req: DeaDiscover): Fit {
  if (state.draining) return { ok: false, reason: 'draining' };
  if (!state.stacks.includes(req.stack)) return { ok: false, reason: `stack ${req.stack} not offered` };
  if (req.memory_mb > state.availableMemoryMb) return { ok: false, reason: `needs ${req.memory_mb} MB memory, ${state.availableMemoryMb} MB free` };
  if (req.disk_mb > state.availableDiskMb) return { ok: false, reason: `needs ${req.disk_mb} MB disk, ${state.availableDiskMb} MB free` };
  return { ok: true };
}

/** How long this DEA waits before answering a discover for `appId`. Pure. */
export function taintMs(state: PlacementState, appId: string, w: TaintWeights = defaultTaintWeights): number {
  const same = state.appCounts[appId] ?? 0;
  const memUsed = state.totalMemoryMb > 0 ? 1 - state.availableMemoryMb / state.totalMemoryMb : 1;
  const cpu = Math.min(1, Math.max(0, state.cpuLoad));
  const taint = same * w.perInstanceMs + clamp01(memUsed) * w.memoryMs + cpu * w.cpuMs;
  return Math.round(Math.min(w.maxMs, taint));
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}

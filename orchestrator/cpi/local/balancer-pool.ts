// The balancer's pure core: which backend a new connection goes to, and how health checks move
// a backend in and out of rotation. No I/O; balancer.ts feeds it events and reads its answers.
//
// Health is asymmetric on purpose: one failed check (a 503 while a router drains, a timeout,
// a refused connection) takes a backend out at once, because DESIGN.md §7 promises a draining
// router stops getting new connections within a second; coming back takes `rise` good checks
// in a row so a flapping backend is not hammered. A backend just added (start, reload) is
// `unknown` and enters on its first good check: waiting for `rise` would delay start-up.

import type { BackendConfig } from './balancer-config.ts';

export type BackendHealth = 'unknown' | 'up' | 'down';

export interface BackendState {
  /** host:port, plus the health endpoint: the identity kept across reloads. */
  key: string;
  config: BackendConfig;
  health: BackendHealth;
  /** Good checks in a row while down. */
  rises: number;
  /** Connections open through it now. */
  active: number;
  /** Connections it was given since it was added. */
  total: number;
  /** Why it is down, for the status endpoint. */
  lastError?: string;
}

export function backendKey(b: BackendConfig): string {
  return `${b.host}:${b.port}/${b.health.port}${b.health.path}`;
}

export function newBackend(config: BackendConfig): BackendState {
  return { key: backendKey(config), config, health: 'unknown', rises: 0, active: 0, total: 0 };
}

/** The backend list after a reload: the same ones keep their state (health, counts), new ones start unknown. */
export function reconcileBackends(current: readonly BackendState[], wanted: readonly BackendConfig[]): BackendState[] {
  const byKey = new Map(current.map((b) => [b.key, b]));
  const seen = new Set<string>();
  const out: BackendState[] = [];
  for (const config of wanted) {
    const key = backendKey(config);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(byKey.get(key) ?? newBackend(config));
  }
  return out;
}

/** One check's outcome applied to a backend's health; returns the new state (the input is not changed). */
export function applyCheck(state: BackendState, ok: boolean, rise: number, error?: string): BackendState {
  if (!ok) return { ...state, health: 'down', rises: 0, lastError: error ?? 'check failed' };
  if (state.health === 'up') return state;
  if (state.health === 'unknown') return withoutError({ ...state, health: 'up', rises: 0 });
  const rises = state.rises + 1;
  return rises >= rise ? withoutError({ ...state, health: 'up', rises: 0 }) : { ...state, rises };
}

function withoutError(state: BackendState): BackendState {
  const { lastError: _, ...rest } = state;
  return rest;
}

/**
 * The backend for a new connection: among those up, the fewest active connections; among ties,
 * the first at or after `cursor` (round robin). Returns its index and the next cursor, or null
 * when none is up.
 */
export function pickBackend(backends: readonly BackendState[], cursor: number, exclude: ReadonlySet<string> = new Set()): { index: number; cursor: number } | null {
  const n = backends.length;
  let best = -1;
  for (let i = 0; i < n; i++) {
    const index = (cursor + i) % n;
    const b = backends[index]!;
    if (b.health !== 'up' || exclude.has(b.key)) continue;
    if (best < 0 || b.active < backends[best]!.active) best = index;
  }
  return best < 0 ? null : { index: best, cursor: (best + 1) % n };
}

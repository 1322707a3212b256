// Restart policy of the supervisor, like monit's: restart a dead process after a delay that
// doubles with each crash in the window, and call it failing after too many. Pure.

export interface RestartPolicy {
  baseMs: number;
  maxMs: number;
  failingCrashes: number;
  windowMs: number;
}

/** Crashes (timestamps, ms) that still count: those within the window before `now`. */
export function recentCrashes(crashes: readonly number[], now: number, windowMs: number): number[] {
  return crashes.filter((t) => now - t < windowMs);
}

/** Delay before the next restart, given the crashes in the window (including the one just now). */
export function restartDelay(policy: RestartPolicy, recentCount: number): number {
  if (recentCount <= 1) return policy.baseMs;
  const exp = Math.min(recentCount - 1, 30);
  return Math.min(policy.maxMs, policy.baseMs * 2 ** exp);
}

export function isFailing(policy: RestartPolicy, recentCount: number): boolean {
  return recentCount >= policy.failingCrashes;
}

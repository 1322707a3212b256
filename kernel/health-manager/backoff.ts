// Crash back-off: the first few crashes of an index are restarted at once (most crashes are
// one-off: an out-of-memory spike, a lost connection); after that each restart waits twice as
// long as the one before, up to a cap, so an app that cannot run does not burn a DEA's CPU and
// the controller's placement in a loop. An index that has run long enough since its last
// crash has its count forgotten. Pure functions of a crash record and the clock.
import type { BackoffPolicy, CrashRecord, ObservedInstance } from './types.ts';

/** How long after its `count`-th crash an index is restarted. */
export function restartDelayMs(count: number, policy: BackoffPolicy): number {
  if (count <= policy.immediate_restarts) return 0;
  const doublings = count - policy.immediate_restarts - 1;
  // 2^doublings overflows to Infinity long after the cap is reached; min() keeps it finite.
  return Math.min(policy.base_delay_ms * 2 ** doublings, policy.max_delay_ms);
}

/** The delays after crash 1, 2, … n (for documentation and tests). */
export function backoffSchedule(n: number, policy: BackoffPolicy): number[] {
  return Array.from({ length: n }, (_, i) => restartDelayMs(i + 1, policy));
}

/** An index is flapping once its crashes are past the immediate restarts. */
export function isFlapping(count: number, policy: BackoffPolicy): boolean {
  return count > policy.immediate_restarts;
}

/**
 * True when an instance of the record's index has been RUNNING for the reset period since
 * the last crash: the index is stable again and its crash count starts over.
 */
export function isStableSince(record: CrashRecord, sameIndex: readonly ObservedInstance[], now: number, policy: BackoffPolicy): boolean {
  return sameIndex.some(
    (i) =>
      i.state === 'RUNNING' &&
      i.version === record.version &&
      i.running_since !== undefined &&
      i.running_since > record.last_crash_at &&
      now - i.running_since >= policy.reset_after_ms,
  );
}

export interface CrashStatus {
  count: number;
  flapping: boolean;
  /** When the index may be restarted after its last crash. */
  restart_at: number;
}

/** The effective crash state of an index: undefined when it never crashed or has been stable since. */
export function crashStatus(
  record: CrashRecord | undefined,
  sameIndex: readonly ObservedInstance[],
  now: number,
  policy: BackoffPolicy,
): CrashStatus | undefined {
  if (!record || record.count === 0) return undefined;
  if (isStableSince(record, sameIndex, now, policy)) return undefined;
  return {
    count: record.count,
    flapping: isFlapping(record.count, policy),
    restart_at: record.last_crash_at + restartDelayMs(record.count, policy),
  };
}

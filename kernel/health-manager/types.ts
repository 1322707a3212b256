// The shapes the health manager reasons about: the intended state (what the controller
// wants), the real state (what the DEAs report), what the HM itself has already asked for,
// and the policy that turns the difference into requests. All times are this process's
// clock in milliseconds unless a name says otherwise (`state_timestamp` is the DEA's, in s).
import type { InstanceState } from '../bus/mod.ts';

/** One app as the controller's bulk endpoint describes it, plus when the HM saw it change. */
export interface DesiredApp {
  app_id: string;
  name: string;
  version: string;
  instances: number;
  state: 'STARTED' | 'STOPPED';
  /** STAGED when the app has a droplet to run; PENDING or FAILED otherwise. */
  package_state: string;
  /**
   * When the HM last heard (droplet.updated) or found (a reload) that the app changed.
   * Undefined for apps known since the first load. An app changed recently is left alone
   * so the controller's own operation can finish.
   */
  changed_at: number | undefined;
}

export interface IntendedSnapshot {
  readonly apps: ReadonlyMap<string, DesiredApp>;
  /** When the first complete load from the controller finished; until then no app is "unknown". */
  readonly loaded_at: number | undefined;
}

/** One instance as heartbeats and exits report it. */
export interface ObservedInstance {
  app_id: string;
  version: string;
  instance_id: string;
  index: number;
  state: InstanceState;
  /** The DEA's clock, seconds: when the instance entered its state. */
  state_timestamp: number;
  dea_id: string | undefined;
  /** When the HM first heard of this instance. */
  first_heard_at: number;
  /** When the HM last heard of it in any state. */
  heard_at: number;
  /** When the HM last heard of it STARTING, RUNNING or EVACUATING: its last sign of life. */
  active_heard_at: number | undefined;
  /** When the HM first heard it RUNNING (for "stable long enough to forget its crashes"). */
  running_since: number | undefined;
  /** When the HM first heard it EVACUATING. */
  evacuating_since: number | undefined;
}

/** The crashes of one index of one version of an app. */
export interface CrashRecord {
  app_id: string;
  version: string;
  index: number;
  count: number;
  first_crash_at: number;
  last_crash_at: number;
  /** Instances already counted, so a repeated exit message is not a second crash. */
  instance_ids: string[];
}

export interface RealSnapshot {
  readonly instances: readonly ObservedInstance[];
  /** By `crashKey(app_id, version, index)`. */
  readonly crashes: ReadonlyMap<string, CrashRecord>;
  /**
   * Since when the HM has been hearing heartbeats without a gap (its start, or its last
   * reconnect to NATS): nothing is missing before it has listened a whole timeout.
   */
  readonly listening_since: number;
}

/** What any health manager has already asked the controllers for, and when. */
export interface AskedSnapshot {
  /** START, by `startKey(app_id, version, index)`. */
  readonly starts: ReadonlyMap<string, number>;
  /** STOP, by instance id. */
  readonly stops: ReadonlyMap<string, number>;
}

export interface BackoffPolicy {
  /** Crashes restarted at once; the next ones wait. */
  immediate_restarts: number;
  /** The first wait; it doubles with each further crash. */
  base_delay_ms: number;
  /** The longest wait. */
  max_delay_ms: number;
  /** An index RUNNING this long since its last crash has its crash count forgotten. */
  reset_after_ms: number;
}

export interface AnalysisPolicy {
  /** An instance not heard of this long is gone; an index without a sign of life this long is missing. */
  heartbeat_timeout_ms: number;
  /** An app changed this recently is left alone. */
  quiet_period_ms: number;
  /** An app unknown to the controller is stopped once its instances have run this long. */
  unknown_app_grace_ms: number;
  backoff: BackoffPolicy;
}

/** Why a request is made: the label of `requests sent by kind`, and the request's `reason`. */
export type RequestReason =
  // START
  | 'evacuating'
  | 'crashed'
  | 'missing'
  // STOP
  | 'evacuated'
  | 'extra_index'
  | 'duplicate'
  | 'old_version'
  | 'stopped_app'
  | 'unknown_app';

export const REQUEST_REASONS: readonly RequestReason[] = [
  'evacuating',
  'crashed',
  'missing',
  'evacuated',
  'extra_index',
  'duplicate',
  'old_version',
  'stopped_app',
  'unknown_app',
];

/** A request the analysis wants sent: one index to START, or one instance to STOP. */
export type PlannedRequest =
  | { op: 'START'; app_id: string; version: string; index: number; reason: 'evacuating' | 'crashed' | 'missing'; priority: number; due_at: number }
  | {
      op: 'STOP';
      app_id: string;
      version: string;
      instance_id: string;
      index: number;
      reason: Exclude<RequestReason, 'evacuating' | 'crashed' | 'missing'>;
      priority: number;
      due_at: number;
    };

export interface FlappingIndex {
  index: number;
  version: string;
  crash_count: number;
  /** When the crashes began (the first counted crash). */
  since: number;
  /** When the next START is due, while the index waits out its back-off. */
  next_restart_at: number | undefined;
}

/** One app as the analysis sees it: what /varz, /metrics and healthmanager.* answer from. */
export interface AppReport {
  app_id: string;
  /** The desired version, or undefined for an app the controller does not know. */
  version: string | undefined;
  desired: number;
  running: number;
  starting: number;
  evacuating: number;
  /** Desired indices without an instance, not waiting out a crash back-off. */
  missing: number[];
  /** Instances of the desired version the DEAs report CRASHED. */
  crashed: ObservedInstance[];
  flapping: FlappingIndex[];
  /** Left alone this round because it changed recently. */
  quiet: boolean;
}

export interface Analysis {
  /** Highest priority first, at most the round's budget. */
  requests: PlannedRequest[];
  /** Requests due but held back by the rate limit; the next rounds find them again. */
  deferred: number;
  apps: Map<string, AppReport>;
}

export const startKey = (appId: string, version: string, index: number): string => `${appId}/${version}/${index}`;
export const crashKey = startKey;

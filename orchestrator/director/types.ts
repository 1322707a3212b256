// The director's public shapes: records as the store returns them, task handlers and events.
import type { Logger } from 'pino';
import type { TaskState } from './task-states.ts';

export interface CloudConfigRecord {
  id: number;
  properties: string;
  created_at: string;
}

export interface DeploymentRecord {
  name: string;
  manifest: string;
  cloud_config_id: number | null;
  created_at: string;
  updated_at: string;
}

export interface InstanceRecord {
  id: number;
  deployment: string;
  instance_group: string;
  idx: number;
  uuid: string;
  az: string | null;
  state: string;
  bootstrap: boolean;
  spec: Record<string, unknown>;
  /** What start/stop last asked (the store always sets it; a deploy never changes it). */
  desired_state?: InstanceDesiredState;
  created_at: string;
  updated_at: string;
}

export type InstanceDesiredState = 'started' | 'stopped';

export interface VmRecord {
  cid: string;
  agent_id: string;
  deployment: string;
  instance_id: number | null;
  created_at: string;
}

export interface DiskRecord {
  cid: string;
  deployment: string;
  instance_id: number | null;
  size_mb: number;
  created_at: string;
}

export interface StemcellRecord {
  id: number;
  name: string;
  version: string;
  operating_system: string;
  /** Set once the CPI's create_stemcell has run. */
  cpi_cid: string | null;
  blob_id: string;
  /** The image handed to the CPI, when the tarball held one (null too for stemcells uploaded before migration 4). */
  image_blob_id: string | null;
  cloud_properties: Record<string, unknown>;
  uploaded_at: string;
}

export interface ReleaseItem {
  name: string;
  version?: string;
  fingerprint: string;
  dependencies?: string[];
}

/** What a release reader says about a tarball (orchestrator/release plugs its reader in here). */
export interface ReleaseDescription {
  name: string;
  version: string;
  jobs: ReleaseItem[];
  packages: ReleaseItem[];
}

export type ValidateRelease = (tarball: Buffer) => ReleaseDescription | Promise<ReleaseDescription>;

export interface ReleaseRecord {
  id: number;
  name: string;
  version: string;
  blob_id: string;
  uploaded_at: string;
  jobs: Array<{ name: string; version: string; fingerprint: string; blob_id: string | null }>;
  packages: Array<{ name: string; version: string; fingerprint: string; dependencies: string[]; blob_id: string | null }>;
}

export interface TaskRecord {
  id: number;
  type: string;
  state: TaskState;
  description: string;
  deployment: string | null;
  username: string;
  params: Record<string, unknown>;
  /** The handler's result, or the error sentence. */
  result: string | null;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
}

/** One step of a task, BOSH's event shape: `Updating instance` · `router/0` · 1 of 2 · started. */
export interface TaskEventInput {
  stage: string;
  task: string;
  index: number;
  total: number;
  state: 'started' | 'finished' | 'failed' | 'in_progress';
  progress: number;
  tags?: string[];
  data?: Record<string, unknown>;
}

export interface TaskEvent extends TaskEventInput {
  /** Unix seconds, as BOSH's events. */
  time: number;
}

export interface TaskContext {
  task: TaskRecord;
  events: { emit(e: TaskEventInput): void };
  signal: AbortSignal;
  /** The task's debug log (GET /tasks/:id/output?type=debug) and the director's log. */
  log: (message: string) => void;
  logger: Logger;
}

/** One kind of task: resolves with its result line, rejects with a sentence. */
export type TaskHandler = (ctx: TaskContext) => Promise<string>;

/** One entry of the event log (BOSH's events): the health monitor's alerts, resurrections. */
export interface EventRecord {
  id: number;
  /** ISO-8601. */
  timestamp: string;
  user: string;
  /** `alert` for the health monitor's alerts. */
  action: string;
  object_type: string;
  object_name: string | null;
  deployment: string | null;
  /** `group/index`. */
  instance: string | null;
  task_id: number | null;
  context: Record<string, unknown>;
}

export type NewEvent = Omit<EventRecord, 'id' | 'timestamp' | 'object_name' | 'deployment' | 'instance' | 'task_id'> &
  Partial<Pick<EventRecord, 'object_name' | 'deployment' | 'instance' | 'task_id'>>;

/** What a cloud-check scan found (orchestrator/health-monitor/analysis.ts says what each type means). */
export interface ProblemRecord {
  id: number;
  deployment: string;
  type: string;
  /** The instance's uuid, or the disk's cid for a disk of no instance. */
  resource_id: string;
  state: 'open' | 'resolved' | 'closed';
  data: Record<string, unknown>;
  created_at: string;
  resolved_at: string | null;
}

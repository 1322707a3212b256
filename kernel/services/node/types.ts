// What the node framework asks of a backend (one per service: nodes/redis, later postgresql,
// mysql, rabbitmq). The framework owns the bus, capacity, idempotency and the state file; the
// backend owns its units — the servers, databases or users that make one instance.
import { z } from 'zod';
import type { Logger } from '../../component/mod.ts';
import type { NodeConfig, PlanLimits } from './config.ts';

export const bindingRecord = z
  .object({
    fingerprint: z.string().optional(),
    credentials: z.record(z.unknown()),
    created_at: z.string(),
  })
  .strict();
export type BindingRecord = z.infer<typeof bindingRecord>;

export const unitRecord = z
  .object({
    instance_id: z.string(),
    plan: z.string(),
    fingerprint: z.string().optional(),
    created_at: z.string(),
    /** The backend's own data about the unit (Redis: its port and admin password). */
    data: z.record(z.unknown()),
    bindings: z.record(bindingRecord),
  })
  .strict();
export type UnitRecord = z.infer<typeof unitRecord>;

export const nodeState = z.object({ version: z.literal(1), units: z.record(unitRecord) }).strict();
export type NodeState = z.infer<typeof nodeState>;

export interface BackendContext {
  config: NodeConfig;
  nodeId: string;
  /** The address apps reach units at. */
  host: string;
  /** Absolute base directory. */
  baseDir: string;
  log: Logger;
  /** The units the node holds right now (the backend reads, the framework writes). */
  units(): Iterable<UnitRecord>;
}

export interface ServiceBackend {
  /** Starts every unit the node held before (node start). Failures are logged, not thrown. */
  restore(units: UnitRecord[]): Promise<void>;
  /** Creates and starts a unit; returns the data to keep for it. */
  provision(instanceId: string, plan: PlanLimits): Promise<Record<string, unknown>>;
  /** Creates credentials of the binding's own; returns them. */
  bind(unit: UnitRecord, bindingId: string): Promise<Record<string, unknown>>;
  /** Revokes a binding's credentials at once, closing its open connections. */
  unbind(unit: UnitRecord, bindingId: string): Promise<void>;
  /** Applies another plan's limits to the running unit (a plan change); absent when the service cannot. */
  update?(unit: UnitRecord, plan: PlanLimits): Promise<void>;
  /** Stops the unit and removes its data. */
  unprovision(unit: UnitRecord): Promise<void>;
  /** Node stop: stops every running unit, keeping its data. */
  stop(): Promise<void>;
  varz?(): Record<string, unknown>;
}

export type BackendFactory = (ctx: BackendContext) => ServiceBackend;

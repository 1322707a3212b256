// What a kernel component is to the runtime that starts it.
import type { z } from 'zod';
import type { Bus } from '../bus/mod.ts';
import type { CommonConfig } from './config.ts';
import type { Logger } from './logger.ts';
import type { Metric } from './metrics.ts';
import type { StatusServer } from './status-server.ts';

export interface ComponentContext<C extends CommonConfig> {
  config: C;
  bus: Bus;
  log: Logger;
  status: StatusServer;
  uuid: string;
  /** Address other components reach this one at. */
  host: string;
  /** The file the config came from (absolute), for components that resolve paths against it. */
  configFile: string;
}

export interface RunningComponent {
  /** The component's own numbers for /varz (JSON). */
  varz?(): Record<string, unknown>;
  /** The component's own numbers for /metrics. */
  metrics?(): Metric[];
  /** False makes /healthz answer 503 (besides draining and being cut off from NATS). */
  healthy?(): boolean;
  /** SIGTERM: finish the work in flight, bounded by the runtime's drain timeout. */
  drain?(): Promise<void>;
  /** Components that give SIGUSR2 a meaning (the DEA: evacuate). */
  onSignal?(signal: 'SIGUSR2'): void;
  /** Release everything; called after drain, or at once on a second signal. */
  stop(): Promise<void>;
}

export interface ComponentDefinition<S extends z.ZodTypeAny = z.ZodTypeAny> {
  /** The component's name: its folder's (`router`, `cloud-controller`, …). */
  type: string;
  /** Its whole config schema: `componentConfig({...own keys})`. */
  config: S;
  start(ctx: ComponentContext<z.output<S>>): Promise<RunningComponent>;
}

export function defineComponent<S extends z.ZodTypeAny>(def: ComponentDefinition<S>): ComponentDefinition<S> {
  return def;
}

// A service node's config: the common component keys plus the node's own, validated once at
// start into one typed, defaulted object. The keys every node shares are here; a backend's
// own keys sit under its label (`redis:`).
import { z } from 'zod';
import { componentConfig } from '../../component/mod.ts';
import { backends } from './backends.ts';

const token = z.string().regex(/^[A-Za-z0-9_-]+$/, 'expected letters, digits, - or _ (it is a NATS subject token)');

export const planLimits = z
  .object({
    /** The unit's memory limit (Redis: maxmemory, enforced with noeviction). */
    memory_mb: z.number().int().min(1),
    /** Most client connections at once (Redis: maxclients). */
    max_clients: z.number().int().min(1).max(100_000).default(100),
    /** How much of the node's `capacity` one unit of this plan takes. */
    capacity_units: z.number().int().min(1).default(1),
  })
  .strict();
export type PlanLimits = z.output<typeof planLimits>;

const portNumber = z.number().int().min(1).max(65535);

export const nodeConfig = componentConfig({
  /** The service this node offers (`redis`); its subjects are `services.<label>.*`. */
  label: token.refine((l) => Object.hasOwn(backends, l), { message: `expected a service with a node backend (${Object.keys(backends).join(', ')})` }),
  /** This node's id on the bus; `<label>-<index>` when absent. */
  node_id: token.optional(),
  plans: z.record(token, planLimits).refine((p) => Object.keys(p).length > 0, 'expected at least one plan'),
  /** Units this node offers in all; each instance takes its plan's `capacity_units`. */
  capacity: z.number().int().min(1),
  /** Where units keep their data (`<base_dir>/<instance_id>/`) and the node its state (`node.json`). */
  base_dir: z.string().min(1),
  /** The address apps reach units at (the VM's address); the component's local address when absent. */
  host: z.string().min(1).optional(),
  /** Ports for per-instance servers, both ends included. */
  port_range: z
    .object({ min: portNumber, max: portNumber })
    .strict()
    .refine((r) => r.min <= r.max, { message: 'min must not exceed max', path: ['max'] })
    .default({ min: 20000, max: 20999 }),
  announce_interval_s: z.number().positive().default(10),
  redis: z
    .object({
      server_path: z.string().min(1).default('/usr/bin/redis-server'),
      /** The user redis-servers run as when the node runs as root (Debian's package creates `redis`). */
      run_as: z.string().min(1).default('redis'),
      /** How long a starting redis-server may take to answer PING. */
      start_timeout_s: z.number().positive().default(15),
    })
    .strict()
    .default({}),
});

export type NodeConfig = z.output<typeof nodeConfig>;

/** The id a node answers to: its own, or `<label>-<index>`. */
export function nodeIdOf(config: Pick<NodeConfig, 'node_id' | 'label' | 'index'>): string {
  return config.node_id ?? `${config.label}-${config.index}`;
}

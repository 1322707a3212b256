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
    /** The unit's data size limit (PostgreSQL, MySQL: writes revoked while over it); none when absent. */
    size_mb: z.number().int().min(1).optional(),
    /** Most queues in the unit (RabbitMQ: the vhost's max-queues, 100 when absent; others ignore it). */
    max_queues: z.number().int().min(1).max(100_000).optional(),
  })
  .strict();
export type PlanLimits = z.output<typeof planLimits>;

const portNumber = z.number().int().min(1).max(65535);

/**
 * The node's one RabbitMQ server. Its default ports sit beside (not on) a stock RabbitMQ's
 * 5672/15672/25672 and epmd's 4369, so a node runs next to Debian's own service.
 */
const rabbitmqConfig = z
  .object({
    /** Debian's start script (not /usr/sbin/rabbitmq-server, a wrapper that su's by itself). */
    server_path: z.string().min(1).default('/usr/lib/rabbitmq/bin/rabbitmq-server'),
    epmd_path: z.string().min(1).default('/usr/bin/epmd'),
    /** The user the server runs as when the node runs as root (Debian's package creates `rabbitmq`). */
    run_as: z.string().min(1).default('rabbitmq'),
    /** Where apps connect (AMQP 0-9-1), on `host`. */
    amqp_port: portNumber.default(5700),
    /** The management plugin's HTTP API, on `host`: the node administers through it; bindings get `http_api_uri`. */
    management_port: portNumber.default(15700),
    /** Erlang distribution and its port mapper, on 127.0.0.1 only (for rabbitmqctl on the VM). */
    dist_port: portNumber.default(25700),
    epmd_port: portNumber.default(4370),
    /** How long a starting server may take until its AMQP listener is up (it boots in 4-10 s). */
    start_timeout_s: z.number().positive().default(60),
  })
  .strict()
  .superRefine((r, ctx) => {
    const seen = new Map<number, string>();
    for (const key of ['amqp_port', 'management_port', 'dist_port', 'epmd_port'] as const) {
      const other = seen.get(r[key]);
      if (other) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [key], message: `must differ from ${other} (${r[key]})` });
      seen.set(r[key], key);
    }
  })
  .default({});

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
  postgresql: z
    .object({
      /** Debian's PostgreSQL binaries (initdb, postgres). */
      bin_dir: z.string().min(1).default('/usr/lib/postgresql/15/bin'),
      /** The node's cluster's port on `host` (not 5432, which Debian's own cluster may hold). */
      port: portNumber.default(5433),
      /** The user the cluster runs as (PostgreSQL refuses root). */
      run_as: z.string().min(1).default('postgres'),
      /** The cluster's max_connections: room for every unit's connection limit plus the node's own. */
      max_connections: z.number().int().min(10).default(200),
      start_timeout_s: z.number().positive().default(30),
      /** How often units' sizes are checked against their plan's size_mb. */
      quota_interval_s: z.number().positive().default(10),
    })
    .strict()
    .default({}),
  mysql: z
    .object({
      /** Debian's mariadb-server binaries (mariadbd, mariadb-install-db) and client (mariadb). */
      server_path: z.string().min(1).default('/usr/sbin/mariadbd'),
      install_db_path: z.string().min(1).default('/usr/bin/mariadb-install-db'),
      client_path: z.string().min(1).default('/usr/bin/mariadb'),
      /** The server's port on `host` (not 3306, which Debian's own server may hold). */
      port: portNumber.default(3307),
      run_as: z.string().min(1).default('mysql'),
      max_connections: z.number().int().min(10).default(200),
      /** InnoDB's buffer pool: the server's memory, shared by every unit. */
      buffer_pool_mb: z.number().int().min(5).default(64),
      start_timeout_s: z.number().positive().default(30),
      quota_interval_s: z.number().positive().default(10),
    })
    .strict()
    .default({}),
  rabbitmq: rabbitmqConfig,
});

export type NodeConfig = z.output<typeof nodeConfig>;

/** The id a node answers to: its own, or `<label>-<index>`. */
export function nodeIdOf(config: Pick<NodeConfig, 'node_id' | 'label' | 'index'>): string {
  return config.node_id ?? `${config.label}-${config.index}`;
}

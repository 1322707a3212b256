// The DEA's config: the common component keys plus its own, validated once at start.
import { z } from 'zod';
import { componentConfig } from '../component/mod.ts';

const port = z.number().int().min(1).max(65535);
const egressRule = z.object({ cidr: z.string(), ports: z.array(port).optional() }).strict();

export const deaConfig = componentConfig({
  /** Where instances, droplets, staging work and the state file live. */
  base_dir: z.string().min(1),
  /** Stacks this DEA runs (the controller asks for one in dea.discover). */
  stacks: z.array(z.string().min(1)).min(1).default(['bookworm']),
  /** Memory and disk this DEA hands out to instances. */
  memory_mb: z.number().int().positive().default(4096),
  disk_mb: z.number().int().positive().default(20_480),
  /** `namespaces` (the default) or, for development only, `none`. */
  isolation: z.enum(['namespaces', 'none']).default('namespaces'),
  /** Short name carried by this DEA's kernel objects (netns, nft table, cgroups). */
  prefix: z.string().regex(/^[a-z][a-z0-9-]{0,19}$/, 'expected 1–20 of [a-z0-9-], starting with a letter').default('dea'),
  network: z
    .object({
      /** Pool of container addresses, cut in /30s. */
      subnet: z.string().default('10.254.0.0/22'),
      /** Host ports mapped to containers. */
      host_ports: z.object({ start: port, count: z.number().int().positive() }).strict().default({ start: 61000, count: 1000 }),
      /** The port apps listen on inside their container. */
      container_port: port.default(8080),
      /** Platform addresses containers must never reach (NATS, director, internals, …). */
      deny: z.array(egressRule).default([]),
      /** Service addresses containers may reach even inside a denied range. */
      allow: z.array(egressRule).default([]),
    })
    .strict()
    .default({}),
  /** The uids of its containers; by default 1000 of them from 20000 + 1000 × index, so DEAs sharing a kernel (VMs on one host) never share a uid. */
  uid_range: z.object({ start: z.number().int().min(1000), count: z.number().int().positive() }).strict().optional(),
  cgroup_parent: z.string().default('ingot'),
  heartbeat_interval_s: z.number().positive().default(10),
  advertise_interval_s: z.number().positive().default(5),
  /** SIGTERM, then SIGKILL after this. */
  stop_grace_s: z.number().positive().default(10),
  /** SIGUSR2: instances keep serving until stopped by request or this ends. */
  evacuation_timeout_s: z.number().positive().default(60),
  /** A crashed instance's files and logs stay readable this long. */
  crash_retention_s: z.number().positive().default(3600),
  /** …but only this many per app: each keeps a host port and an address until it goes. */
  crashed_kept_per_app: z.number().int().min(0).default(3),
  /** Default health-check timeout when the start message names none. */
  health_check_timeout_s: z.number().positive().default(60),
  /** Lines per second an instance may log before the excess is dropped and counted. */
  log_rate_lines_per_s: z.number().int().positive().default(100),
  /** Processes an instance may run at once. */
  pids_limit: z.number().int().positive().default(256),
  max_droplet_mb: z.number().int().positive().default(1024),
  taint: z
    .object({
      per_instance_ms: z.number().min(0).default(100),
      memory_ms: z.number().min(0).default(50),
      cpu_ms: z.number().min(0).default(25),
      max_ms: z.number().min(0).default(400),
    })
    .strict()
    .default({}),
  staging: z
    .object({
      enabled: z.boolean().default(true),
      timeout_s: z.number().positive().default(900),
      memory_mb: z.number().int().positive().default(1024),
      disk_mb: z.number().int().positive().default(4096),
      /** Processes a staging may run at once (npm and its children, a JVM's threads). */
      pids_limit: z.number().int().positive().default(1024),
      /** The npm registry stagers install from (DESIGN.md §4: through the IaaS's proxy). */
      npm_registry: z.string().url().optional(),
      /** A forward proxy for package registries, handed to buildpacks as npm_config_proxy / https_proxy. */
      proxy: z.string().url().optional(),
      /** Directory of buildpacks; defaults to the built-in ones. */
      buildpacks_dir: z.string().optional(),
      /** Let a staging request name a buildpack by a directory of this machine or a file:// URL
       *  (an operator's own buildpacks; off by default, as apps could name any directory). */
      allow_local_buildpacks: z.boolean().default(false),
    })
    .strict()
    .default({}),
});

export type DeaConfig = z.output<typeof deaConfig>;

/** The DEA's container uids: the config's range, else 1000 from 20000 + 1000 × index. */
export function uidRangeOf(cfg: Pick<DeaConfig, 'uid_range' | 'index'>): { start: number; count: number } {
  return cfg.uid_range ?? { start: 20_000 + 1000 * cfg.index, count: 1000 };
}

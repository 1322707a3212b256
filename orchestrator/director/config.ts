// The director's config file: one zod schema, defaults merged once. Errors come out as
// `director.yml:7 mbus.port: expected a number` through the component config loader.
import { resolve } from 'node:path';
import { z } from 'zod';
import { loadConfig, parseConfig } from '../../kernel/component/mod.ts';

const port = z.number().int().min(0).max(65535);
const httpUrl = z.string().regex(/^https?:\/\/[^\s/]+(\/[^\s]*)?$/, 'expected an http:// URL such as http://10.244.0.1:25555');

export const directorConfigSchema = z
  .object({
    /** Shown by GET /info. */
    name: z.string().min(1).default('ingot'),
    /** Where the SQLite database, the blobs and the mbus config live. */
    data_dir: z.string().min(1),
    listen: z.object({ host: z.string().min(1).default('127.0.0.1'), port: port.default(25555) }).strict().default({}),
    admin: z.object({ user: z.string().min(1), password: z.string().min(8, 'expected at least 8 characters') }).strict(),
    token: z
      .object({
        secret: z.string().min(32, 'expected at least 32 characters'),
        ttl_s: z.number().int().positive().default(3600),
      })
      .strict(),
    mbus: z
      .object({
        nats_server: z.string().min(1).default('/usr/sbin/nats-server'),
        host: z.string().min(1).default('127.0.0.1'),
        port: port.default(4222),
        /** The address agents dial; the listen host when absent. */
        advertise_host: z.string().min(1).optional(),
        /** Generated on first start and kept in the database when absent. */
        director_password: z.string().min(16, 'expected at least 16 characters').optional(),
        /** How long to wait for nats-server to accept the director. */
        ready_timeout_ms: z.number().int().positive().default(10_000),
      })
      .strict()
      .default({}),
    blobstore: z
      .object({
        /** How agents reach the director's blobstore: http://<address VMs see>:<port>. */
        url: httpUrl.optional(),
        max_upload_mb: z.number().int().positive().default(4096),
      })
      .strict()
      .default({}),
    tasks: z.object({ max_concurrent: z.number().int().positive().default(4) }).strict().default({}),
    /** The CPI (orchestrator/cpi/registry.ts) that creates VMs; named by GET /info. */
    cpi: z.string().min(1).default('local'),
    /** That CPI's config file (relative to this file); without it the director creates no VMs. */
    cpi_config: z.string().min(1).optional(),
    deploy: z
      .object({
        /** How long a new VM's agent has to answer ping. */
        agent_ping_timeout_ms: z.number().int().positive().default(120_000),
        /** Between get_state polls while waiting for jobs to run. */
        watch_poll_ms: z.number().int().positive().default(1000),
      })
      .strict()
      .default({}),
    /** The health monitor (orchestrator/health-monitor/): heartbeats watched, VMs checked, the resurrector. */
    health_monitor: z
      .object({
        /** Off: no heartbeat watch, no VM checks, no alerts, no resurrection. */
        enabled: z.boolean().default(true),
        /** Recreate what is down (BOSH's resurrector); `ingot update-resurrection off` pauses it at run time. */
        resurrection: z.boolean().default(true),
        /** An agent silent this long is unresponsive (BOSH's agent_timeout: 60 s). */
        agent_timeout_ms: z.number().int().positive().default(60_000),
        /** Between looks at every deployment's VMs and heartbeats. */
        scan_interval_ms: z.number().int().positive().default(10_000),
        /** BOSH's resurrector plugin options: at least minimum_down_jobs and percent_threshold of a
         *  deployment's instances down within time_threshold seconds is a meltdown: alert only. */
        resurrector: z
          .object({
            minimum_down_jobs: z.number().int().min(1).default(5),
            percent_threshold: z.number().min(0, 'expected a share from 0 to 1, e.g. 0.2').max(1, 'expected a share from 0 to 1, e.g. 0.2').default(0.2),
            time_threshold: z.number().positive().default(600),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    logging: z
      .object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
      .strict()
      .default({}),
  })
  .strict();

export type DirectorConfig = z.output<typeof directorConfigSchema>;

/** Reads, validates and defaults; relative data_dir is taken from the config file's folder. */
export async function loadDirectorConfig(file: string): Promise<DirectorConfig> {
  const config = await loadConfig(file, directorConfigSchema);
  return {
    ...config,
    data_dir: resolve(file, '..', config.data_dir),
    ...(config.cpi_config === undefined ? {} : { cpi_config: resolve(file, '..', config.cpi_config) }),
  };
}

export function parseDirectorConfig(text: string, file = 'director.yml'): DirectorConfig {
  return parseConfig(text, file, directorConfigSchema);
}

// The local balancer's config file (DESIGN.md §7): where it listens, the routers it spreads
// connections over and how it checks them. Parsed once at the edge with the kernel's config
// loader, so every problem names file, line and key (`balancer.yml:7 backends[1].port: …`).

import { z } from 'zod';
import { loadConfig, parseConfig } from '../../../kernel/component/mod.ts';

const port = z.number().int().min(1).max(65535);

const backend = z
  .object({
    host: z.string().min(1),
    port,
    health: z
      .object({
        port,
        path: z.string().startsWith('/', 'expected a path starting with /').default('/healthz'),
      })
      .strict(),
  })
  .strict();

export const balancerConfigSchema = z
  .object({
    listen: z
      .object({ host: z.string().min(1).default('127.0.0.1'), port: port.default(8080) })
      .strict()
      .default({}),
    /** The JSON status endpoint (GET /varz); absent means none. Loopback by default. */
    status: z
      .object({ host: z.string().min(1).default('127.0.0.1'), port: z.number().int().min(0).max(65535) })
      .strict()
      .optional(),
    /** Health checks: every interval_ms, each answering within timeout_ms. */
    interval_ms: z.number().int().min(10).max(60_000).default(250),
    timeout_ms: z.number().int().min(10).max(60_000).default(200),
    /** Good checks in a row before a backend taken out is used again. */
    rise: z.number().int().min(1).max(100).default(2),
    /** Bounded wait for open connections on SIGTERM. */
    drain_timeout_s: z.number().min(0).max(3600).default(10),
    backends: z.array(backend).default([]),
  })
  .strict()
  .refine((c) => c.timeout_ms <= c.interval_ms, { message: 'timeout_ms must not exceed interval_ms', path: ['timeout_ms'] });

export type BalancerConfig = z.output<typeof balancerConfigSchema>;
export type BackendConfig = BalancerConfig['backends'][number];

export function loadBalancerConfig(file: string): Promise<BalancerConfig> {
  return loadConfig(file, balancerConfigSchema);
}

export function parseBalancerConfig(text: string, file = 'balancer.yml'): BalancerConfig {
  return parseConfig(text, file, balancerConfigSchema);
}

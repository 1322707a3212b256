// The router's config: its own keys on top of the common component keys, and the settings
// the proxy works with (milliseconds, defaults resolved) derived from them in one place.
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { componentConfig } from '../component/mod.ts';

const seconds = z.number().positive();

export const routerConfig = componentConfig({
  /** The proxy port (HTTP from clients and balancers). */
  port: z.number().int().min(0).max(65535).default(8080),
  host: z.string().min(1).default('0.0.0.0'),
  /** Proxy processes sharing the port; default: one per CPU. */
  workers: z.number().int().min(1).max(64).optional(),
  /** Announced in router.start: registrants refresh every route at this interval. */
  minimum_register_interval_s: seconds.default(20),
  /** An endpoint not refreshed for this long is pruned; default: 3 register intervals. */
  prune_stale_after_s: seconds.optional(),
  /** After SIGTERM, keep serving this long with /healthz at 503 so balancers move away. */
  drain_wait_s: z.number().min(0).default(10),
  /** Endpoints tried per request when connections fail. */
  max_attempts: z.number().int().min(1).max(10).default(3),
  /** How long an endpoint whose connection failed is left out of rotation. */
  failed_endpoint_cooldown_s: seconds.default(10),
  backend_connect_timeout_s: seconds.default(5),
  /** From the request sent to the response's first byte, and between response bytes. */
  backend_response_timeout_s: seconds.default(60),
  /** Pooled idle backend connections close after this (below Node's default of 5 s). */
  backend_keepalive_timeout_s: seconds.default(4),
  backend_max_idle_per_endpoint: z.number().int().min(0).max(10_000).default(64),
  /** An idle client keep-alive connection is closed after this. */
  client_keepalive_timeout_s: seconds.default(60),
  /** A client must send a whole request head within this (slow-header defence). */
  request_header_timeout_s: seconds.default(10),
  /** Request line plus headers; larger requests get 400. */
  max_header_bytes: z.number().int().min(1024).max(1024 * 1024).default(32 * 1024),
  /** An access-log line per request. */
  log_requests: z.boolean().default(true),
  /** Where access-log lines go; default: stdout. */
  access_log_file: z.string().min(1).optional(),
  /** Publish each request's access line on logs.<app_id> with source RTR… */
  app_log_lines: z.boolean().default(true),
  /** …at most this many per app per second (the rest are counted in a notice line). */
  app_log_lines_per_s: z.number().int().min(1).default(100),
}).superRefine((c, ctx) => {
  if (c.drain_wait_s >= c.drain_timeout_s) {
    ctx.addIssue({
      code: 'custom',
      path: ['drain_wait_s'],
      message: `must be shorter than drain_timeout_s (${c.drain_timeout_s}), which bounds the whole drain`,
    });
  }
  if (c.prune_stale_after_s !== undefined && c.prune_stale_after_s <= c.minimum_register_interval_s) {
    ctx.addIssue({
      code: 'custom',
      path: ['prune_stale_after_s'],
      message: `must be longer than minimum_register_interval_s (${c.minimum_register_interval_s}), or every route would be pruned between refreshes`,
    });
  }
});

export type RouterConfig = z.output<typeof routerConfig>;

/** What one proxy process needs, in milliseconds, defaults resolved. */
export interface ProxySettings {
  port: number;
  host: string;
  maxAttempts: number;
  failedCooldownMs: number;
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  backendIdleMs: number;
  maxIdlePerEndpoint: number;
  clientIdleMs: number;
  headerTimeoutMs: number;
  maxHeaderBytes: number;
  logRequests: boolean;
  accessLogFile: string | undefined;
  appLogLines: boolean;
  /** Per proxy process: the router's limit shared among its workers. */
  appLogLinesPerS: number;
}

export function proxySettings(c: RouterConfig): ProxySettings {
  return {
    port: c.port,
    host: c.host,
    maxAttempts: c.max_attempts,
    failedCooldownMs: c.failed_endpoint_cooldown_s * 1000,
    connectTimeoutMs: c.backend_connect_timeout_s * 1000,
    responseTimeoutMs: c.backend_response_timeout_s * 1000,
    backendIdleMs: c.backend_keepalive_timeout_s * 1000,
    maxIdlePerEndpoint: c.backend_max_idle_per_endpoint,
    clientIdleMs: c.client_keepalive_timeout_s * 1000,
    headerTimeoutMs: c.request_header_timeout_s * 1000,
    maxHeaderBytes: c.max_header_bytes,
    logRequests: c.log_requests,
    accessLogFile: c.access_log_file,
    appLogLines: c.app_log_lines,
    appLogLinesPerS: Math.max(1, Math.floor(c.app_log_lines_per_s / workerCount(c))),
  };
}

export function workerCount(c: RouterConfig): number {
  return c.workers ?? availableParallelism();
}

/** Seconds after which an endpoint that was not refreshed is pruned. */
export function staleThresholdS(c: RouterConfig): number {
  return c.prune_stale_after_s ?? 3 * c.minimum_register_interval_s;
}

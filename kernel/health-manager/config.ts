// The health manager's config: the common component keys plus its own, validated once at
// start into one typed, defaulted object; `analysisPolicy` turns it into the analysis's
// milliseconds. Defaults suit a DEA heartbeat interval of 10 s.
import { z } from 'zod';
import { componentConfig } from '../component/mod.ts';
import type { AnalysisPolicy } from './types.ts';

const seconds = z.number().positive();

export const hmConfig = componentConfig({
  /** The controller's bulk API (its own Basic credential, `bulk_api` in the controller's config). */
  bulk_api: z
    .object({
      /** The controller's base URL, e.g. http://api.sys.example.com or http://10.244.0.5:9022. */
      url: z.string().url().optional(),
      /** Or several controllers' (sharing one database): a request that cannot reach one goes to the next. */
      urls: z.array(z.string().url()).min(1).optional(),
      user: z.string().min(1),
      password: z.string().min(1),
      /** Apps per page of the full load. */
      batch_size: z.number().int().min(1).max(5000).default(500),
      /** Bound on one HTTP request to the controller. */
      timeout_s: seconds.default(10),
      /** Wait before trying a failed full load again. */
      retry_interval_s: seconds.default(5),
    })
    .strict()
    .refine((b) => (b.url === undefined) !== (b.urls === undefined), 'give url (one controller) or urls (several), not both or neither')
    .transform(({ url, urls, ...rest }) => ({ ...rest, urls: urls ?? [url!] })),
  /** How often the intended and real states are compared. */
  analysis_interval_s: seconds.default(2),
  /** How often the whole intended state is read again (droplet.updated covers the changes between). */
  resync_interval_s: seconds.default(60),
  /** An instance not heard of this long is gone; an index without a sign of life this long is missing (3 DEA heartbeats). */
  heartbeat_timeout_s: seconds.default(30),
  /** An app changed this recently is left alone, so the controller's own operation can finish. */
  quiet_period_s: z.number().min(0).default(5),
  /** An app the controller does not know is stopped once its instances have run this long. */
  unknown_app_grace_s: seconds.default(60),
  crash_backoff: z
    .object({
      /** Crashes restarted at once. */
      immediate_restarts: z.number().int().min(0).default(3),
      /** The first wait after those; it doubles with each crash. */
      base_delay_s: seconds.default(30),
      /** The longest wait (16 min). */
      max_delay_s: seconds.default(960),
      /** Running this long after a crash forgets the index's crash count. */
      reset_after_s: seconds.default(300),
    })
    .strict()
    .default({}),
  /** Leader election among several HMs (election.ts): only the leader sends requests. */
  election: z
    .object({
      /** How often each HM says it is alive on healthmanager.presence; a peer silent 3 intervals is gone. */
      interval_ms: z.number().int().min(10).max(60_000).default(1000),
    })
    .strict()
    .default({}),
  /** A token bucket over the requests this HM sends. */
  rate_limit: z
    .object({
      requests_per_s: seconds.default(10),
      burst: z.number().int().min(1).default(50),
    })
    .strict()
    .default({}),
}).superRefine((c, ctx) => {
  if (c.crash_backoff.max_delay_s < c.crash_backoff.base_delay_s) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['crash_backoff', 'max_delay_s'], message: `must be at least base_delay_s (${c.crash_backoff.base_delay_s})` });
  }
  if (c.heartbeat_timeout_s <= c.analysis_interval_s) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['heartbeat_timeout_s'], message: `must be longer than analysis_interval_s (${c.analysis_interval_s})` });
  }
});

export type HmConfig = z.output<typeof hmConfig>;

export function analysisPolicy(c: HmConfig): AnalysisPolicy {
  return {
    heartbeat_timeout_ms: c.heartbeat_timeout_s * 1000,
    quiet_period_ms: c.quiet_period_s * 1000,
    unknown_app_grace_ms: c.unknown_app_grace_s * 1000,
    backoff: {
      immediate_restarts: c.crash_backoff.immediate_restarts,
      base_delay_ms: c.crash_backoff.base_delay_s * 1000,
      max_delay_ms: c.crash_backoff.max_delay_s * 1000,
      reset_after_ms: c.crash_backoff.reset_after_s * 1000,
    },
  };
}

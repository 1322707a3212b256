// The router's numbers. Each proxy process counts into a ProxyStats and hands the primary a
// delta every second; the primary's StatsAggregate keeps totals and a sliding window from
// which latency percentiles and requests per second (overall and per app, the signal
// autoscaling will use) are read. Pure: time comes in as arguments.

/** Latency buckets grow by 8 % from 10 µs: a percentile is read to within 8 %. */
const BUCKET_BASE_MS = 0.01;
const BUCKET_GROWTH = 1.08;
const LOG_GROWTH = Math.log(BUCKET_GROWTH);
const MAX_BUCKET = 220;

export function latencyBucket(ms: number): number {
  if (!(ms > BUCKET_BASE_MS)) return 0;
  const b = Math.ceil(Math.log(ms / BUCKET_BASE_MS) / LOG_GROWTH);
  return b > MAX_BUCKET ? MAX_BUCKET : b;
}

/** The upper bound of a bucket, in ms. */
export function bucketUpperMs(bucket: number): number {
  return BUCKET_BASE_MS * BUCKET_GROWTH ** bucket;
}

/** Response classes: 1xx … 5xx, then anything else (a client gone before a status). */
export const RESPONSE_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const;

/** What the router itself answered, by its X-Ingot-Router-Error code. */
export const ROUTER_ERRORS = ['unknown_route', 'bad_request', 'endpoint_failure', 'endpoint_timeout', 'bad_response', 'request_timeout'] as const;
export type RouterErrorKind = (typeof ROUTER_ERRORS)[number];

export interface StatsDelta {
  requests: number;
  responses: number[];
  router_errors: Partial<Record<RouterErrorKind, number>>;
  retries: number;
  client_aborts: number;
  /** Sparse latency histogram: [bucket, count]. */
  latency: Array<[number, number]>;
  /** Requests per app id. */
  apps: Array<[string, number]>;
}

export class ProxyStats {
  private requests = 0;
  private readonly responses = [0, 0, 0, 0, 0, 0];
  private routerErrors: Partial<Record<RouterErrorKind, number>> = {};
  private retries = 0;
  private clientAborts = 0;
  private readonly latency = new Map<number, number>();
  private readonly apps = new Map<string, number>();

  /** One finished request. `status` 0 means the client left before any response. */
  record(status: number, latencyMs: number, appId: string | undefined): void {
    this.requests++;
    const cls = status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : 5;
    this.responses[cls]!++;
    const b = latencyBucket(latencyMs);
    this.latency.set(b, (this.latency.get(b) ?? 0) + 1);
    if (appId !== undefined) this.apps.set(appId, (this.apps.get(appId) ?? 0) + 1);
  }

  routerError(kind: RouterErrorKind): void {
    this.routerErrors[kind] = (this.routerErrors[kind] ?? 0) + 1;
  }

  retry(): void {
    this.retries++;
  }

  clientAbort(): void {
    this.clientAborts++;
  }

  /** Everything counted since the last take, and a fresh start. */
  take(): StatsDelta {
    const delta: StatsDelta = {
      requests: this.requests,
      responses: [...this.responses],
      router_errors: this.routerErrors,
      retries: this.retries,
      client_aborts: this.clientAborts,
      latency: [...this.latency],
      apps: [...this.apps],
    };
    this.requests = 0;
    this.responses.fill(0);
    this.routerErrors = {};
    this.retries = 0;
    this.clientAborts = 0;
    this.latency.clear();
    this.apps.clear();
    return delta;
  }
}

export interface AggregateOptions {
  /** Latency percentiles cover this window. */
  latencyWindowMs?: number;
  /** Requests per second are averaged over this window. */
  rateWindowMs?: number;
}

export interface AppRate {
  requests: number;
  requests_per_second: number;
}

export interface StatsSummary {
  requests: number;
  responses: Record<(typeof RESPONSE_CLASSES)[number], number>;
  router_errors: Record<RouterErrorKind, number>;
  bad_gateways: number;
  retries: number;
  client_aborts: number;
  requests_per_second: number;
  latency_ms: { p50: number; p90: number; p99: number; p999: number; window_s: number };
  apps: Record<string, AppRate>;
}

export class StatsAggregate {
  private requests = 0;
  private readonly responses = [0, 0, 0, 0, 0, 0];
  private readonly routerErrors = Object.fromEntries(ROUTER_ERRORS.map((k) => [k, 0])) as Record<RouterErrorKind, number>;
  private retries = 0;
  private clientAborts = 0;
  private readonly appTotals = new Map<string, number>();
  private window: Array<{ at: number; delta: StatsDelta }> = [];
  private readonly latencyWindowMs: number;
  private readonly rateWindowMs: number;

  constructor(opts: AggregateOptions = {}) {
    this.latencyWindowMs = opts.latencyWindowMs ?? 60_000;
    this.rateWindowMs = opts.rateWindowMs ?? 10_000;
  }

  add(delta: StatsDelta, now: number): void {
    this.requests += delta.requests;
    delta.responses.forEach((n, i) => (this.responses[i]! += n));
    for (const [k, n] of Object.entries(delta.router_errors)) {
      if (k in this.routerErrors) this.routerErrors[k as RouterErrorKind] += n ?? 0;
    }
    this.retries += delta.retries;
    this.clientAborts += delta.client_aborts;
    for (const [app, n] of delta.apps) this.appTotals.set(app, (this.appTotals.get(app) ?? 0) + n);
    if (delta.requests > 0) this.window.push({ at: now, delta });
    this.trim(now);
  }

  summary(now: number): StatsSummary {
    this.trim(now);
    const rateFrom = now - this.rateWindowMs;
    let recent = 0;
    const appRecent = new Map<string, number>();
    const hist = new Map<number, number>();
    let histTotal = 0;
    for (const { at, delta } of this.window) {
      for (const [b, n] of delta.latency) {
        hist.set(b, (hist.get(b) ?? 0) + n);
        histTotal += n;
      }
      if (at > rateFrom) {
        recent += delta.requests;
        for (const [app, n] of delta.apps) appRecent.set(app, (appRecent.get(app) ?? 0) + n);
      }
    }
    const seconds = this.rateWindowMs / 1000;
    const apps: Record<string, AppRate> = {};
    for (const [app, total] of this.appTotals) {
      apps[app] = { requests: total, requests_per_second: round((appRecent.get(app) ?? 0) / seconds) };
    }
    const sorted = [...hist].sort((a, b) => a[0] - b[0]);
    const pct = (p: number): number => round(percentile(sorted, histTotal, p));
    return {
      requests: this.requests,
      responses: Object.fromEntries(RESPONSE_CLASSES.map((c, i) => [c, this.responses[i]!])) as StatsSummary['responses'],
      router_errors: { ...this.routerErrors },
      bad_gateways: this.routerErrors.endpoint_failure + this.routerErrors.bad_response,
      retries: this.retries,
      client_aborts: this.clientAborts,
      requests_per_second: round(recent / seconds),
      latency_ms: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), p999: pct(0.999), window_s: this.latencyWindowMs / 1000 },
      apps,
    };
  }

  private trim(now: number): void {
    const from = now - this.latencyWindowMs;
    if (this.window.length > 0 && this.window[0]!.at <= from) this.window = this.window.filter((w) => w.at > from);
  }
}

/** The upper bound of the bucket holding the p-th request; 0 when nothing was counted. */
export function percentile(sortedBuckets: Array<[number, number]>, total: number, p: number): number {
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(p * total));
  let seen = 0;
  for (const [b, n] of sortedBuckets) {
    seen += n;
    if (seen >= rank) return bucketUpperMs(b);
  }
  return bucketUpperMs(sortedBuckets[sortedBuckets.length - 1]![0]);
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

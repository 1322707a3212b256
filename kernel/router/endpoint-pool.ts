// The endpoints behind one route and how one is chosen for a request: at random among the
// healthy ones (as the original router did), honouring a sticky-session instance while it is
// registered, and skipping endpoints this request already tried or that failed a moment ago.
// Pure: randomness and failure state come in as functions.

export interface Endpoint {
  /** `host:port`: what identifies an endpoint within a route, and keys connection pools. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  appId: string | undefined;
  instanceId: string | undefined;
  privateInstanceId: string | undefined;
  /** What `__VCAP_ID__` carries: the private instance id, else the instance id. */
  stickyId: string | undefined;
  index: number | undefined;
  tags: Record<string, string> | undefined;
  /** This endpoint's own stale threshold, when its registrant set one. */
  staleAfterMs: number | undefined;
  /** Last register (or refresh) time, ms since the epoch. */
  updatedAt: number;
}

export interface EndpointFields {
  host: string;
  port: number;
  appId?: string | undefined;
  instanceId?: string | undefined;
  privateInstanceId?: string | undefined;
  index?: number | undefined;
  tags?: Record<string, string> | undefined;
  staleAfterMs?: number | undefined;
}

export function makeEndpoint(f: EndpointFields, now: number): Endpoint {
  return {
    address: `${f.host}:${f.port}`,
    host: f.host,
    port: f.port,
    appId: f.appId,
    instanceId: f.instanceId,
    privateInstanceId: f.privateInstanceId,
    stickyId: f.privateInstanceId ?? f.instanceId,
    index: f.index,
    tags: f.tags,
    staleAfterMs: f.staleAfterMs,
    updatedAt: now,
  };
}

export type PutResult = 'added' | 'updated' | 'refreshed';

export class EndpointPool {
  // A plain array: pools are small (an app's instances), so a scan by address or instance
  // is cheaper than keeping maps per route, and 100k routes stay light in memory.
  readonly endpoints: Endpoint[] = [];

  constructor(readonly uri: string) {}

  get size(): number {
    return this.endpoints.length;
  }

  /** Adds the endpoint, or refreshes (same fields) or updates (changed fields) the one at its address. */
  put(e: Endpoint): PutResult {
    const i = this.indexOf(e.address);
    if (i < 0) {
      this.endpoints.push(e);
      return 'added';
    }
    const old = this.endpoints[i]!;
    const same =
      old.appId === e.appId &&
      old.instanceId === e.instanceId &&
      old.privateInstanceId === e.privateInstanceId &&
      old.index === e.index &&
      old.staleAfterMs === e.staleAfterMs &&
      sameTags(old.tags, e.tags);
    if (same) {
      old.updatedAt = Math.max(old.updatedAt, e.updatedAt);
      return 'refreshed';
    }
    this.endpoints[i] = e;
    return 'updated';
  }

  /**
   * Removes the endpoint at `address`. When the unregister names an instance and the endpoint
   * now belongs to another one (the port was reused by a newer instance), it stays.
   */
  remove(address: string, stickyId?: string): Endpoint | undefined {
    const i = this.indexOf(address);
    if (i < 0) return undefined;
    const e = this.endpoints[i]!;
    if (stickyId !== undefined && e.stickyId !== undefined && e.stickyId !== stickyId) return undefined;
    // Order does not matter to a random choice: swap with the last for O(1) removal.
    const last = this.endpoints.pop()!;
    if (i < this.endpoints.length) this.endpoints[i] = last;
    return e;
  }

  find(address: string): Endpoint | undefined {
    const i = this.indexOf(address);
    return i < 0 ? undefined : this.endpoints[i];
  }

  findSticky(stickyId: string): Endpoint | undefined {
    for (const e of this.endpoints) if (e.stickyId === stickyId) return e;
    return undefined;
  }

  private indexOf(address: string): number {
    const list = this.endpoints;
    for (let i = 0; i < list.length; i++) if (list[i]!.address === address) return i;
    return -1;
  }
}

export interface ChoiceContext {
  /** The `__VCAP_ID__` the client sent. */
  stickyId?: string | undefined;
  /** Addresses this request already tried. */
  tried?: readonly string[] | undefined;
  /** True while an endpoint is out of rotation after a failure. */
  isFailed?: ((address: string) => boolean) | undefined;
  random?: (() => number) | undefined;
}

/**
 * The endpoint for the next attempt, or undefined when every endpoint was tried. Endpoints
 * out of rotation are chosen only when nothing else is left: a backend that failed a moment
 * ago is a better bet than certain failure.
 */
export function chooseEndpoint(pool: EndpointPool, ctx: ChoiceContext = {}): Endpoint | undefined {
  const list = pool.endpoints;
  const n = list.length;
  if (n === 0) return undefined;
  const tried = ctx.tried !== undefined && ctx.tried.length > 0 ? ctx.tried : undefined;
  const isFailed = ctx.isFailed;

  if (ctx.stickyId !== undefined) {
    const sticky = pool.findSticky(ctx.stickyId);
    if (sticky && usable(sticky, tried, isFailed)) return sticky;
  }
  const random = ctx.random ?? Math.random;
  // The common case: one draw, and it is usable.
  const first = list[Math.floor(random() * n)]!;
  if (usable(first, tried, isFailed)) return first;
  const healthy: Endpoint[] = [];
  const failed: Endpoint[] = [];
  for (const e of list) {
    if (tried !== undefined && tried.includes(e.address)) continue;
    if (isFailed?.(e.address)) failed.push(e);
    else healthy.push(e);
  }
  const from = healthy.length > 0 ? healthy : failed;
  return from.length > 0 ? from[Math.floor(random() * from.length)] : undefined;
}

function usable(e: Endpoint, tried: readonly string[] | undefined, isFailed: ((address: string) => boolean) | undefined): boolean {
  return !(tried !== undefined && tried.includes(e.address)) && !(isFailed !== undefined && isFailed(e.address));
}

function sameTags(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}

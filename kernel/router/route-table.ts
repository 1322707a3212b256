// The routing table: route (host, optionally a path prefix) → endpoint pool. Built only from
// router.register / router.unregister. Pure: time comes in as arguments.
//
// Matching rules:
// - hosts match case-insensitively and without their port; a trailing dot is ignored;
// - `*.apps.example.com` matches any name under apps.example.com (at any depth), and the most
//   specific wildcard wins; an exact host beats a wildcard;
// - `example.com/api` matches `/api` and `/api/…` (whole path segments; paths are
//   case-sensitive, as URLs are), and the longest matching prefix wins.
//
// Lookup cost stays flat in the number of routes: one hash lookup per host, plus one per
// path segment and per wildcard level, never a scan of the table.
import { EndpointPool, makeEndpoint, type Endpoint, type EndpointFields, type PutResult } from './endpoint-pool.ts';

export interface RouteKey {
  /** Lowercased host without port; for a wildcard, the part after `*.`. */
  host: string;
  wildcard: boolean;
  /** '' for the whole host, else `/seg/…` without a trailing slash. */
  path: string;
  /** The canonical route: `host/path` or `*.host/path`. */
  key: string;
}

const HOST_LABELS = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/;
const PATH_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;

/** The canonical form of a registered route, or undefined when it is not a valid route. */
export function parseRouteUri(uri: string): RouteKey | undefined {
  let s = uri.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(s);
  if (scheme) s = s.slice(scheme[0].length);
  const slash = s.indexOf('/');
  let hostPart = slash < 0 ? s : s.slice(0, slash);
  let path = slash < 0 ? '' : s.slice(slash);
  if (path.includes('?') || path.includes('#') || !PATH_CHARS.test(path) || path.includes('//')) return undefined;
  while (path.endsWith('/')) path = path.slice(0, -1);
  hostPart = hostPart.toLowerCase().replace(/:\d{1,5}$/, '');
  if (hostPart.endsWith('.')) hostPart = hostPart.slice(0, -1);
  let wildcard = false;
  if (hostPart.startsWith('*.')) {
    wildcard = true;
    hostPart = hostPart.slice(2);
  }
  if (hostPart.length === 0 || hostPart.length > 253 || !HOST_LABELS.test(hostPart)) return undefined;
  return { host: hostPart, wildcard, path, key: `${wildcard ? '*.' : ''}${hostPart}${path}` };
}

/** The host a request is routed by: lowercased, without port or trailing dot. */
export function requestRouteHost(hostHeader: string): string {
  let h = hostHeader;
  if (h.charCodeAt(0) === 91 /* [ */) {
    const end = h.indexOf(']');
    h = end < 0 ? h : h.slice(0, end + 1);
  } else {
    const colon = h.lastIndexOf(':');
    if (colon >= 0) h = h.slice(0, colon);
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h.toLowerCase();
}

class HostRoutes {
  root: EndpointPool | undefined;
  paths: Map<string, EndpointPool> | undefined;

  get empty(): boolean {
    return this.root === undefined && (this.paths === undefined || this.paths.size === 0);
  }

  /** Longest matching path prefix, cutting the request path at segment boundaries. */
  match(path: string): EndpointPool | undefined {
    const paths = this.paths;
    if (paths !== undefined && path.length > 1) {
      let p = path;
      for (;;) {
        const hit = paths.get(p);
        if (hit !== undefined && hit.size > 0) return hit;
        const cut = p.lastIndexOf('/');
        if (cut <= 0) break;
        p = p.slice(0, cut);
      }
    }
    return this.root !== undefined && this.root.size > 0 ? this.root : undefined;
  }

  get(path: string): EndpointPool | undefined {
    return path === '' ? this.root : this.paths?.get(path);
  }

  create(path: string, key: string): EndpointPool {
    const pool = new EndpointPool(key);
    if (path === '') this.root = pool;
    else (this.paths ??= new Map()).set(path, pool);
    return pool;
  }

  delete(path: string): void {
    if (path === '') this.root = undefined;
    else this.paths?.delete(path);
  }
}

export type RegisterResult = PutResult | 'invalid_uri';

export interface RemovedEndpoint {
  uri: string;
  endpoint: Endpoint;
}

export class RouteTable {
  private readonly exact = new Map<string, HostRoutes>();
  private readonly wildcards = new Map<string, HostRoutes>();
  private routes = 0;
  private endpoints = 0;

  get routeCount(): number {
    return this.routes;
  }

  get endpointCount(): number {
    return this.endpoints;
  }

  register(uri: string, fields: EndpointFields, now: number): RegisterResult {
    const key = parseRouteUri(uri);
    if (!key) return 'invalid_uri';
    return this.put(key, makeEndpoint(fields, now));
  }

  put(key: RouteKey, endpoint: Endpoint): PutResult {
    const hosts = key.wildcard ? this.wildcards : this.exact;
    let host = hosts.get(key.host);
    if (host === undefined) {
      host = new HostRoutes();
      hosts.set(key.host, host);
    }
    let pool = host.get(key.path);
    if (pool === undefined) {
      pool = host.create(key.path, key.key);
      this.routes++;
    }
    const result = pool.put(endpoint);
    if (result === 'added') this.endpoints++;
    return result;
  }

  /** Removes the endpoint at `address` from the route; undefined when nothing was removed. */
  unregister(uri: string, address: string, stickyId?: string): Endpoint | undefined {
    const key = parseRouteUri(uri);
    return key ? this.remove(key, address, stickyId) : undefined;
  }

  remove(key: RouteKey, address: string, stickyId?: string): Endpoint | undefined {
    const hosts = key.wildcard ? this.wildcards : this.exact;
    const host = hosts.get(key.host);
    const pool = host?.get(key.path);
    if (!host || !pool) return undefined;
    const removed = pool.remove(address, stickyId);
    if (!removed) return undefined;
    this.endpoints--;
    if (pool.size === 0) {
      host.delete(key.path);
      this.routes--;
      if (host.empty) hosts.delete(key.host);
    }
    return removed;
  }

  /** The pool serving a request; `host` as requestRouteHost gives it, `path` without query. */
  lookup(host: string, path: string): EndpointPool | undefined {
    const exact = this.exact.get(host);
    if (exact !== undefined) {
      const hit = exact.match(path);
      if (hit !== undefined) return hit;
    }
    if (this.wildcards.size === 0) return undefined;
    // Most specific wildcard first: a.b.example.com tries *.b.example.com, then *.example.com…
    let dot = host.indexOf('.');
    while (dot >= 0) {
      const wild = this.wildcards.get(host.slice(dot + 1));
      if (wild !== undefined) {
        const hit = wild.match(path);
        if (hit !== undefined) return hit;
      }
      dot = host.indexOf('.', dot + 1);
    }
    return undefined;
  }

  /**
   * Removes endpoints not refreshed within their stale threshold (their own, else
   * `defaultStaleMs`). The caller does not call this while NATS is unreachable.
   */
  prune(now: number, defaultStaleMs: number): RemovedEndpoint[] {
    const stale: Array<{ key: RouteKey; endpoint: Endpoint }> = [];
    for (const [key, pool] of this.pools()) {
      for (const e of pool.endpoints) {
        if (now - e.updatedAt > (e.staleAfterMs ?? defaultStaleMs)) stale.push({ key, endpoint: e });
      }
    }
    for (const { key, endpoint } of stale) this.remove(key, endpoint.address);
    return stale.map(({ key, endpoint }) => ({ uri: key.key, endpoint }));
  }

  /** Marks every endpoint refreshed now: the stale clock stops while NATS is unreachable. */
  freshen(now: number): void {
    for (const [, pool] of this.pools()) for (const e of pool.endpoints) e.updatedAt = Math.max(e.updatedAt, now);
  }

  clear(): void {
    this.exact.clear();
    this.wildcards.clear();
    this.routes = 0;
    this.endpoints = 0;
  }

  /** Every route with its pool, in no particular order. */
  *pools(): Generator<[RouteKey, EndpointPool]> {
    for (const [wildcard, hosts] of [[false, this.exact], [true, this.wildcards]] as const) {
      for (const [host, routes] of hosts) {
        if (routes.root) yield [{ host, wildcard, path: '', key: routes.root.uri }, routes.root];
        if (routes.paths) for (const [path, pool] of routes.paths) yield [{ host, wildcard, path, key: pool.uri }, pool];
      }
    }
  }
}

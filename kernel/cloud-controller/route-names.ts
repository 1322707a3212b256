// Route names, pure: what a host and a path may look like, which hosts are reserved, and the
// URI (host.domain/path) routers and DEAs carry.

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Why a host is not a valid DNS label, or null. An empty host means the bare domain. */
export function invalidHost(host: string): string | null {
  if (host === '') return null;
  if (host === '*') return null;
  if (host.length > 63) return 'host must be no more than 63 characters';
  if (!LABEL.test(host)) return 'host must be lower-case letters, digits and hyphens, not starting or ending with a hyphen';
  return null;
}

/** Why a route path is invalid, or null. Empty means no path. */
export function invalidPath(path: string): string | null {
  if (path === '') return null;
  if (!path.startsWith('/')) return 'path must begin with /';
  if (path === '/') return 'path cannot be exactly /';
  if (/[?#\s]/.test(path)) return 'path cannot contain ?, # or whitespace';
  if (path.length > 128) return 'path must be no more than 128 characters';
  if (path.split('/').some((s) => s === '..' || s === '.')) return 'path cannot contain . or .. segments';
  return null;
}

export function routeUri(host: string, domain: string, path = ''): string {
  return `${host ? `${host}.` : ''}${domain}${path}`;
}

/** Hosts of the system domain belong to the platform (the API's `api` first of all). */
export function isReserved(host: string, domain: string, systemDomain: string, reservedHosts: readonly string[]): boolean {
  if (domain !== systemDomain) return false;
  return host === '' || host === '*' || reservedHosts.includes(host);
}

/** A whole URI fits in a DNS name (253) plus its path. */
export function uriTooLong(host: string, domain: string): boolean {
  return routeUri(host, domain).length > 253;
}

/** Whether one domain is the other or lies under it (`shop.example.com` and `example.com`). */
export function domainsNest(a: string, b: string): boolean {
  return a === b || a.endsWith(`.${b}`) || b.endsWith(`.${a}`);
}

/**
 * The existing domain a new one may not sit beside, or undefined. A private domain nested in
 * (or around) a domain of another owner would let that owner's routes take its URLs
 * (`shop` in `example.com` is `shop.example.com`), so CF refuses it; shared domains among
 * themselves are the admins' affair and are not checked.
 */
export function overlappingDomain<D extends { name: string; organization_guid: string | null }>(name: string, orgGuid: string | null, existing: readonly D[]): D | undefined {
  return existing.find((d) => d.organization_guid !== orgGuid && (d.organization_guid !== null || orgGuid !== null) && d.name !== name && domainsNest(name, d.name));
}

// Names of the kernel objects a container host creates. Every name carries the host's prefix
// so that concurrent DEAs, tests and CI runs never collide, and so sweep(prefix) can find
// leftovers. Linux caps interface names at 15 characters (IFNAMSIZ − 1), hence the hash.

import { createHash } from 'node:crypto';

export const IFNAME_MAX = 15;
export const PREFIX_PATTERN = /^[a-z][a-z0-9-]{0,19}$/;
export const CONTAINER_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Network namespace of a container: `<prefix>-<id>` (a file in /run/netns). */
export function netnsName(prefix: string, id: string): string {
  return `${prefix}-${id}`;
}

/** Host end of a container's veth pair: `iv` + 12 hex of a hash of prefix and id (14 chars). */
export function vethName(prefix: string, id: string): string {
  const hash = createHash('sha256').update(`${prefix}/${id}`).digest('hex');
  return `iv${hash.slice(0, 12)}`;
}

/** The interface alias that ties a veth to its prefix (aliases hold up to 255 bytes). */
export function vethAlias(prefix: string, id: string): string {
  return netnsName(prefix, id);
}

/** nft identifiers take [A-Za-z0-9_]; one table per DEA. */
export function nftTableName(prefix: string): string {
  return prefix.replace(/[^A-Za-z0-9_]/g, '_');
}

/** Cgroup path of a container relative to a controller root. */
export function cgroupPath(parent: string, prefix: string, id: string): string {
  return `${hostCgroupPath(parent, prefix)}/${id}`;
}

/** Cgroup path holding all containers of one host. */
export function hostCgroupPath(parent: string, prefix: string): string {
  return parent ? `${parent}/${prefix}` : prefix;
}

/** A hostname (RFC 1123 label) made from a container id. */
export function hostnameFor(id: string): string {
  const label = id.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  return label || 'container';
}

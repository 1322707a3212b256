// Names of what the local CPI creates. Each carries the CPI's prefix so side-by-side CPIs never
// collide and sweep(prefix) finds leftovers; interface names fit Linux's 15 characters.

import { createHash, randomBytes } from 'node:crypto';

export const IFNAME_MAX = 15;

export function newVmCid(): string {
  return `vm-${randomBytes(8).toString('hex')}`;
}

export function newDiskCid(): string {
  return `disk-${randomBytes(8).toString('hex')}`;
}

export function newStemcellCid(): string {
  return `sc-${randomBytes(6).toString('hex')}`;
}

export const CID_PATTERN = /^(vm|disk|sc)-[0-9a-f]{8,32}$/;

export function netnsName(prefix: string, vmCid: string): string {
  return `${prefix}-${vmCid}`;
}

/** Host end of a VM's veth: prefix + `v` + hash of the cid, cut to 15 characters. */
export function vethName(prefix: string, vmCid: string): string {
  const hash = createHash('sha256').update(`${prefix}/${vmCid}`).digest('hex');
  return `${prefix}v${hash}`.slice(0, IFNAME_MAX);
}

/** nft identifiers take [A-Za-z0-9_]; one table per CPI prefix. */
export function nftTableName(prefix: string): string {
  return `${prefix.replace(/[^A-Za-z0-9_]/g, '_')}_cpi`;
}

export function cgroupPath(parent: string, prefix: string, vmCid: string): string {
  return [parent, prefix, vmCid].filter(Boolean).join('/');
}

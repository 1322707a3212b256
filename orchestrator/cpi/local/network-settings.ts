// Reads BOSH's networks hash for one VM of the local IaaS: which address it takes (a static ip
// honoured, or one to allocate), its prefix length and gateway. Pure.

import { formatIPv4, parseIPv4 } from '../../../kernel/dea/container/ipv4.ts';
import { CloudError } from '../errors.ts';
import type { Networks } from '../types.ts';

export interface VmAddressing {
  /** Name of the network in the hash. */
  network: string;
  /** Null: allocate one from the subnet. */
  ip: string | null;
  prefixLength: number;
  gateway: string;
}

export function netmaskToBits(netmask: string): number | null {
  const n = parseIPv4(netmask);
  if (n === null) return null;
  const bits = 32 - Math.log2(((~n >>> 0) + 1) >>> 0 || 2 ** 32);
  if (!Number.isInteger(bits)) return null;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return mask === n ? bits : null;
}

export function inSubnet(ip: number, subnet: { base: number; bits: number }): boolean {
  const mask = subnet.bits === 0 ? 0 : (0xffffffff << (32 - subnet.bits)) >>> 0;
  return ((ip & mask) >>> 0) === subnet.base;
}

/** The VM's addressing on `subnet`; the default network (or the only one) is the VM's. */
export function readNetworks(
  networks: Networks,
  subnet: { base: number; bits: number; text: string },
  cpiGateway: string,
): VmAddressing {
  const names = Object.keys(networks);
  if (names.length === 0) throw new CloudError('Reading networks: no network given');
  const name =
    names.length === 1 ? names[0]! : (names.find((n) => networks[n]!.default?.includes('gateway')) ?? names[0]!);
  const spec = networks[name]!;
  const problems: string[] = [];
  if (spec.type === 'vip') problems.push(`${name}.type: vip networks are not supported by the local CPI`);
  let ip: string | null = null;
  if (spec.type !== 'dynamic' && spec.ip !== undefined) {
    const n = parseIPv4(spec.ip);
    if (n === null) problems.push(`${name}.ip: "${spec.ip}" is not an IPv4 address`);
    else if (!inSubnet(n, subnet)) problems.push(`${name}.ip: ${spec.ip} is outside the local subnet ${subnet.text}`);
    else if (n === subnet.base || n === subnet.base + 2 ** (32 - subnet.bits) - 1) problems.push(`${name}.ip: ${spec.ip} is the subnet's network or broadcast address`);
    else if (spec.ip === cpiGateway) problems.push(`${name}.ip: ${spec.ip} is the bridge's gateway address`);
    else ip = formatIPv4(n);
  } else if (spec.type === 'manual') {
    problems.push(`${name}.ip: a manual network needs an ip`);
  }
  let prefixLength = subnet.bits;
  if (spec.netmask !== undefined) {
    const bits = netmaskToBits(spec.netmask);
    if (bits === null) problems.push(`${name}.netmask: "${spec.netmask}" is not a netmask`);
    else if (bits < subnet.bits) problems.push(`${name}.netmask: ${spec.netmask} is wider than the local subnet ${subnet.text}`);
    else prefixLength = bits;
  }
  if (spec.gateway !== undefined && spec.gateway !== cpiGateway) {
    problems.push(`${name}.gateway: ${spec.gateway} is not the local bridge's address ${cpiGateway}`);
  }
  if (problems.length) throw new CloudError(`Reading networks: ${problems.join('; ')}`);
  return { network: name, ip, prefixLength, gateway: cpiGateway };
}

/** Every host address of the subnet a VM may take, lowest first (the gateway excluded). */
export function* candidateAddresses(subnet: { base: number; bits: number }, gateway: string): Generator<string> {
  const size = 2 ** (32 - subnet.bits);
  for (let i = 1; i < size - 1; i++) {
    const ip = formatIPv4(subnet.base + i);
    if (ip !== gateway) yield ip;
  }
}

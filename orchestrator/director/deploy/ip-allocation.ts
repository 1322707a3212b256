// IP allocation across deploys (pure). The manifest check allocates addresses as if nothing
// were deployed; here an instance keeps the address it has whenever that address is still
// valid (in a subnet of its network serving its AZ, not reserved, not in the static range, not
// the gateway, not claimed by another instance), and the others get the lowest free address of
// their subnet. Static IPs always come from the manifest. Links are rewritten to match.
import type { CloudConfig, Deployment, LinkData, Subnet } from '../../manifest/mod.ts';
import { formatIp, parseCidr, parseIp, parseIpRange } from '../../manifest/ip-ranges.ts';

/** `group/index` → network name → address. */
export type AddressBook = Map<string, Record<string, string>>;

export class IpAllocationError extends Error {
  override name = 'IpAllocationError';
  readonly code = 'ip_exhausted';
}

function inRanges(ranges: readonly string[], ip: number): boolean {
  return ranges.some((r) => {
    const range = parseIpRange(r);
    return range !== undefined && ip >= range[0] && ip <= range[1];
  });
}

function usable(subnet: Subnet, ip: number): boolean {
  const cidr = subnet.range === undefined ? undefined : parseCidr(subnet.range);
  if (!cidr || ip <= cidr.first || ip >= cidr.last) return false;
  if (subnet.gateway !== undefined && parseIp(subnet.gateway) === ip) return false;
  return !inRanges(subnet.reserved, ip) && !inRanges(subnet.static, ip);
}

function subnetsFor(subnets: readonly Subnet[], az: string): Subnet[] {
  return subnets.filter((s) => s.azs.length === 0 || s.azs.includes(az));
}

/**
 * Addresses for every instance of the deployment: static ones as the manifest says, kept ones
 * from `previous`, then the lowest free. `hold` are addresses nobody may take though no
 * instance keeps them: the old VMs of a create-swap-delete still use them while their
 * replacements (with new addresses) come up. Throws IpAllocationError naming the instance when a
 * subnet is full.
 */
export function allocateAddresses(deployment: Deployment, cloud: CloudConfig, previous: AddressBook, hold: AddressBook = new Map()): AddressBook {
  const taken = new Map<string, Set<number>>();
  const takenOn = (net: string): Set<number> => taken.get(net) ?? taken.set(net, new Set()).get(net)!;
  for (const book of hold.values()) for (const [net, ip] of Object.entries(book)) takenOn(net).add(parseIp(ip)!);
  const out: AddressBook = new Map();
  const pending: Array<{ key: string; net: string; az: string }> = [];

  // Static addresses first: nobody may keep one that the manifest now gives to someone else.
  for (const ig of deployment.instance_groups) {
    for (const inst of ig.instances) {
      for (const n of inst.networks) if (n.static && n.address) takenOn(n.name).add(parseIp(n.address)!);
    }
  }
  for (const ig of deployment.instance_groups) {
    for (const inst of ig.instances) {
      const key = `${ig.name}/${inst.index}`;
      const book: Record<string, string> = {};
      out.set(key, book);
      for (const n of inst.networks) {
        if (n.static && n.address) {
          book[n.name] = n.address;
          continue;
        }
        if (n.type !== 'manual') continue;
        const net = cloud.networks.find((c) => c.name === n.name);
        const before = previous.get(key)?.[n.name];
        const ip = before === undefined ? undefined : parseIp(before);
        if (net && ip !== undefined && !takenOn(n.name).has(ip) && subnetsFor(net.subnets, inst.az).some((s) => usable(s, ip) && inCidr(s, ip))) {
          takenOn(n.name).add(ip);
          book[n.name] = before!;
          continue;
        }
        pending.push({ key, net: n.name, az: inst.az });
      }
    }
  }
  for (const p of pending) {
    const net = cloud.networks.find((c) => c.name === p.net);
    let found: number | undefined;
    for (const subnet of subnetsFor(net?.subnets ?? [], p.az)) {
      const cidr = subnet.range === undefined ? undefined : parseCidr(subnet.range);
      if (!cidr) continue;
      for (let ip = cidr.first + 1; ip < cidr.last && found === undefined; ip++) {
        if (usable(subnet, ip) && !takenOn(p.net).has(ip)) found = ip;
      }
      if (found !== undefined) break;
    }
    if (found === undefined) throw new IpAllocationError(`Allocating an address for ${p.key}: network ${p.net} has no free address left in az ${p.az}`);
    takenOn(p.net).add(found);
    out.get(p.key)![p.net] = formatIp(found);
  }
  return out;
}

function inCidr(subnet: Subnet, ip: number): boolean {
  const cidr = subnet.range === undefined ? undefined : parseCidr(subnet.range);
  return cidr !== undefined && ip >= cidr.first && ip <= cidr.last;
}

/** The deployment with the allocated addresses, in its instances and in every link that names them. */
export function applyAddresses(deployment: Deployment, book: AddressBook): Deployment {
  // Each instance's old address (as the manifest check chose it) → the allocated one.
  const moved = new Map<string, string>();
  const groups = deployment.instance_groups.map((ig) => ({
    ...ig,
    instances: ig.instances.map((inst) => {
      const addresses = book.get(`${ig.name}/${inst.index}`) ?? {};
      const networks = inst.networks.map((n) => {
        const address = addresses[n.name] ?? n.address;
        if (n.address && address && n.address !== address) moved.set(`${ig.name}/${inst.index}/${n.address}`, address);
        return { ...n, address };
      });
      const def = networks.find((n) => n.default.includes('gateway')) ?? networks[0];
      return { ...inst, networks, address: def?.address ?? inst.address };
    }),
  }));
  const fixLink = (link: LinkData | null): LinkData | null =>
    link === null
      ? null
      : { ...link, instances: link.instances.map((i) => ({ ...i, address: i.address === null ? null : (moved.get(`${i.name}/${i.index}/${i.address}`) ?? i.address) })) };
  return {
    ...deployment,
    instance_groups: groups.map((ig) => ({
      ...ig,
      jobs: ig.jobs.map((j) => ({ ...j, links: Object.fromEntries(Object.entries(j.links).map(([k, v]) => [k, fixLink(v)])) })),
    })),
  };
}

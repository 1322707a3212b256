// Container networking on the host: a network namespace per container joined to the host by
// a veth pair on its own /30 (no bridge, so containers share no L2), and the DEA's nftables
// table (rendered by nft-ruleset.ts) for port mapping, masquerade and the egress filter.

import { readFile, writeFile } from 'node:fs/promises';
import { listNetns, NETNS_DIR, netTools } from '../../linux/netns.ts';
import { run } from './command.ts';
import { doing } from './errors.ts';
import type { SlotAddresses } from './ipv4.ts';
import { netnsName, vethAlias, vethName } from './names.ts';
import { renderDelete, renderReplace, type RulesetInput } from './nft-ruleset.ts';

const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

const tools = netTools({ run, doing });
export const { removeNetns, removeLink, listNftTables, killInside } = tools;
export { listNetns };

export interface ContainerNet {
  netns: string;
  /** Path to hand to nsenter --net=. */
  netnsPath: string;
  veth: string;
  addresses: SlotAddresses;
}

export function describeContainerNet(prefix: string, id: string, addresses: SlotAddresses): ContainerNet {
  const netns = netnsName(prefix, id);
  return { netns, netnsPath: `${NETNS_DIR}/${netns}`, veth: vethName(prefix, id), addresses };
}

/** Creates the namespace and its link; on failure removes whatever part was made. */
export async function createContainerNet(
  prefix: string,
  id: string,
  addresses: SlotAddresses,
  options: { mapLoopback: boolean },
): Promise<ContainerNet> {
  const net = describeContainerNet(prefix, id, addresses);
  const { netns, veth } = net;
  const cidrLen = (addr: string) => `${addr}/30`;
  try {
    await doing(`Creating network namespace ${netns}`, () => run(['ip', 'netns', 'add', netns]));
    await doing(`Creating veth ${veth} into ${netns}`, async () => {
      await run(['ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
      // The alias ties the link to its prefix, so sweep() finds it even if the netns is gone.
      await run(['ip', 'link', 'set', 'dev', veth, 'alias', vethAlias(prefix, id)]);
      await run(['ip', 'addr', 'add', cidrLen(addresses.gateway), 'dev', veth]);
      await run(['ip', 'link', 'set', 'dev', veth, 'up']);
      // Lets host-originated traffic to 127.0.0.1:<hostPort>, DNAT'd to the container, leave
      // through this link (see nft-ruleset.ts); the setting dies with the link.
      if (options.mapLoopback) await writeFile(`/proc/sys/net/ipv4/conf/${veth}/route_localnet`, '1');
    });
    await doing(`Configuring eth0 in ${netns}`, () => tools.configureEth0(netns, cidrLen(addresses.container), addresses.gateway));
    return net;
  } catch (err) {
    await removeContainerNet(prefix, id).catch(() => undefined);
    throw err;
  }
}

/** Removes the namespace and the host end of the veth; a no-op for parts already gone. */
export async function removeContainerNet(prefix: string, id: string): Promise<void> {
  await removeNetns(netnsName(prefix, id));
  await removeLink(vethName(prefix, id));
}

/** Host links whose alias starts with `prefix` (the host ends of containers' veths). */
export async function listLinksByAlias(prefix: string): Promise<string[]> {
  const r = await run(['ip', '-j', 'link', 'show', 'type', 'veth']);
  const links = JSON.parse(r.stdout || '[]') as Array<{ ifname: string; ifalias?: string }>;
  return links.filter((l) => l.ifalias?.startsWith(prefix)).map((l) => l.ifname);
}

export async function applyRuleset(input: RulesetInput): Promise<void> {
  await doing(`Applying nftables table ${input.table}`, () => run(['nft', '-f', '-'], { input: renderReplace(input) }));
}

export async function deleteTable(table: string): Promise<void> {
  await doing(`Deleting nftables table ${table}`, () => run(['nft', '-f', '-'], { input: renderDelete(table) }));
}

/** Containers' traffic is routed through the host. The setting is host-wide and shared with
 *  other DEAs and VMs, so it is turned on but never turned back off. */
export async function enableIpForwarding(): Promise<void> {
  await doing('Enabling IPv4 forwarding', async () => {
    if ((await readFile(IP_FORWARD, 'utf8')).trim() !== '1') await writeFile(IP_FORWARD, '1');
  });
}

// Container networking on the host: a network namespace per container joined to the host by
// a veth pair on its own /30 (no bridge, so containers share no L2), and the DEA's nftables
// table (rendered by nft-ruleset.ts) for port mapping, masquerade and the egress filter.

import { access, readFile, readdir, writeFile } from 'node:fs/promises';
import { run } from './command.ts';
import { doing } from './errors.ts';
import type { SlotAddresses } from './ipv4.ts';
import { netnsName, vethAlias, vethName } from './names.ts';
import { renderDelete, renderReplace, type RulesetInput } from './nft-ruleset.ts';

const NETNS_DIR = '/run/netns';
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

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
    await doing(`Configuring eth0 in ${netns}`, async () => {
      await run(['ip', '-n', netns, 'addr', 'add', cidrLen(addresses.container), 'dev', 'eth0']);
      await run(['ip', '-n', netns, 'link', 'set', 'dev', 'eth0', 'up']);
      await run(['ip', '-n', netns, 'link', 'set', 'dev', 'lo', 'up']);
      await run(['ip', '-n', netns, 'route', 'add', 'default', 'via', addresses.gateway]);
    });
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

export async function removeNetns(netns: string): Promise<void> {
  if (!(await exists(`${NETNS_DIR}/${netns}`))) return;
  await doing(`Deleting network namespace ${netns}`, () => run(['ip', 'netns', 'delete', netns]));
}

export async function removeLink(name: string): Promise<void> {
  if (!(await exists(`/sys/class/net/${name}`))) return;
  await doing(`Deleting link ${name}`, async () => {
    const r = await run(['ip', 'link', 'delete', 'dev', name], { allowFailure: true });
    // Deleting the netns may take the pair with it between the check and the delete.
    if (r.exitCode !== 0 && (await exists(`/sys/class/net/${name}`))) throw new Error(r.stderr.trim());
  });
}

export async function listNetns(): Promise<string[]> {
  try {
    return await readdir(NETNS_DIR);
  } catch {
    return [];
  }
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

export async function listNftTables(): Promise<string[]> {
  const r = await run(['nft', '-j', 'list', 'tables']);
  const doc = JSON.parse(r.stdout || '{"nftables":[]}') as { nftables: Array<{ table?: { family: string; name: string } }> };
  return doc.nftables.flatMap((e) => (e.table && e.table.family === 'ip' ? [e.table.name] : []));
}

/** Containers' traffic is routed through the host. The setting is host-wide and shared with
 *  other DEAs and VMs, so it is turned on but never turned back off. */
export async function enableIpForwarding(): Promise<void> {
  await doing('Enabling IPv4 forwarding', async () => {
    if ((await readFile(IP_FORWARD, 'utf8')).trim() !== '1') await writeFile(IP_FORWARD, '1');
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

// The host side of the local IaaS's network: the unreachable route for the reserved range
// (set before the bridge exists, never removed — DESIGN.md §4), the bridge with the gateway
// address, the CPI's nftables table, and each VM's veth + network namespace.

import { readFile, writeFile } from 'node:fs/promises';
import { listNetns, netTools, pathExists } from '../../../kernel/linux/netns.ts';
import { doing } from '../errors.ts';
import { run } from './command.ts';
import type { LocalCpiConfig } from './config.ts';
import { netnsName, nftTableName, vethName } from './names.ts';
import { renderDelete, renderReplace } from './nft-rules.ts';

const tools = netTools({ run, doing });
export const { removeNetns, removeLink, listNftTables, killInside } = tools;
export { listNetns, pathExists as exists };

/** Idempotent; safe when several create_vm calls race (each step tolerates the others'). */
export async function ensureHostNetwork(config: LocalCpiConfig): Promise<void> {
  await doing(`Installing the unreachable route for ${config.reservedRange.text}`, () =>
    run(['ip', 'route', 'replace', 'unreachable', config.reservedRange.text]),
  );
  const { bridge } = config;
  await doing(`Creating bridge ${bridge}`, async () => {
    if (!(await pathExists(`/sys/class/net/${bridge}`))) {
      const r = await run(['ip', 'link', 'add', bridge, 'type', 'bridge'], { allowFailure: true });
      if (r.exitCode !== 0 && !(await pathExists(`/sys/class/net/${bridge}`))) throw new Error(r.stderr.trim());
    }
    await run(['ip', 'addr', 'replace', `${config.gateway}/${config.subnet.bits}`, 'dev', bridge]);
    await run(['ip', 'link', 'set', 'dev', bridge, 'up']);
  });
  const table = nftTableName(config.prefix);
  await doing(`Applying nftables table ${table}`, () =>
    run(['nft', '-f', '-'], {
      input: renderReplace({ table, bridge, subnet: config.subnet.text, gateway: config.gateway }),
    }),
  );
  await doing('Enabling IPv4 forwarding', async () => {
    // Host-wide and shared with DEAs: turned on, never off. Forwarding is what lets the table's
    // reject answer a VM at once instead of the packet vanishing.
    if ((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim() !== '1') {
      await writeFile('/proc/sys/net/ipv4/ip_forward', '1');
    }
  });
}

export interface VmLink {
  netns: string;
  veth: string;
}

export async function createVmNetwork(
  config: LocalCpiConfig,
  vmCid: string,
  addressing: { ip: string; prefixLength: number; gateway: string },
): Promise<VmLink> {
  const netns = netnsName(config.prefix, vmCid);
  const veth = vethName(config.prefix, vmCid);
  try {
    await doing(`Creating network namespace ${netns}`, () => run(['ip', 'netns', 'add', netns]));
    await doing(`Creating veth ${veth} onto bridge ${config.bridge}`, async () => {
      await run(['ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
      // The alias ties the link to its prefix, so a sweep finds it even if the netns is gone.
      await run(['ip', 'link', 'set', 'dev', veth, 'alias', netns]);
      await run(['ip', 'link', 'set', 'dev', veth, 'master', config.bridge]);
      await run(['ip', 'link', 'set', 'dev', veth, 'up']);
    });
    await doing(`Configuring eth0 of ${netns} as ${addressing.ip}/${addressing.prefixLength}`, () =>
      tools.configureEth0(netns, `${addressing.ip}/${addressing.prefixLength}`, addressing.gateway),
    );
    return { netns, veth };
  } catch (err) {
    await removeVmNetwork(config.prefix, vmCid).catch(() => undefined);
    throw err;
  }
}

export async function removeVmNetwork(prefix: string, vmCid: string): Promise<void> {
  await removeNetns(netnsName(prefix, vmCid));
  await removeLink(vethName(prefix, vmCid));
}

export async function listLinks(): Promise<Array<{ ifname: string; ifalias?: string }>> {
  const r = await run(['ip', '-j', 'link', 'show']);
  return JSON.parse(r.stdout || '[]') as Array<{ ifname: string; ifalias?: string }>;
}

export async function deleteNftTable(table: string): Promise<void> {
  await doing(`Deleting nftables table ${table}`, () => run(['nft', '-f', '-'], { input: renderDelete(table) }));
}

// Removes what a dead run of the local CPI left: processes and cgroups under
// <cgroup_parent>/<prefix>*, network namespaces and links (veths by alias, the bridge by name)
// starting with the prefix, its nftables tables, and the keepers' stash dirs. The unreachable
// route of the default range is never removed; another range's is only when asked.

import { readFile, readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CloudError } from '../errors.ts';
import { cgroupPids, destroyCgroup, CONTROLLERS } from './cgroup.ts';
import { run } from './command.ts';
import { DEFAULT_CGROUP_PARENT, DEFAULT_RESERVED_RANGE } from './config.ts';
import { deleteNftTable, killInside, listLinks, listNetns, listNftTables, removeLink, removeNetns } from './host-network.ts';
import { nftTableName } from './names.ts';
import { inSubnet } from './network-settings.ts';
import { parseCidr } from '../../../kernel/dea/container/ipv4.ts';

export interface SweepOptions {
  cgroupRoot?: string;
  cgroupParent?: string;
  /** Also remove this range's unreachable route (refused for the default range). */
  reservedRange?: string;
  /** Also remove unreachable routes inside this range that no longer hold a more specific
   *  route (a bridge): what dead test runs left (refused for the default range). */
  orphanRoutesWithin?: string;
}

export interface SweepReport {
  processes: number;
  cgroups: string[];
  netns: string[];
  links: string[];
  nftTables: string[];
  routes: string[];
}

export async function sweep(prefix: string, options: SweepOptions = {}): Promise<SweepReport> {
  // A prefix matches by string start, so it must be specific enough not to sweep strangers.
  if (!/^[a-z][a-z0-9-]{2,}$/.test(prefix)) throw new CloudError(`Sweeping: prefix "${prefix}" must be 3 or more of [a-z0-9-]`);
  const root = options.cgroupRoot ?? '/sys/fs/cgroup';
  const parent = options.cgroupParent ?? DEFAULT_CGROUP_PARENT;
  const report: SweepReport = { processes: 0, cgroups: [], netns: [], links: [], nftTables: [], routes: [] };

  // The registry proxy daemon, marked by `--prefix <prefix>` on its command line.
  for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const i = argv.indexOf('--prefix');
    if (argv.some((a) => a.includes('registry-proxy-main')) && i > 0 && argv[i + 1]?.startsWith(prefix)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
        report.processes++;
      } catch {
        // gone
      }
    }
  }

  const hosts = new Set<string>();
  for (const c of CONTROLLERS) {
    for (const name of await readdir(join(root, c, parent)).catch(() => [] as string[])) if (name.startsWith(prefix)) hosts.add(name);
  }
  for (const host of hosts) {
    const vms = new Set<string>();
    for (const c of CONTROLLERS) {
      const dir = join(root, c, parent, host);
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) vms.add(e.name);
    }
    for (const vm of [...vms, '']) {
      const path = [parent, host, vm].filter(Boolean).join('/');
      report.processes += (await cgroupPids(root, path)).length;
      await destroyCgroup(root, path);
      report.cgroups.push(path);
    }
  }
  for (const c of CONTROLLERS) await rmdir(join(root, c, parent)).catch(() => undefined);

  for (const ns of (await listNetns()).filter((n) => n.startsWith(prefix))) {
    report.processes += await killInside(ns);
    await removeNetns(ns);
    report.netns.push(ns);
  }

  for (const link of await listLinks()) {
    if (link.ifname.startsWith(prefix) || link.ifalias?.startsWith(prefix)) {
      await removeLink(link.ifname);
      report.links.push(link.ifname);
    }
  }

  const table = nftTableName(prefix).replace(/_cpi$/, '');
  for (const name of (await listNftTables()).filter((t) => t.startsWith(table) && t.endsWith('_cpi'))) {
    await deleteNftTable(name);
    report.nftTables.push(name);
  }

  for (const dir of await readdir('/run/ingot-cpi').catch(() => [] as string[])) {
    if (dir.startsWith(prefix)) await rm(join('/run/ingot-cpi', dir), { recursive: true, force: true });
  }
  await rmdir('/run/ingot-cpi').catch(() => undefined);

  const ranges = options.reservedRange ? [options.reservedRange] : [];
  if (options.orphanRoutesWithin) ranges.push(...(await orphanUnreachableRoutes(options.orphanRoutesWithin)));
  for (const range of ranges) {
    if (range === DEFAULT_RESERVED_RANGE) continue;
    const r = await run(['ip', 'route', 'del', 'unreachable', range], { allowFailure: true });
    if (r.exitCode === 0) report.routes.push(range);
  }
  return report;
}

/** Unreachable routes inside `within` with no more specific route inside them. */
async function orphanUnreachableRoutes(within: string): Promise<string[]> {
  const outer = parseCidr(within);
  if (!outer) throw new CloudError(`Sweeping: "${within}" is not a CIDR`);
  const routes = JSON.parse((await run(['ip', '-j', 'route', 'show', 'table', 'main'])).stdout || '[]') as Array<{ type?: string; dst: string }>;
  const cidrs = routes.flatMap((r) => {
    const c = parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
    return c ? [{ ...c, text: r.dst, unreachable: r.type === 'unreachable' }] : [];
  });
  return cidrs
    .filter((u) => u.unreachable && inSubnet(u.base, outer) && u.bits >= outer.bits)
    .filter((u) => !cidrs.some((o) => !o.unreachable && o.bits > u.bits && inSubnet(o.base, u)))
    .map((u) => u.text);
}

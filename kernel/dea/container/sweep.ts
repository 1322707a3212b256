// Removes what dead runs left behind: every kernel object whose name starts with a prefix —
// processes and cgroups under <cgroupParent>/<prefix>*, network namespaces <prefix>*, veths
// whose alias starts with the prefix, nftables tables named after it. For CI and for a DEA
// host that comes back after a crash without its data directory.

import { openCgroups } from './cgroups.ts';
import { InvalidConfigError, wrapError } from './errors.ts';
import { nftTableName } from './names.ts';
import { deleteTable, killInside, listLinksByAlias, listNetns, listNftTables, removeLink, removeNetns } from './network.ts';
import { DEFAULT_CGROUP_PARENT, DEFAULT_CGROUP_ROOT } from './options.ts';
import type { SweepReport } from './types.ts';

export interface SweepOptions {
  cgroupParent?: string;
  cgroupRoot?: string;
}

export async function sweep(prefix: string, options: SweepOptions = {}): Promise<SweepReport> {
  // A prefix matches by string start, so it must be specific enough not to sweep strangers.
  if (!/^[a-z][a-z0-9-]{2,}$/.test(prefix)) {
    throw new InvalidConfigError('sweep prefix', [`prefix: expected 3 or more of [a-z0-9-] starting with a letter, got "${prefix}"`]);
  }
  const report: SweepReport = { processes: 0, netns: [], links: [], nftTables: [], cgroups: [] };
  const parent = options.cgroupParent ?? DEFAULT_CGROUP_PARENT;
  const cgroups = await openCgroups(options.cgroupRoot ?? DEFAULT_CGROUP_ROOT).catch(() => null);

  if (cgroups) {
    for (const hostName of (await cgroups.children(parent)).filter((n) => n.startsWith(prefix))) {
      const hostPath = `${parent}/${hostName}`;
      for (const id of await cgroups.children(hostPath)) {
        const path = `${hostPath}/${id}`;
        report.processes += (await cgroups.pids(path)).length;
        await cgroups.destroy(path).catch((e) => Promise.reject(wrapError(`Sweeping cgroup ${path}`, e)));
        report.cgroups.push(path);
      }
      report.processes += (await cgroups.pids(hostPath)).length;
      await cgroups.destroy(hostPath).catch((e) => Promise.reject(wrapError(`Sweeping cgroup ${hostPath}`, e)));
      report.cgroups.push(hostPath);
    }
    await cgroups.removeIfEmpty(parent);
  }

  for (const ns of (await listNetns()).filter((n) => n.startsWith(prefix))) {
    // Whatever still runs inside (a launcher outside any cgroup) dies with it.
    report.processes += await killInside(ns);
    await removeNetns(ns);
    report.netns.push(ns);
  }

  for (const link of await listLinksByAlias(prefix)) {
    await removeLink(link);
    report.links.push(link);
  }

  const table = nftTableName(prefix);
  for (const name of (await listNftTables()).filter((t) => t.startsWith(table))) {
    await deleteTable(name);
    report.nftTables.push(name);
  }
  return report;
}

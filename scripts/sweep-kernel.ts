// Removes the kernel objects of every test run whose prefix starts with the given one: the
// DEA container hosts' (cgroups, network namespaces, veths, nftables tables) and the local
// CPI's (VMs, bridges, routes, registry proxies). Used by scripts/sweep.sh with `itst`.
import { sweep as sweepContainers } from '../kernel/dea/container/mod.ts';
import { sweep as sweepCpi } from '../orchestrator/cpi/local/mod.ts';

const prefix = process.argv[2];
if (!prefix) {
  console.error('usage: sweep-kernel.ts PREFIX');
  process.exit(2);
}
// The CPI first: its VMs' cgroups share the `ingot` parent with the containers'.
const cpi = await sweepCpi(prefix, { orphanRoutesWithin: '10.245.0.0/16' });
const containers = await sweepContainers(prefix);
const removed = [cpi, containers].reduce((n, r) => n + r.netns.length + r.links.length + r.nftTables.length + r.cgroups.length, 0);
if (removed > 0) console.error(`sweep: removed ${removed} kernel objects of dead test runs`);

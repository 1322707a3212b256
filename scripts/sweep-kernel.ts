// Removes the kernel objects of every test run whose prefix starts with the given one: the
// DEA container hosts' (cgroups, network namespaces, veths, nftables tables) and the local
// CPI's (VMs, bridges, routes, registry proxies). Used by scripts/sweep.sh with `itst`, and by
// scripts/destroy.sh with the local platform's prefixes and its range (a second argument: the
// range whose leftover routes go too; the tests' 10.245.0.0/16 by default).
import { sweep as sweepContainers } from '../kernel/dea/container/mod.ts';
import { sweep as sweepCpi } from '../orchestrator/cpi/local/mod.ts';

const prefix = process.argv[2];
const routes = process.argv[3] ?? '10.245.0.0/16';
if (!prefix) {
  console.error('usage: sweep-kernel.ts PREFIX [ROUTE_RANGE]');
  process.exit(2);
}
// The CPI first: its VMs' cgroups share the `ingot` parent with the containers'.
const cpi = await sweepCpi(prefix, { orphanRoutesWithin: routes });
const containers = await sweepContainers(prefix);
const removed = [cpi, containers].reduce((n, r) => n + r.netns.length + r.links.length + r.nftTables.length + r.cgroups.length, 0);
if (removed > 0) console.error(`sweep: removed ${removed} kernel objects with the prefix ${prefix}`);

// Removes the kernel objects (cgroups, network namespaces, veths, nftables tables) of every
// container host whose prefix starts with the given one. Used by scripts/sweep.sh with the
// test prefix `itst`.
import { sweep } from '../kernel/dea/container/mod.ts';

const prefix = process.argv[2];
if (!prefix) {
  console.error('usage: sweep-kernel.ts PREFIX');
  process.exit(2);
}
const report = await sweep(prefix);
const removed = report.netns.length + report.links.length + report.nftTables.length + report.cgroups.length;
if (removed > 0) console.error(`sweep: removed ${removed} kernel objects of dead test runs (${report.processes} processes)`);

// Address and port blocks of the suites that create containers, kept disjoint so that test
// files running side by side never map the same host port or route the same subnet: one block
// per file (two files drawing from one block at random collided now and then — a request to
// one DEA's port answered by the other's instance). Within its block a file picks at random,
// so a dead run's leftovers rarely get in the way.
import { randomInt } from 'node:crypto';

interface Block {
  /** Third octet of a 10.254.X.0/24 for container addresses. */
  subnetOctet(): number;
  /** First of `span` host ports for this file. */
  portBase(): number;
}

/** Octets [first, last]; ports [first, end) of which a file takes `span`. */
function block(octets: [number, number], ports: [number, number], span: number): Block {
  return {
    subnetOctet: () => randomInt(octets[0], octets[1] + 1),
    portBase: () => ports[0] + randomInt(0, Math.floor((ports[1] - ports[0]) / span)) * span,
  };
}

export const KERNEL_BLOCKS = {
  deaContainer: block([100, 149], [30_000, 35_000], 500),
  dea: block([150, 156], [35_000, 35_700], 100),
  deaCluster: block([157, 163], [35_700, 36_400], 100),
  deaDrain: block([164, 169], [36_400, 37_000], 100),
  e2e: block([170, 189], [37_000, 39_000], 100),
  // 10.254.250.0/24 and ports 61000+ belong to `npm run start:processes` (scripts/local-kernel/dea.yml).
} as const;

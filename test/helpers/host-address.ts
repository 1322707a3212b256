// The host's own non-loopback IPv4 address: what a DEA on this machine registers with the
// routers (container ports are mapped on it). Traffic to it never leaves the machine.
import { networkInterfaces } from 'node:os';

export function hostAddress(): string {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (/^(lo|iv|it|veth|ingot)/.test(name)) continue;
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('this machine has no non-loopback IPv4 address for a DEA to map ports on');
}

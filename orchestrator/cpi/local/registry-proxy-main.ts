// Entry of the registry proxy daemon a local CPI starts: <host> <port> <registry> --prefix P
// (the prefix only marks the process so sweep(prefix) finds it).

import { startRegistryProxy } from './registry-proxy.ts';

const [host, port, registry] = process.argv.slice(2);
if (!host || !port || !registry) {
  process.stderr.write('usage: registry-proxy-main.ts HOST PORT REGISTRY --prefix PREFIX\n');
  process.exit(2);
}
await startRegistryProxy({ host, port: Number(port), registry });
process.stdout.write(`registry proxy on ${host}:${port} for ${registry}\n`);

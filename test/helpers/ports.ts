// Free TCP ports for tests that run concurrently. Not the kernel's bind(0): that hands out a
// port from the ephemeral range, which any process's outgoing connection may take between
// our probe and the component's listen (a CI run saw a controller fail with EADDRINUSE so).
// Instead a random port below that range (and below the container blocks of
// kernel-blocks.ts, 30000+), probed with a bind, and remembered so this process never hands
// it out twice.
import { randomInt } from 'node:crypto';
import { createServer } from 'node:net';

const FIRST = 10_000;
const END = 30_000;
const handedOut = new Set<number>();

function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let tries = 0; tries < 1000; tries++) {
    const port = randomInt(FIRST, END);
    if (handedOut.has(port)) continue;
    if (await bindable(port, host)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${FIRST}-${END - 1} on ${host} after 1000 tries`);
}

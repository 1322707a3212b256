// Listening, as every HTTP server of a component does it: resolve once bound, reject with the
// bind error (a port taken, an address not ours) instead of emitting it to nobody.
import type { Server } from 'node:http';

export function listenOn(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Closes the server once its connections are gone (`all`: cut them first; else only idle ones). */
export async function closeServer(server: Server | undefined, connections: 'all' | 'idle'): Promise<void> {
  if (!server) return;
  if (connections === 'all') server.closeAllConnections();
  else server.closeIdleConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

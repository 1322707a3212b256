// One PostgreSQL session for the length of a function: connected, used, always ended. The
// PostgreSQL node's and the ccdb's admin sessions, and tests' client sessions, go through it.
import pg from 'pg';

/** Bound on a session's connect: a server that takes longer is not accepting connections. */
export const CONNECT_TIMEOUT_MS = 3000;

export async function withSession<T>(options: pg.ClientConfig, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionTimeoutMillis: CONNECT_TIMEOUT_MS, ...options });
  client.on('error', () => undefined); // a session the server ends is reported by the query
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

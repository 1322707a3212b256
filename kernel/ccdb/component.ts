// The cloud controllers' database (Cloud Foundry's `postgres` job on the `database` VM): one
// PostgreSQL cluster on the persistent disk, run as an unprivileged user, password-only
// (SCRAM) from anywhere, with every configured database and its owner role made — or their
// passwords set anew — at every start. /healthz is healthy only while the server accepts
// sessions. The server is this process's child: if it dies, the component says why and exits
// non-zero, and the agent restarts the whole job; SIGTERM stops it fast and waits for it.
import { join } from 'node:path';
import type pg from 'pg';
import { defineComponent, gauge, type Logger, type Metric } from '../component/mod.ts';
import { prepareCluster } from './cluster.ts';
import { ccdbConfig, SUPERUSER, type CcdbConfig } from './config.ts';
import { CcdbError } from './errors.ts';
import { Postmaster } from './postmaster.ts';
import { withSession } from '../services/nodes/postgresql/session.ts';
import { clusterStateQueries, ensureStatements, redactStatement, varzQueries } from './sql.ts';

interface DatabaseRow {
  name: string;
  owner: string;
  size_bytes: string;
  connections: number;
}

interface ServerRow {
  started_at: Date;
  connections: number;
  max_connections: number;
  version: string;
}

export default defineComponent({
  type: 'ccdb',
  config: ccdbConfig,
  async start({ config, log }) {
    const cluster = await prepareCluster(config, log);

    const admin = adminSession(config, cluster.password);
    const postmaster = new Postmaster({
      binary: join(config.postgres.bin_dir, 'postgres'),
      dataDir: cluster.dataDir,
      socketDir: cluster.socketDir,
      host: config.host,
      port: config.port,
      settings: config.postgres.settings,
      runAs: cluster.owner?.name,
      startTimeoutMs: config.postgres.start_timeout_s * 1000,
      stopTimeoutMs: config.drain_timeout_s * 1000,
      log,
      probe: () => admin(async (c) => void (await c.query('SELECT 1'))),
    });
    await postmaster.start((exit) => {
      // Not restarted here: the agent restarts the whole job, and its restart counts show it.
      log.error({ code: exit.code, signal: exit.signal, last_lines: exit.lastLines }, 'postgres exited; the ccdb stops');
      process.exit(1);
    });
    try {
      await ensureDatabases(config, admin, log);
    } catch (err) {
      await postmaster.stop();
      throw err;
    }
    log.info({ host: config.host, port: config.port, data_dir: cluster.dataDir, databases: config.databases.map((d) => d.name) }, 'ccdb accepting connections');

    // One probe loop: whether the server accepts sessions (/healthz), and /varz's numbers.
    let accepting = true;
    let numbers: { server: ServerRow; databases: DatabaseRow[] } | undefined;
    let lastError: string | undefined;
    let probing = false;
    const probe = async (): Promise<void> => {
      if (probing) return;
      probing = true;
      try {
        numbers = await admin(async (c) => ({
          server: (await c.query<ServerRow>(varzQueries.server)).rows[0]!,
          databases: (await c.query<DatabaseRow>(varzQueries.databases)).rows,
        }));
        if (!accepting) log.info('postgres accepts connections again');
        accepting = true;
        lastError = undefined;
      } catch (err) {
        if (accepting) log.warn({ err: (err as Error).message }, 'postgres does not accept connections');
        accepting = false;
        lastError = (err as Error).message;
      } finally {
        probing = false;
      }
    };
    await probe();
    const timer = setInterval(() => void probe(), config.probe_interval_s * 1000);

    return {
      healthy: () => postmaster.running && accepting,
      varz: () => ({
        server: {
          pid: postmaster.pid ?? null,
          running: postmaster.running,
          accepting_connections: accepting,
          last_error: lastError ?? null,
          version: numbers?.server.version ?? null,
          started_at: numbers?.server.started_at.toISOString() ?? null,
          uptime_s: numbers ? Math.round((Date.now() - numbers.server.started_at.getTime()) / 1000) : null,
          max_connections: numbers?.server.max_connections ?? null,
        },
        connections: numbers?.server.connections ?? null,
        databases: (numbers?.databases ?? []).map((d) => ({ name: d.name, owner: d.owner, size_bytes: Number(d.size_bytes), connections: d.connections })),
      }),
      metrics: (): Metric[] => [
        gauge('server_up', '1 while postgres accepts connections', postmaster.running && accepting ? 1 : 0),
        gauge('connections', 'Client sessions (pg_stat_activity)', numbers?.server.connections ?? 0),
        gauge('server_uptime_seconds', 'Seconds since the postmaster started', numbers ? (Date.now() - numbers.server.started_at.getTime()) / 1000 : 0),
      ],
      async stop() {
        clearInterval(timer);
        await postmaster.stop();
        log.info({ data_dir: cluster.dataDir }, 'postgres stopped');
      },
    };
  },
});

type Admin = <T>(fn: (c: pg.Client) => Promise<T>) => Promise<T>;

/** One superuser session in the `postgres` database, over TCP like any client, per call. */
function adminSession(config: CcdbConfig, password: string): Admin {
  return (fn) => withSession({ host: connectHost(config.host), port: config.port, user: SUPERUSER, password, database: 'postgres' }, fn);
}

/** Where this host reaches a server listening on `host`: loopback when it listens on all addresses. */
export function connectHost(host: string): string {
  const first = host.split(',')[0]!.trim();
  if (first === '*' || first === '0.0.0.0' || first === '') return '127.0.0.1';
  if (first === '::') return '::1';
  return first;
}

/** Every configured database and role as the config says (sql.ts), statement by statement. */
async function ensureDatabases(config: CcdbConfig, admin: Admin, log: Logger): Promise<void> {
  await admin(async (c) => {
    const roles = new Set((await c.query<{ rolname: string }>(clusterStateQueries.roles)).rows.map((r) => r.rolname));
    const databases = new Map((await c.query<{ datname: string; owner: string }>(clusterStateQueries.databases)).rows.map((r) => [r.datname, r.owner]));
    const statements = ensureStatements(config.databases, { roles, databases });
    for (const sql of statements) {
      try {
        await c.query(sql);
      } catch (err) {
        throw new CcdbError(`making the databases: ${(err as Error).message} (in: ${redactStatement(sql)})`, { cause: err });
      }
    }
    log.info({ statements: statements.map(redactStatement) }, 'databases and roles as configured');
  });
}

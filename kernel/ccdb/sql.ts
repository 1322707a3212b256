// What the ccdb says to its cluster, as functions of data: the statements that make every
// configured database and its owner role exist as the config says, given what the cluster
// already holds, and the files the cluster starts with. component.ts does the I/O.
//
// Idempotent by construction: a role that exists gets its password (and LOGIN) set again, so
// a rotated password takes effect on the next start; a database that exists is handed to its
// configured owner if another role owns it. Nothing is ever dropped: a database removed from
// the config keeps its data until an operator drops it.
import { quoteIdent, quoteLiteral } from '../services/nodes/postgresql/pg-sql.ts';
import type { DatabaseEntry } from './config.ts';

export { quoteIdent, quoteLiteral };

/** What the cluster holds now: its roles, and each database with its owner. */
export interface ClusterState {
  roles: ReadonlySet<string>;
  /** Database name → owner role name. */
  databases: ReadonlyMap<string, string>;
}

/** Reads ClusterState, in the `postgres` database. */
export const clusterStateQueries = {
  roles: 'SELECT rolname FROM pg_roles',
  databases: 'SELECT d.datname, r.rolname AS owner FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE NOT d.datistemplate',
} as const;

/**
 * The statements, in order, that make every entry exist as configured, in the `postgres`
 * database. Each CREATE DATABASE stands alone (it cannot run inside a transaction).
 */
export function ensureStatements(entries: readonly DatabaseEntry[], state: ClusterState): string[] {
  const statements: string[] = [];
  const roles = new Set(state.roles);
  for (const { name, user, password } of entries) {
    const role = quoteIdent(user);
    const secret = quoteLiteral(password);
    if (roles.has(user)) statements.push(`ALTER ROLE ${role} WITH LOGIN PASSWORD ${secret}`);
    else statements.push(`CREATE ROLE ${role} WITH LOGIN PASSWORD ${secret}`);
    roles.add(user); // a role shared by two entries is made once
    const db = quoteIdent(name);
    const owner = state.databases.get(name);
    if (owner === undefined) {
      statements.push(`CREATE DATABASE ${db} OWNER ${role}`, `REVOKE ALL ON DATABASE ${db} FROM PUBLIC`);
    } else if (owner !== user) {
      statements.push(`ALTER DATABASE ${db} OWNER TO ${role}`);
    }
  }
  return statements;
}

/** A statement as it may be logged: passwords elided. */
export function redactStatement(sql: string): string {
  return sql.replace(/PASSWORD (E?'(?:[^']|'')*')/g, 'PASSWORD …');
}

/** pg_hba.conf: passwords (SCRAM) for every connection, on the socket and over TCP from anywhere; nothing trusted. */
export function renderPgHba(): string {
  return [
    '# Rendered by the Ingot ccdb component at every start; edits are lost.',
    'local all all scram-sha-256',
    'host all all 0.0.0.0/0 scram-sha-256',
    'host all all ::/0 scram-sha-256',
    '',
  ].join('\n');
}

/** Numbers for /varz, in the `postgres` database: per database its owner, size and sessions; the server's start. The probe's own session is not counted. */
export const varzQueries = {
  databases:
    'SELECT d.datname AS name, r.rolname AS owner, pg_database_size(d.oid)::bigint AS size_bytes, (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid AND a.pid <> pg_backend_pid())::int AS connections FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE NOT d.datistemplate ORDER BY d.datname',
  server: "SELECT pg_postmaster_start_time() AS started_at, (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::int AS connections, current_setting('max_connections')::int AS max_connections, current_setting('server_version') AS version",
} as const;

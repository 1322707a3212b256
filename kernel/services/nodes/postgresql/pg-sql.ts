// What the PostgreSQL backend says to its cluster, as functions of data: the names a unit's
// database and roles get, their quoting, the statements of each operation and the files the
// cluster starts with. The backend around them does the I/O.
//
// A unit is a database owned by a NOLOGIN owner role, closed to PUBLIC. A binding is a LOGIN
// role that is a NOINHERIT member of the owner and whose sessions start as the owner
// (`SET role`), so every binding works on the same objects, all owned by the owner role; a
// binding that resets its role has nothing but CONNECT. Over its plan's size the unit is
// frozen: everything the owner owns (the database too) passes to a third NOLOGIN role, and
// the owner keeps SELECT, DELETE and TRUNCATE — so it can read and make room, not grow, and
// cannot grant itself back what it no longer owns.
import { createHash } from 'node:crypto';
import type { PlanLimits } from '../../node/config.ts';

/**
 * An SQL name derived from ids: `<prefix>_<up to 16 letters and digits of the first id>_<12
 * hex of a digest of all ids>`. At most 31 characters of [a-z0-9_] (fits PostgreSQL's 63 and
 * MySQL's 32 for user names), readable enough to find a unit by its instance id, and unique
 * per id whatever the id's case or punctuation.
 */
export function sqlName(prefix: string, ...ids: string[]): string {
  const readable = ids[0]!.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 16);
  const digest = createHash('sha256').update(ids.join('/')).digest('hex').slice(0, 12);
  return `${prefix}_${readable}_${digest}`;
}

export interface PgUnitNames {
  database: string;
  /** Owns the database and every object in it; bindings act as it. */
  owner: string;
  /** Holds the unit's objects while it is over its size. */
  frozen: string;
}

export function pgUnitNames(instanceId: string): PgUnitNames {
  return { database: sqlName('d', instanceId), owner: sqlName('o', instanceId), frozen: sqlName('f', instanceId) };
}

export function pgBindingRole(instanceId: string, bindingId: string): string {
  return sqlName('b', instanceId, bindingId);
}

/** An identifier, double-quoted with inner quotes doubled (PostgreSQL's quote_ident). */
export function quoteIdent(name: string): string {
  if (name.length === 0 || name.includes('\0')) throw new Error(`not an SQL identifier: ${JSON.stringify(name)}`);
  return `"${name.replace(/"/g, '""')}"`;
}

/** A string literal, single-quoted with inner quotes doubled; E'' with doubled backslashes when it has any. */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('an SQL literal cannot hold NUL');
  const body = value.replace(/'/g, "''");
  return value.includes('\\') ? `E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}

/** A session's work_mem from the plan: its memory shared by its connections, at least 64 kB. */
export function workMemKb(plan: PlanLimits): number {
  return Math.max(64, Math.floor((plan.memory_mb * 1024) / plan.max_clients));
}

/** Provision, in the `postgres` database. Leftovers of a provision that died half-way go first. */
export function provisionStatements(n: PgUnitNames, plan: PlanLimits): string[] {
  const db = quoteIdent(n.database);
  const owner = quoteIdent(n.owner);
  return [
    ...dropUnitStatements(n),
    `CREATE ROLE ${owner} NOLOGIN`,
    `CREATE ROLE ${quoteIdent(n.frozen)} NOLOGIN`,
    `CREATE DATABASE ${db} OWNER ${owner} CONNECTION LIMIT ${plan.max_clients}`,
    `REVOKE ALL ON DATABASE ${db} FROM PUBLIC`,
    ...sessionLimitStatements(n, plan),
  ];
}

/** The plan's per-session settings of the unit's database (new sessions get them). */
function sessionLimitStatements(n: PgUnitNames, plan: PlanLimits): string[] {
  const db = quoteIdent(n.database);
  return [
    `ALTER DATABASE ${db} SET work_mem = ${quoteLiteral(`${workMemKb(plan)}kB`)}`,
    // temp_file_limit is superuser-only: a session cannot lift it. Without a size, the memory.
    `ALTER DATABASE ${db} SET temp_file_limit = ${quoteLiteral(`${(plan.size_mb ?? plan.memory_mb) * 1024}kB`)}`,
  ];
}

/**
 * A plan change, in the `postgres` database: the database's and each binding role's connection
 * limits and the session settings. Open sessions keep theirs until they reconnect; the size
 * limit follows by itself (the size check reads the unit's plan).
 */
export function planChangeStatements(n: PgUnitNames, plan: PlanLimits, bindingRoles: string[]): string[] {
  return [
    `ALTER DATABASE ${quoteIdent(n.database)} CONNECTION LIMIT ${plan.max_clients}`,
    ...bindingRoles.map((r) => `ALTER ROLE ${quoteIdent(r)} CONNECTION LIMIT ${plan.max_clients}`),
    ...sessionLimitStatements(n, plan),
  ];
}

/** Unprovision (and the clean slate before a provision), in the `postgres` database. */
export function dropUnitStatements(n: PgUnitNames): string[] {
  return [
    // WITH (FORCE) terminates the database's sessions first (PostgreSQL 13+).
    `DROP DATABASE IF EXISTS ${quoteIdent(n.database)} WITH (FORCE)`,
    `DROP ROLE IF EXISTS ${quoteIdent(n.frozen)}`,
    `DROP ROLE IF EXISTS ${quoteIdent(n.owner)}`,
  ];
}

/** Bind, in the `postgres` database. */
export function bindStatements(n: PgUnitNames, role: string, password: string, plan: PlanLimits): string[] {
  const r = quoteIdent(role);
  return [
    `CREATE ROLE ${r} LOGIN NOINHERIT PASSWORD ${quoteLiteral(password)} CONNECTION LIMIT ${plan.max_clients} IN ROLE ${quoteIdent(n.owner)}`,
    `GRANT CONNECT ON DATABASE ${quoteIdent(n.database)} TO ${r}`,
    // Every session starts as the owner, so what one binding creates, all bindings share.
    `ALTER ROLE ${r} IN DATABASE ${quoteIdent(n.database)} SET role = ${quoteLiteral(n.owner)}`,
  ];
}

/** Unbind, step one, in the `postgres` database: no new session, and the open ones end. */
export function revokeLoginStatements(role: string): string[] {
  return [`ALTER ROLE ${quoteIdent(role)} NOLOGIN`, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ${quoteLiteral(role)}`];
}

/** Unbind, step two, in the unit's database: what the role owns passes to the owner, its grants go. */
export function disownStatements(n: PgUnitNames, role: string): string[] {
  return [`REASSIGN OWNED BY ${quoteIdent(role)} TO ${quoteIdent(n.owner)}`, `DROP OWNED BY ${quoteIdent(role)}`];
}

/** Unbind, step three, in the `postgres` database. */
export function dropRoleStatement(role: string): string {
  return `DROP ROLE IF EXISTS ${quoteIdent(role)}`;
}

/** The unit's roles that log in (its bindings, including any the node no longer records). */
export function bindingRolesQuery(n: PgUnitNames): string {
  return `SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = ${quoteLiteral(n.owner)})`;
}

export function databaseSizeQuery(n: PgUnitNames): string {
  return `SELECT pg_database_size(${quoteLiteral(n.database)})::bigint AS bytes, (SELECT datdba = (SELECT oid FROM pg_roles WHERE rolname = ${quoteLiteral(n.frozen)}) FROM pg_database WHERE datname = ${quoteLiteral(n.database)}) AS frozen`;
}

/** The schemas to open to the owner while frozen (every one but the system's), in the unit's database. */
export const userSchemasQuery = `SELECT nspname FROM pg_namespace WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%'`;

/**
 * Freeze, in the unit's database: see the header. One transaction, so no session ever sees
 * the owner without its objects and without the grants that replace them.
 */
export function freezeStatements(n: PgUnitNames, schemas: string[]): string[] {
  const owner = quoteIdent(n.owner);
  return [
    'BEGIN',
    `REASSIGN OWNED BY ${owner} TO ${quoteIdent(n.frozen)}`,
    `GRANT CONNECT ON DATABASE ${quoteIdent(n.database)} TO ${owner}`,
    ...schemas.flatMap((s) => [
      `GRANT USAGE ON SCHEMA ${quoteIdent(s)} TO ${owner}`,
      `GRANT SELECT, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA ${quoteIdent(s)} TO ${owner}`,
      `GRANT SELECT ON ALL SEQUENCES IN SCHEMA ${quoteIdent(s)} TO ${owner}`,
    ]),
    'COMMIT',
  ];
}

/** Thaw, in the unit's database: the owner owns everything again (its grants merge into ownership). */
export function thawStatements(n: PgUnitNames): string[] {
  return [`REASSIGN OWNED BY ${quoteIdent(n.frozen)} TO ${quoteIdent(n.owner)}`];
}

/** pg_hba.conf: passwords (SCRAM) for every connection, local or TCP; nothing trusted. */
export function renderPgHba(): string {
  return [
    '# Rendered by the Ingot service node; rewritten at every start.',
    'local all all scram-sha-256',
    'host all all 0.0.0.0/0 scram-sha-256',
    'host all all ::/0 scram-sha-256',
    '',
  ].join('\n');
}

/** A binding's credentials, as the brokers of Cloud Foundry's databases gave them. */
export interface DatabaseCredentials {
  host: string;
  port: number;
  /** The database. */
  name: string;
  username: string;
  password: string;
}

/** The credentials with their `uri` and `jdbcUrl` (`<scheme>://user:password@host:port/name`). */
export function databaseCredentials(c: DatabaseCredentials, schemes: { uri: string; jdbc: string }): Record<string, unknown> {
  const user = encodeURIComponent(c.username);
  const pass = encodeURIComponent(c.password);
  const db = encodeURIComponent(c.name);
  return {
    ...c,
    uri: `${schemes.uri}://${user}:${pass}@${c.host}:${c.port}/${db}`,
    jdbcUrl: `jdbc:${schemes.jdbc}://${c.host}:${c.port}/${db}?user=${user}&password=${pass}`,
  };
}

export function pgCredentials(c: DatabaseCredentials): Record<string, unknown> {
  return databaseCredentials(c, { uri: 'postgres', jdbc: 'postgresql' });
}

// What the MySQL backend says to its MariaDB server, as functions of data: the names a unit's
// database and users get, their quoting, the statements of each operation, the server's
// command line and its init file. The backend around them does the I/O.
//
// A unit is a database; a binding is a user `'b_…'@'%'` with ALL on that database only and
// MAX_USER_CONNECTIONS from the plan. Over its plan's size the unit's users lose INSERT,
// UPDATE and CREATE (and their sessions are killed, since MariaDB applies database-level
// grants to a session only when it next selects the database); they keep SELECT, DELETE and
// DROP, so they can read and make room. Users hold no GRANT OPTION: they cannot give it back.
import type { NodeConfig, PlanLimits } from '../../node/config.ts';
import { databaseCredentials, sqlName, type DatabaseCredentials } from '../postgresql/pg-sql.ts';

export interface MysqlUnitNames {
  database: string;
}

export function mysqlUnitNames(instanceId: string): MysqlUnitNames {
  return { database: sqlName('d', instanceId) };
}

export function mysqlBindingUser(instanceId: string, bindingId: string): string {
  return sqlName('b', instanceId, bindingId);
}

/** An identifier in backticks, inner backticks doubled. */
export function quoteIdent(name: string): string {
  if (name.length === 0 || name.includes('\0')) throw new Error(`not an SQL identifier: ${JSON.stringify(name)}`);
  return '`' + name.replace(/`/g, '``') + '`';
}

/**
 * A string literal that means the same whatever the sql_mode (with or without
 * NO_BACKSLASH_ESCAPES): characters that a backslash or quote could change are written as
 * a hex literal instead, so nothing needs escaping.
 */
export function quoteLiteral(value: string): string {
  if (/^[A-Za-z0-9_.@%:/ -]*$/.test(value)) return `'${value}'`;
  return `X'${Buffer.from(value, 'utf8').toString('hex')}'`;
}

/** A database name as a GRANT's pattern: `_` and `%` are wildcards there and must be escaped. */
export function grantPattern(database: string): string {
  return quoteIdent(database.replace(/[\\_%]/g, (c) => `\\${c}`));
}

/** `'user'@'%'`. */
export function account(user: string): string {
  return `${quoteLiteral(user)}@'%'`;
}

export function provisionStatements(n: MysqlUnitNames): string[] {
  // A database left by a provision that died half-way goes first.
  return [`DROP DATABASE IF EXISTS ${quoteIdent(n.database)}`, `CREATE DATABASE ${quoteIdent(n.database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`];
}

export function bindStatements(n: MysqlUnitNames, user: string, password: string, plan: PlanLimits, overSize: boolean): string[] {
  return [
    `DROP USER IF EXISTS ${account(user)}`,
    `CREATE USER ${account(user)} IDENTIFIED BY ${quoteLiteral(password)} WITH MAX_USER_CONNECTIONS ${plan.max_clients}`,
    `GRANT ALL PRIVILEGES ON ${grantPattern(n.database)}.* TO ${account(user)}`,
    ...(overSize ? [revokeWritesStatement(n, user)] : []),
  ];
}

/** A plan change: each of the unit's users gets the new connection limit (the size limit follows by itself). */
export function planChangeStatements(users: string[], plan: PlanLimits): string[] {
  return users.map((u) => `ALTER USER ${account(u)} WITH MAX_USER_CONNECTIONS ${plan.max_clients}`);
}

/** What a unit's users lose while it is over its size. */
export const SIZE_REVOKED = 'INSERT, UPDATE, CREATE';

export function revokeWritesStatement(n: MysqlUnitNames, user: string): string {
  return `REVOKE ${SIZE_REVOKED} ON ${grantPattern(n.database)}.* FROM ${account(user)}`;
}

export function restoreWritesStatement(n: MysqlUnitNames, user: string): string {
  return `GRANT ALL PRIVILEGES ON ${grantPattern(n.database)}.* TO ${account(user)}`;
}

/** The unit's users: those granted on its database (the node's records may miss a half-made one). */
export function unitUsersQuery(n: MysqlUnitNames): string {
  return `SELECT DISTINCT User AS user FROM mysql.db WHERE Db = ${quoteLiteral(n.database.replace(/[\\_%]/g, (c) => `\\${c}`))} AND Host = '%'`;
}

export function sessionsQuery(user: string): string {
  return `SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ${quoteLiteral(user)}`;
}

export function killStatement(id: string): string {
  if (!/^\d+$/.test(id)) throw new Error(`not a connection id: ${id}`);
  return `KILL CONNECTION ${id}`;
}

export function dropUserStatement(user: string): string {
  return `DROP USER IF EXISTS ${account(user)}`;
}

export function dropDatabaseStatement(n: MysqlUnitNames): string {
  return `DROP DATABASE IF EXISTS ${quoteIdent(n.database)}`;
}

/**
 * Run by the server at every start, before it takes connections: only the node's admin
 * (`root@localhost`, on the unix socket, with the node's password) remains of the accounts
 * mariadb-install-db makes (root on other hosts and anonymous users have no password).
 */
export function renderInitFile(adminPassword: string): string {
  return [
    "DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host <> 'localhost');",
    'FLUSH PRIVILEGES;',
    `ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD(${quoteLiteral(adminPassword)});`,
    '',
  ].join('\n');
}

export interface MysqlServerPaths {
  dataDir: string;
  socket: string;
  pidFile: string;
  logFile: string;
  initFile: string;
}

/**
 * A session's in-memory temporary tables may not exceed the strictest plan's memory per
 * connection (MariaDB has no per-user memory limit; `maximum-…` stops a session raising it).
 */
export function sessionMemoryMb(plans: Record<string, PlanLimits>): number {
  return Math.max(1, Math.min(...Object.values(plans).map((p) => Math.floor(p.memory_mb / p.max_clients))));
}

export function serverArgs(cfg: NodeConfig['mysql'], host: string, plans: Record<string, PlanLimits>, p: MysqlServerPaths): string[] {
  const mem = `${sessionMemoryMb(plans)}M`;
  return [
    cfg.server_path,
    '--no-defaults', // must come first: no /etc/mysql config reaches the node's server
    `--datadir=${p.dataDir}`,
    `--socket=${p.socket}`,
    `--pid-file=${p.pidFile}`,
    `--log-error=${p.logFile}`,
    `--init-file=${p.initFile}`,
    `--port=${cfg.port}`,
    `--bind-address=${host}`,
    '--skip-name-resolve',
    `--max-connections=${cfg.max_connections}`,
    `--innodb-buffer-pool-size=${cfg.buffer_pool_mb}M`,
    '--innodb-file-per-table=ON',
    `--max-heap-table-size=${mem}`,
    `--maximum-max-heap-table-size=${mem}`,
    `--tmp-memory-table-size=${mem}`,
    `--maximum-tmp-memory-table-size=${mem}`,
    '--local-infile=0',
    '--character-set-server=utf8mb4',
    '--collation-server=utf8mb4_unicode_ci',
  ];
}

export function mysqlCredentials(c: DatabaseCredentials): Record<string, unknown> {
  return databaseCredentials(c, { uri: 'mysql', jdbc: 'mysql' });
}

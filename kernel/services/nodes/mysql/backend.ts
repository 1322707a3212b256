// The MySQL backend of the service node, on MariaDB. The node owns one mariadbd (Debian's
// mariadb-server; its data made by mariadb-install-db in `<base_dir>/mysql/data` as
// `mysql.run_as`), listening on the node's `host` and `mysql.port` and on a unix socket in
// `<base_dir>/mysql/`, supervised, stopped with the node and reused when it starts again, so
// the data survives. An instance is a database; a binding is a user of its own on it
// (mysql-sql.ts says how limits apply). The node speaks the wire protocol itself
// (mysql-wire.ts), as `root@localhost` on the socket with a password only it knows
// (`<base_dir>/mysql.secret`, 0600).
import { existsSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { PlanLimits } from '../../node/config.ts';
import type { BackendContext, ServiceBackend, UnitRecord } from '../../node/types.ts';
import { newPassword, runStatements as run, ServerBackend, unitData } from '../../node/server-backend.ts';
import {
  bindStatements,
  dropDatabaseStatement,
  dropUserStatement,
  killStatement,
  mysqlBindingUser,
  mysqlCredentials,
  mysqlUnitNames,
  planChangeStatements,
  provisionStatements,
  renderInitFile,
  restoreWritesStatement,
  revokeWritesStatement,
  serverArgs,
  sessionsQuery,
  unitUsersQuery,
  type MysqlServerPaths,
  type MysqlUnitNames,
} from './mysql-sql.ts';
import { MysqlClient } from './mysql-wire.ts';

const mysqlUnitData = z.object({ database: z.string() }).passthrough();

export function createMysqlBackend(ctx: BackendContext): ServiceBackend {
  return new MysqlBackend(ctx);
}

class MysqlBackend extends ServerBackend {
  private readonly dir: string;
  private readonly paths: MysqlServerPaths;
  /** Whether each unit's writes are revoked; absent until the first check after a start. */
  private readonly overSize = new Map<string, boolean>();

  constructor(ctx: BackendContext) {
    super(ctx, { runAsKey: 'mysql.run_as', runAs: ctx.config.mysql.run_as, userHint: 'Debian\'s mariadb-server package creates "mysql"' });
    this.dir = join(ctx.baseDir, 'mysql');
    this.paths = {
      dataDir: join(this.dir, 'data'),
      socket: join(this.dir, 'mysqld.sock'),
      pidFile: join(this.dir, 'mariadbd.pid'),
      logFile: join(this.dir, 'mariadbd.err'),
      initFile: join(this.dir, 'init.sql'),
    };
  }

  async restore(): Promise<void> {
    const cfg = this.ctx.config.mysql;
    await this.startServer({
      secretFile: join(this.ctx.baseDir, 'mysql.secret'),
      serverDir: this.dir,
      hasData: existsSync(join(this.paths.dataDir, 'mysql', 'global_priv.MAD')),
      makeData: () => this.installDb(),
      quotaIntervalS: cfg.quota_interval_s,
      server: {
        name: 'mariadbd',
        command: serverArgs(cfg, this.ctx.host, this.ctx.config.plans, this.paths),
        stopSignal: 'SIGTERM', // a normal shutdown: sessions are killed, InnoDB is flushed
        pidFile: this.paths.pidFile,
        marker: this.paths.dataDir,
        logFile: this.paths.logFile,
        startTimeoutMs: cfg.start_timeout_s * 1000,
        // The init file sets the admin's password at every start; it is not left lying around.
        prepare: () => this.writeOwned(this.paths.initFile, renderInitFile(this.password), 0o600),
        probe: async () => {
          await this.admin((c) => c.query('SELECT 1'));
          await rm(this.paths.initFile, { force: true });
        },
      },
    });
    this.ctx.log.info({ port: cfg.port, data_dir: this.paths.dataDir }, 'mariadb server ready');
  }

  async provision(instanceId: string): Promise<Record<string, unknown>> {
    const names = mysqlUnitNames(instanceId);
    await this.admin((c) => run(c, provisionStatements(names), 'creating the database'));
    this.overSize.set(instanceId, false);
    return { ...names };
  }

  async bind(unit: UnitRecord, bindingId: string): Promise<Record<string, unknown>> {
    const names = this.namesOf(unit);
    const user = mysqlBindingUser(unit.instance_id, bindingId);
    const password = newPassword();
    const over = this.overSize.get(unit.instance_id) ?? false;
    await this.admin((c) => run(c, bindStatements(names, user, password, this.planOf(unit), over), 'creating the binding user'));
    return mysqlCredentials({ host: this.ctx.host, port: this.ctx.config.mysql.port, name: names.database, username: user, password });
  }

  async unbind(unit: UnitRecord, bindingId: string): Promise<void> {
    await this.admin((c) => dropUser(c, mysqlBindingUser(unit.instance_id, bindingId)));
  }

  async update(unit: UnitRecord, plan: PlanLimits): Promise<void> {
    const names = this.namesOf(unit);
    await this.admin(async (c) => {
      const users = (await c.query(unitUsersQuery(names))).rows.map((r) => r.user!);
      await run(c, planChangeStatements(users, plan), 'changing the plan');
    });
  }

  async unprovision(unit: UnitRecord): Promise<void> {
    const names = this.namesOf(unit);
    await this.admin(async (c) => {
      const users = new Set((await c.query(unitUsersQuery(names))).rows.map((r) => r.user!));
      for (const bindingId of Object.keys(unit.bindings)) users.add(mysqlBindingUser(unit.instance_id, bindingId));
      for (const user of users) await dropUser(c, user);
      await run(c, [dropDatabaseStatement(names)], 'dropping the database');
    });
    this.overSize.delete(unit.instance_id);
  }

  varz(): Record<string, unknown> {
    const over = [...this.overSize].filter(([, o]) => o).map(([id]) => id);
    return { mysql: this.serverVarz(this.ctx.config.mysql.port, over) };
  }

  /**
   * The size limits: a unit's size is its database directory's files on disk (InnoDB keeps a
   * file per table), what the disk really holds rather than InnoDB's lagging statistics.
   * Checked on a timer, so a unit may overshoot by what it writes in one interval.
   */
  protected async checkSizes(): Promise<void> {
    for (const { unit, sizeMb } of this.sizedUnits()) {
      const names = this.namesOf(unit);
      try {
        const bytes = await dirBytes(join(this.paths.dataDir, names.database));
        const over = bytes > sizeMb * 1024 * 1024;
        if (this.overSize.get(unit.instance_id) === over) continue;
        await this.admin(async (c) => {
          for (const { user } of (await c.query(unitUsersQuery(names))).rows) {
            if (!over) {
              await run(c, [restoreWritesStatement(names, user!)], 'restoring writes');
              continue;
            }
            await run(c, [revokeWritesStatement(names, user!)], 'revoking writes');
            // A session applies database grants when it next selects the database: end them.
            await killSessions(c, user!);
          }
        });
        this.overSize.set(unit.instance_id, over);
        const fields = { instance_id: unit.instance_id, bytes, size_mb: sizeMb };
        if (over) this.ctx.log.warn(fields, 'database over its size: writes revoked');
        else this.ctx.log.info(fields, 'database within its size: writes allowed');
      } catch (err) {
        this.ctx.log.warn({ instance_id: unit.instance_id, err: (err as Error).message }, "checking a database's size failed");
      }
    }
  }

  private async installDb(): Promise<void> {
    await rm(this.paths.dataDir, { recursive: true, force: true }); // an install that died half-way
    this.runAsOwner(
      [this.ctx.config.mysql.install_db_path, '--no-defaults', `--datadir=${this.paths.dataDir}`, '--auth-root-authentication-method=normal', '--skip-test-db'],
      this.dir,
      `mariadb-install-db into ${this.paths.dataDir}`,
    );
    this.ctx.log.info({ data_dir: this.paths.dataDir }, 'mariadb data directory created');
  }

  /** One admin session: root on the unix socket, with the node's password. */
  private async admin<T>(fn: (c: MysqlClient) => Promise<T>): Promise<T> {
    const c = await MysqlClient.connect({ socketPath: this.paths.socket, user: 'root', password: this.password, timeoutMs: 5000 });
    try {
      return await fn(c);
    } finally {
      c.close();
    }
  }

  private namesOf(unit: UnitRecord): MysqlUnitNames {
    return unitData(unit, mysqlUnitData, 'MySQL');
  }
}

/** Dropped first, so no new session starts; then its open sessions are killed. */
async function dropUser(c: MysqlClient, user: string): Promise<void> {
  await run(c, [dropUserStatement(user)], 'dropping the binding user');
  await killSessions(c, user);
}

async function killSessions(c: MysqlClient, user: string): Promise<void> {
  for (const { id } of (await c.query(sessionsQuery(user))).rows) {
    try {
      await c.query(killStatement(id!));
    } catch {
      // ended meanwhile (1094 unknown thread)
    }
  }
}

/** The bytes of the files directly in `dir` (0 when it is gone). */
async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return 0;
  }
  for (const e of entries) {
    try {
      total += (await stat(join(dir, e))).size;
    } catch {
      // removed meanwhile
    }
  }
  return total;
}

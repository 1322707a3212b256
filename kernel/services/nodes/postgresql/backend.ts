// The PostgreSQL backend of the service node. The node owns one PostgreSQL cluster (Debian's
// binaries, initdb'd into `<base_dir>/cluster/data` as `postgresql.run_as`, never root),
// listening on the node's `host` and `postgresql.port`, supervised, stopped with the node and
// reused when it starts again, so the data survives. An instance is a database and its owner
// role; a binding is a login role acting as the owner (pg-sql.ts says how and why). Only the
// node knows the superuser's password (`<base_dir>/postgresql.secret`, 0600).
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { z } from 'zod';
import type { PlanLimits } from '../../node/config.ts';
import type { BackendContext, ServiceBackend, UnitRecord } from '../../node/types.ts';
import {
  bindingRolesQuery,
  bindStatements,
  databaseSizeQuery,
  disownStatements,
  dropRoleStatement,
  dropUnitStatements,
  freezeStatements,
  pgBindingRole,
  pgCredentials,
  pgUnitNames,
  planChangeStatements,
  provisionStatements,
  renderPgHba,
  revokeLoginStatements,
  thawStatements,
  userSchemasQuery,
  type PgUnitNames,
} from './pg-sql.ts';
import { newPassword, runStatements as run, ServerBackend, unitData } from '../../node/server-backend.ts';
import { withSession } from './session.ts';

const SUPERUSER = 'postgres';

const pgUnitData = z.object({ database: z.string(), owner: z.string(), frozen: z.string() }).passthrough();

export function createPostgresBackend(ctx: BackendContext): ServiceBackend {
  return new PostgresBackend(ctx);
}

class PostgresBackend extends ServerBackend {
  private readonly clusterDir: string;
  private readonly dataDir: string;
  private readonly frozen = new Set<string>();

  constructor(ctx: BackendContext) {
    super(ctx, { runAsKey: 'postgresql.run_as', runAs: ctx.config.postgresql.run_as, userHint: 'Debian\'s postgresql package creates "postgres"' });
    this.clusterDir = join(ctx.baseDir, 'cluster');
    this.dataDir = join(this.clusterDir, 'data');
  }

  /** Node start: the cluster (made on first start, reused after) and the size checks. */
  async restore(): Promise<void> {
    const cfg = this.ctx.config.postgresql;
    await this.startServer({
      secretFile: join(this.ctx.baseDir, 'postgresql.secret'),
      serverDir: this.clusterDir,
      hasData: existsSync(join(this.dataDir, 'PG_VERSION')),
      makeData: () => this.initdb(),
      quotaIntervalS: cfg.quota_interval_s,
      server: {
        name: 'postgres',
        command: [
          join(cfg.bin_dir, 'postgres'),
          '-D', this.dataDir,
          '-p', String(cfg.port),
          '-k', this.clusterDir,
          '-c', `listen_addresses=${this.ctx.host}`,
          '-c', `max_connections=${cfg.max_connections}`,
        ],
        // SIGINT is the fast shutdown: sessions are closed, the data is checkpointed. (SIGTERM
        // would wait for every client to leave.)
        stopSignal: 'SIGINT',
        pidFile: join(this.dataDir, 'postmaster.pid'),
        marker: this.dataDir,
        startTimeoutMs: cfg.start_timeout_s * 1000,
        prepare: () => this.writeOwned(join(this.dataDir, 'pg_hba.conf'), renderPgHba(), 0o640),
        probe: () => this.admin('postgres', async (c) => void (await c.query('SELECT 1'))),
      },
    });
    this.ctx.log.info({ port: cfg.port, data_dir: this.dataDir }, 'postgresql cluster ready');
  }

  async provision(instanceId: string, plan: PlanLimits): Promise<Record<string, unknown>> {
    const names = pgUnitNames(instanceId);
    await this.admin('postgres', (c) => run(c, provisionStatements(names, plan), 'creating the database'));
    return { ...names };
  }

  async bind(unit: UnitRecord, bindingId: string): Promise<Record<string, unknown>> {
    const names = this.namesOf(unit);
    const role = pgBindingRole(unit.instance_id, bindingId);
    const password = newPassword();
    // A role left by a bind that died half-way goes first.
    await this.dropBindingRole(names, role);
    await this.admin('postgres', (c) => run(c, bindStatements(names, role, password, this.planOf(unit)), 'creating the binding role'));
    return pgCredentials({ host: this.ctx.host, port: this.ctx.config.postgresql.port, name: names.database, username: role, password });
  }

  async unbind(unit: UnitRecord, bindingId: string): Promise<void> {
    await this.dropBindingRole(this.namesOf(unit), pgBindingRole(unit.instance_id, bindingId));
  }

  async update(unit: UnitRecord, plan: PlanLimits): Promise<void> {
    const names = this.namesOf(unit);
    await this.admin('postgres', async (c) => {
      const roles = (await c.query<{ rolname: string }>(bindingRolesQuery(names))).rows.map((r) => r.rolname);
      // One transaction: a change that fails half-way leaves the old plan whole, as node.json keeps it.
      await run(c, ['BEGIN', ...planChangeStatements(names, plan, roles), 'COMMIT'], 'changing the plan');
    });
  }

  async unprovision(unit: UnitRecord): Promise<void> {
    const names = this.namesOf(unit);
    const [dropDatabase, ...dropRoles] = dropUnitStatements(names);
    await this.admin('postgres', async (c) => {
      const roles = (await c.query<{ rolname: string }>(bindingRolesQuery(names))).rows.map((r) => r.rolname);
      // The database goes first (with its sessions), so its roles own nothing any more.
      await run(c, [dropDatabase!, ...roles.map(dropRoleStatement), ...dropRoles], 'dropping the database');
    });
    this.frozen.delete(unit.instance_id);
  }

  varz(): Record<string, unknown> {
    return { postgresql: this.serverVarz(this.ctx.config.postgresql.port, [...this.frozen]) };
  }

  /** No new session, open ones ended, what it owns passed to the owner, then the role goes. */
  private async dropBindingRole(names: PgUnitNames, role: string): Promise<void> {
    const exists = await this.admin('postgres', async (c) => (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1);
    if (!exists) return;
    await this.admin('postgres', (c) => run(c, revokeLoginStatements(role), "ending the binding's sessions"));
    await this.admin(names.database, (c) => run(c, disownStatements(names, role), 'taking back what the binding owns'));
    await this.admin('postgres', (c) => run(c, [dropRoleStatement(role)], 'dropping the binding role'));
  }

  /**
   * The size limits: a unit is frozen while its database is larger than its plan's size_mb,
   * and thawed once it is not. Checked on a timer, so a unit may overshoot by what it writes
   * in one interval. Whether a unit is frozen is read from the cluster (who owns the database).
   */
  protected async checkSizes(): Promise<void> {
    for (const { unit, sizeMb } of this.sizedUnits()) {
      const names = this.namesOf(unit);
      try {
        const row = await this.admin('postgres', async (c) => (await c.query<{ bytes: string; frozen: boolean | null }>(databaseSizeQuery(names))).rows[0]);
        if (!row || row.frozen === null) continue; // gone meanwhile
        const bytes = Number(row.bytes);
        const over = bytes > sizeMb * 1024 * 1024;
        if (over && !row.frozen) {
          await this.admin(names.database, async (c) => {
            const schemas = (await c.query<{ nspname: string }>(userSchemasQuery)).rows.map((r) => r.nspname);
            await run(c, freezeStatements(names, schemas), 'freezing the database');
          });
          this.ctx.log.warn({ instance_id: unit.instance_id, bytes, size_mb: sizeMb }, 'database over its size: writes revoked');
        } else if (!over && row.frozen) {
          await this.admin(names.database, (c) => run(c, thawStatements(names), 'thawing the database'));
          this.ctx.log.info({ instance_id: unit.instance_id, bytes, size_mb: sizeMb }, 'database within its size again: writes restored');
        }
        if (over) this.frozen.add(unit.instance_id);
        else this.frozen.delete(unit.instance_id);
      } catch (err) {
        this.ctx.log.warn({ instance_id: unit.instance_id, err: (err as Error).message }, "checking a database's size failed");
      }
    }
  }

  private async initdb(): Promise<void> {
    const cfg = this.ctx.config.postgresql;
    await rm(this.dataDir, { recursive: true, force: true }); // an initdb that died half-way
    const pwfile = join(this.clusterDir, 'initdb.pw');
    await this.writeOwned(pwfile, this.password + '\n', 0o600);
    try {
      this.runAsOwner(
        [join(cfg.bin_dir, 'initdb'), '-D', this.dataDir, '-U', SUPERUSER, `--pwfile=${pwfile}`, '--auth-host=scram-sha-256', '--auth-local=scram-sha-256', '--no-locale', '--encoding=UTF8'],
        this.clusterDir,
        `initdb of ${this.dataDir}`,
      );
    } finally {
      await rm(pwfile, { force: true });
    }
    this.ctx.log.info({ data_dir: this.dataDir }, 'postgresql cluster created');
  }

  /** One admin session (the superuser, over TCP like any client) in `database`. */
  private admin<T>(database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    return withSession({ host: this.ctx.host, port: this.ctx.config.postgresql.port, user: SUPERUSER, password: this.password, database, connectionTimeoutMillis: 5000 }, fn);
  }

  private namesOf(unit: UnitRecord): PgUnitNames {
    return unitData(unit, pgUnitData, 'PostgreSQL');
  }
}

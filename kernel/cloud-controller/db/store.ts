// The controller's repository: an async interface over its tables (Store), and one
// implementation in portable SQL over any SqlDriver. A repository per table offers the same
// few operations — insert, get, find, list (filtered, ordered, paged), update, delete — and
// the Store adds the handful of queries no table answers alone.
import type { SqlDriver, SqlParam } from './driver.ts';
import type {
  AppRecord,
  AuditEventRecord,
  BuildRecord,
  DomainRecord,
  DropletRecord,
  OrganizationQuotaRecord,
  OrganizationRecord,
  PackageRecord,
  ProcessRecord,
  RoleRecord,
  RouteMappingRecord,
  RouteRecord,
  ServiceBindingRecord,
  ServiceBrokerRecord,
  ServiceInstanceRecord,
  ServiceOfferingRecord,
  ServicePlanRecord,
  SpaceQuotaRecord,
  SpaceRecord,
  UserRecord,
} from './records.ts';

/**
 * Equality on each key; an array means IN (…); an empty array matches nothing. `$or` holds
 * when any of its conditions does (none given: nothing matches); `$gt`/`$lt` compare columns.
 */
export type Where<R> = { [K in keyof R]?: R[K] | ReadonlyArray<R[K]> } & {
  $or?: ReadonlyArray<Where<R>>;
  $gt?: { [K in keyof R]?: R[K] };
  $lt?: { [K in keyof R]?: R[K] };
};

export interface ListOptions<R> {
  orderBy?: { column: keyof R & string; desc?: boolean };
  limit?: number;
  offset?: number;
}

export interface Repo<R extends { guid: string }> {
  insert(record: R): Promise<R>;
  get(guid: string): Promise<R | undefined>;
  find(where: Where<R>): Promise<R | undefined>;
  list(where?: Where<R>, opts?: ListOptions<R>): Promise<R[]>;
  count(where?: Where<R>): Promise<number>;
  /** Updates the given columns (and updated_at); the updated record, or undefined when absent. */
  update(guid: string, patch: Partial<Omit<R, 'guid' | 'created_at'>>): Promise<R | undefined>;
  /** Updates every row matching `where`; the number changed. */
  updateWhere(where: Where<R>, patch: Partial<Omit<R, 'guid' | 'created_at'>>): Promise<number>;
  delete(where: Where<R>): Promise<number>;
}

export interface Store {
  users: Repo<UserRecord>;
  organizations: Repo<OrganizationRecord>;
  spaces: Repo<SpaceRecord>;
  roles: Repo<RoleRecord>;
  apps: Repo<AppRecord>;
  processes: Repo<ProcessRecord>;
  packages: Repo<PackageRecord>;
  builds: Repo<BuildRecord>;
  droplets: Repo<DropletRecord>;
  domains: Repo<DomainRecord>;
  routes: Repo<RouteRecord>;
  routeMappings: Repo<RouteMappingRecord>;
  auditEvents: Repo<AuditEventRecord>;
  organizationQuotas: Repo<OrganizationQuotaRecord>;
  spaceQuotas: Repo<SpaceQuotaRecord>;
  serviceBrokers: Repo<ServiceBrokerRecord>;
  serviceOfferings: Repo<ServiceOfferingRecord>;
  servicePlans: Repo<ServicePlanRecord>;
  serviceInstances: Repo<ServiceInstanceRecord>;
  serviceBindings: Repo<ServiceBindingRecord>;
  /** STARTED apps with a guid after `afterGuid`, in guid order: the bulk API's pages. */
  startedAppsAfter(afterGuid: string, limit: number): Promise<AppRecord[]>;
  /** Runs `fn` in one transaction with a Store bound to it. */
  transaction<T>(fn: (store: Store) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` in one transaction that first takes the lock named `key`, held against every
   * controller sharing the database until the transaction ends. `fn` must use the Store it is
   * given: on SQLite a statement outside the open transaction waits for it to end.
   */
  locked<T>(key: string, fn: (store: Store) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

interface TableSpec {
  table: string;
  columns: readonly string[];
  json?: readonly string[];
  bool?: readonly string[];
}

const QUOTA_LIMITS = ['total_memory_in_mb', 'total_instances', 'total_routes', 'total_service_instances'] as const;

const specs = {
  users: { table: 'users', columns: ['guid', 'username', 'password_hash', 'admin', 'created_at', 'updated_at'], bool: ['admin'] },
  organizations: { table: 'organizations', columns: ['guid', 'name', 'quota_guid', 'created_at', 'updated_at'] },
  spaces: { table: 'spaces', columns: ['guid', 'name', 'organization_guid', 'quota_guid', 'created_at', 'updated_at'] },
  roles: { table: 'roles', columns: ['guid', 'type', 'user_guid', 'organization_guid', 'space_guid', 'created_at', 'updated_at'] },
  apps: {
    table: 'apps',
    columns: ['guid', 'name', 'space_guid', 'state', 'version', 'droplet_guid', 'environment_variables', 'buildpacks', 'stack', 'labels', 'annotations', 'created_at', 'updated_at'],
    json: ['environment_variables', 'buildpacks', 'labels', 'annotations'],
  },
  processes: {
    table: 'processes',
    columns: ['guid', 'app_guid', 'type', 'instances', 'memory_in_mb', 'disk_in_mb', 'command', 'health_check_type', 'health_check_endpoint', 'health_check_timeout', 'created_at', 'updated_at'],
  },
  packages: { table: 'packages', columns: ['guid', 'app_guid', 'type', 'state', 'sha256', 'size', 'error', 'upload_controller_index', 'upload_claim', 'created_at', 'updated_at'] },
  builds: {
    table: 'builds',
    columns: ['guid', 'app_guid', 'package_guid', 'droplet_guid', 'state', 'error', 'buildpacks', 'stack', 'staging_memory_in_mb', 'staging_disk_in_mb', 'created_by', 'controller_index', 'created_at', 'updated_at'],
    json: ['buildpacks'],
  },
  droplets: {
    table: 'droplets',
    columns: ['guid', 'app_guid', 'package_guid', 'build_guid', 'state', 'error', 'sha256', 'size', 'buildpack', 'process_types', 'stack', 'created_at', 'updated_at'],
    json: ['process_types'],
  },
  domains: { table: 'domains', columns: ['guid', 'name', 'internal', 'organization_guid', 'created_at', 'updated_at'], bool: ['internal'] },
  routes: { table: 'routes', columns: ['guid', 'host', 'path', 'domain_guid', 'space_guid', 'created_at', 'updated_at'] },
  routeMappings: { table: 'route_mappings', columns: ['guid', 'route_guid', 'app_guid', 'process_type', 'created_at', 'updated_at'] },
  auditEvents: {
    table: 'audit_events',
    columns: ['guid', 'type', 'actor_guid', 'actor_type', 'actor_name', 'target_guid', 'target_type', 'target_name', 'space_guid', 'organization_guid', 'data', 'created_at', 'updated_at'],
    json: ['data'],
  },
  organizationQuotas: { table: 'organization_quotas', columns: ['guid', 'name', ...QUOTA_LIMITS, 'created_at', 'updated_at'] },
  spaceQuotas: { table: 'space_quotas', columns: ['guid', 'name', 'organization_guid', ...QUOTA_LIMITS, 'created_at', 'updated_at'] },
  serviceBrokers: {
    table: 'service_brokers',
    columns: ['guid', 'name', 'url', 'username', 'password', 'source', 'label', 'catalog_fetched_at', 'catalog_error', 'created_at', 'updated_at'],
  },
  serviceOfferings: {
    table: 'service_offerings',
    columns: ['guid', 'broker_guid', 'broker_id', 'name', 'description', 'bindable', 'plan_updateable', 'tags', 'requires', 'metadata', 'created_at', 'updated_at'],
    json: ['tags', 'requires', 'metadata'],
    bool: ['bindable', 'plan_updateable'],
  },
  servicePlans: {
    table: 'service_plans',
    columns: ['guid', 'offering_guid', 'broker_guid', 'broker_id', 'name', 'description', 'free', 'bindable', 'metadata', 'created_at', 'updated_at'],
    json: ['metadata'],
    bool: ['free', 'bindable'],
  },
  serviceInstances: {
    table: 'service_instances',
    columns: [
      'guid', 'name', 'type', 'space_guid', 'plan_guid', 'tags', 'credentials', 'syslog_drain_url', 'route_service_url', 'dashboard_url',
      'operation_type', 'operation_state', 'operation_description', 'broker_operation', 'pending_plan_guid', 'created_at', 'updated_at',
    ],
    json: ['tags'],
  },
  serviceBindings: {
    table: 'service_bindings',
    columns: [
      'guid', 'type', 'name', 'instance_guid', 'app_guid', 'space_guid', 'credentials', 'syslog_drain_url',
      'operation_type', 'operation_state', 'operation_description', 'broker_operation', 'created_at', 'updated_at',
    ],
  },
} as const satisfies Record<string, TableSpec>;

export function sqlStore(db: SqlDriver): Store {
  const repo = <R extends { guid: string }>(spec: TableSpec): Repo<R> => new SqlRepo<R>(db, spec);
  const store: Store = {
    users: repo(specs.users),
    organizations: repo(specs.organizations),
    spaces: repo(specs.spaces),
    roles: repo(specs.roles),
    apps: repo(specs.apps),
    processes: repo(specs.processes),
    packages: repo(specs.packages),
    builds: repo(specs.builds),
    droplets: repo(specs.droplets),
    domains: repo(specs.domains),
    routes: repo(specs.routes),
    routeMappings: repo(specs.routeMappings),
    auditEvents: repo(specs.auditEvents),
    organizationQuotas: repo(specs.organizationQuotas),
    spaceQuotas: repo(specs.spaceQuotas),
    serviceBrokers: repo(specs.serviceBrokers),
    serviceOfferings: repo(specs.serviceOfferings),
    servicePlans: repo(specs.servicePlans),
    serviceInstances: repo(specs.serviceInstances),
    serviceBindings: repo(specs.serviceBindings),
    async startedAppsAfter(afterGuid, limit) {
      const rows = await db.all<Record<string, unknown>>(
        `SELECT ${specs.apps.columns.join(', ')} FROM apps WHERE state = 'STARTED' AND guid > ? ORDER BY guid LIMIT ?`,
        [afterGuid, limit],
      );
      return rows.map((r) => decode<AppRecord>(specs.apps, r));
    },
    transaction: (fn) => db.transaction((tx) => fn(sqlStore(tx))),
    locked: (key, fn) =>
      db.transaction(async (tx) => {
        await tx.lock(key);
        return fn(sqlStore(tx));
      }),
    close: () => db.close(),
  };
  return store;
}

class SqlRepo<R extends { guid: string }> implements Repo<R> {
  constructor(
    private readonly db: SqlDriver,
    private readonly spec: TableSpec,
  ) {}

  async insert(record: R): Promise<R> {
    const cols = this.spec.columns;
    const values = cols.map((c) => encodeValue(this.spec, c, (record as Record<string, unknown>)[c]));
    await this.db.run(`INSERT INTO ${this.spec.table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, values);
    return record;
  }

  async get(guid: string): Promise<R | undefined> {
    return this.find({ guid } as Where<R>);
  }

  async find(where: Where<R>): Promise<R | undefined> {
    return (await this.list(where, { limit: 1 }))[0];
  }

  async list(where: Where<R> = {}, opts: ListOptions<R> = {}): Promise<R[]> {
    const w = this.where(where);
    if (w === null) return [];
    let sql = `SELECT ${this.spec.columns.join(', ')} FROM ${this.spec.table}${w.sql}`;
    if (opts.orderBy) {
      this.checkColumn(opts.orderBy.column);
      const dir = opts.orderBy.desc ? 'DESC' : 'ASC';
      // guid breaks ties so pages never overlap when timestamps are equal.
      sql += ` ORDER BY ${opts.orderBy.column} ${dir}, guid ${dir}`;
    } else {
      sql += ' ORDER BY created_at ASC, guid ASC';
    }
    const params = [...w.params];
    if (opts.limit !== undefined) {
      sql += ' LIMIT ? OFFSET ?';
      params.push(opts.limit, opts.offset ?? 0);
    }
    const rows = await this.db.all<Record<string, unknown>>(sql, params);
    return rows.map((r) => decode<R>(this.spec, r));
  }

  async count(where: Where<R> = {}): Promise<number> {
    const w = this.where(where);
    if (w === null) return 0;
    const row = await this.db.get<{ n: number | bigint }>(`SELECT COUNT(*) AS n FROM ${this.spec.table}${w.sql}`, w.params);
    return Number(row?.n ?? 0);
  }

  async update(guid: string, patch: Partial<Omit<R, 'guid' | 'created_at'>>): Promise<R | undefined> {
    await this.updateWhere({ guid } as Where<R>, patch);
    return this.get(guid);
  }

  async updateWhere(where: Where<R>, patch: Partial<Omit<R, 'guid' | 'created_at'>>): Promise<number> {
    const w = this.where(where);
    if (w === null) return 0;
    const entries = Object.entries({ updated_at: new Date().toISOString(), ...patch }).filter(([, v]) => v !== undefined);
    for (const [c] of entries) this.checkColumn(c);
    const set = entries.map(([c]) => `${c} = ?`).join(', ');
    const values = entries.map(([c, v]) => encodeValue(this.spec, c, v));
    const { changes } = await this.db.run(`UPDATE ${this.spec.table} SET ${set}${w.sql}`, [...values, ...w.params]);
    return changes;
  }

  async delete(where: Where<R>): Promise<number> {
    const w = this.where(where);
    if (w === null) return 0;
    if (w.sql === '') throw new Error(`Refusing to delete every row of ${this.spec.table}`);
    return (await this.db.run(`DELETE FROM ${this.spec.table}${w.sql}`, w.params)).changes;
  }

  /** The WHERE clause, or null when an empty IN list means nothing can match. */
  private where(where: Where<R>): { sql: string; params: SqlParam[] } | null {
    const c = this.conditions(where);
    if (c === null) return null;
    return { sql: c.parts.length ? ` WHERE ${c.parts.join(' AND ')}` : '', params: c.params };
  }

  /** The ANDed conditions of `where`, or null when they cannot hold. */
  private conditions(where: Where<R>): { parts: string[]; params: SqlParam[] } | null {
    const parts: string[] = [];
    const params: SqlParam[] = [];
    for (const [col, value] of Object.entries(where)) {
      if (value === undefined) continue;
      if (col === '$or') {
        const alternatives = (value as Array<Where<R>>).map((w) => this.conditions(w)).filter((a) => a !== null);
        if (alternatives.length === 0) return null;
        parts.push(`(${alternatives.map((a) => (a.parts.length ? `(${a.parts.join(' AND ')})` : '1 = 1')).join(' OR ')})`);
        params.push(...alternatives.flatMap((a) => a.params));
      } else if (col === '$gt' || col === '$lt') {
        for (const [c, v] of Object.entries(value as Record<string, unknown>)) {
          if (v === undefined) continue;
          this.checkColumn(c);
          parts.push(`${c} ${col === '$gt' ? '>' : '<'} ?`);
          params.push(encodeValue(this.spec, c, v));
        }
      } else {
        this.checkColumn(col);
        if (Array.isArray(value)) {
          if (value.length === 0) return null;
          parts.push(`${col} IN (${value.map(() => '?').join(', ')})`);
          params.push(...value.map((v) => encodeValue(this.spec, col, v)));
        } else if (value === null) {
          parts.push(`${col} IS NULL`);
        } else {
          parts.push(`${col} = ?`);
          params.push(encodeValue(this.spec, col, value));
        }
      }
    }
    return { parts, params };
  }

  /** Column names are interpolated into SQL, so only the table's own are ever accepted. */
  private checkColumn(col: string): void {
    if (!this.spec.columns.includes(col)) throw new Error(`${this.spec.table} has no column ${col}`);
  }
}

function encodeValue(spec: TableSpec, col: string, value: unknown): SqlParam {
  if (value === undefined || value === null) return null;
  if (spec.json?.includes(col)) return JSON.stringify(value);
  if (spec.bool?.includes(col)) return value ? 1 : 0;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value as SqlParam;
}

function decode<R>(spec: TableSpec, row: Record<string, unknown>): R {
  const out: Record<string, unknown> = {};
  for (const c of spec.columns) {
    const v = row[c];
    if (spec.json?.includes(c)) out[c] = typeof v === 'string' ? JSON.parse(v) : v;
    else if (spec.bool?.includes(c)) out[c] = Number(v) === 1;
    else if (typeof v === 'bigint') out[c] = Number(v);
    else out[c] = v;
  }
  return out as R;
}

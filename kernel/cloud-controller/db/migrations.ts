// The schema, as numbered migrations in portable SQL (SQLite and PostgreSQL alike): TEXT,
// INTEGER and BIGINT columns, booleans as 0/1, timestamps as ISO-8601 text, JSON as text.
// A migration never changes once released; a change of schema is a new number.
import { DbError, type SqlDriver } from './driver.ts';

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export const migrations: Migration[] = [
  {
    id: 1,
    name: 'initial',
    sql: `
CREATE TABLE users (
  guid TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  admin INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE organizations (
  guid TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE spaces (
  guid TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  organization_guid TEXT NOT NULL REFERENCES organizations (guid),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (organization_guid, name)
);
CREATE TABLE apps (
  guid TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  space_guid TEXT NOT NULL REFERENCES spaces (guid),
  state TEXT NOT NULL,
  version TEXT NOT NULL,
  droplet_guid TEXT,
  environment_variables TEXT NOT NULL,
  buildpacks TEXT NOT NULL,
  stack TEXT NOT NULL,
  labels TEXT NOT NULL,
  annotations TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (space_guid, name)
);
CREATE TABLE processes (
  guid TEXT PRIMARY KEY,
  app_guid TEXT NOT NULL REFERENCES apps (guid),
  type TEXT NOT NULL,
  instances INTEGER NOT NULL,
  memory_in_mb INTEGER NOT NULL,
  disk_in_mb INTEGER NOT NULL,
  command TEXT,
  health_check_type TEXT NOT NULL,
  health_check_endpoint TEXT,
  health_check_timeout INTEGER,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (app_guid, type)
);
CREATE TABLE packages (
  guid TEXT PRIMARY KEY,
  app_guid TEXT NOT NULL REFERENCES apps (guid),
  type TEXT NOT NULL,
  state TEXT NOT NULL,
  sha256 TEXT,
  size BIGINT,
  error TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX packages_app ON packages (app_guid);
CREATE TABLE droplets (
  guid TEXT PRIMARY KEY,
  app_guid TEXT NOT NULL REFERENCES apps (guid),
  package_guid TEXT NOT NULL,
  build_guid TEXT NOT NULL,
  state TEXT NOT NULL,
  error TEXT,
  sha256 TEXT,
  size BIGINT,
  buildpack TEXT,
  process_types TEXT NOT NULL,
  stack TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX droplets_app ON droplets (app_guid);
CREATE TABLE builds (
  guid TEXT PRIMARY KEY,
  app_guid TEXT NOT NULL REFERENCES apps (guid),
  package_guid TEXT NOT NULL,
  droplet_guid TEXT NOT NULL,
  state TEXT NOT NULL,
  error TEXT,
  buildpacks TEXT NOT NULL,
  stack TEXT NOT NULL,
  staging_memory_in_mb INTEGER NOT NULL,
  staging_disk_in_mb INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  controller_index INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX builds_app ON builds (app_guid);
CREATE INDEX builds_state ON builds (state);
CREATE TABLE domains (
  guid TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  internal INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE routes (
  guid TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  path TEXT NOT NULL,
  domain_guid TEXT NOT NULL REFERENCES domains (guid),
  space_guid TEXT NOT NULL REFERENCES spaces (guid),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (host, domain_guid, path)
);
CREATE TABLE route_mappings (
  guid TEXT PRIMARY KEY,
  route_guid TEXT NOT NULL REFERENCES routes (guid),
  app_guid TEXT NOT NULL REFERENCES apps (guid),
  process_type TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (route_guid, app_guid, process_type)
);
CREATE INDEX route_mappings_app ON route_mappings (app_guid);
CREATE TABLE app_events (
  guid TEXT PRIMARY KEY,
  app_guid TEXT NOT NULL,
  type TEXT NOT NULL,
  actor TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX app_events_app ON app_events (app_guid);
`,
  },
  {
    id: 2,
    name: 'roles',
    // A role is an org role (space_guid NULL) or a space role (organization_guid NULL); NULLs
    // never collide in a UNIQUE, so each kind has its own partial unique index. Users that
    // exist already could use every space before roles; they keep that as roles, which an
    // admin narrows (space_developer in every space, organization_user in every org).
    sql: `
CREATE TABLE roles (
  guid TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  user_guid TEXT NOT NULL REFERENCES users (guid),
  organization_guid TEXT REFERENCES organizations (guid),
  space_guid TEXT REFERENCES spaces (guid),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX roles_org_role ON roles (type, user_guid, organization_guid) WHERE space_guid IS NULL;
CREATE UNIQUE INDEX roles_space_role ON roles (type, user_guid, space_guid) WHERE space_guid IS NOT NULL;
CREATE INDEX roles_user ON roles (user_guid);
CREATE INDEX roles_space ON roles (space_guid);
CREATE INDEX roles_org ON roles (organization_guid);
INSERT INTO roles (guid, type, user_guid, organization_guid, space_guid, created_at, updated_at)
  SELECT 'org-user-' || u.guid || '-' || o.guid, 'organization_user', u.guid, o.guid, NULL, u.created_at, u.created_at
  FROM users u CROSS JOIN organizations o WHERE u.admin = 0;
INSERT INTO roles (guid, type, user_guid, organization_guid, space_guid, created_at, updated_at)
  SELECT 'space-dev-' || u.guid || '-' || s.guid, 'space_developer', u.guid, NULL, s.guid, u.created_at, u.created_at
  FROM users u CROSS JOIN spaces s WHERE u.admin = 0;
`,
  },
  {
    id: 3,
    name: 'quotas',
    // Limits are NULL for unlimited. An org or a space has at most one quota, named by its
    // quota_guid; none means unlimited (no default quota).
    sql: `
CREATE TABLE organization_quotas (
  guid TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  total_memory_in_mb INTEGER,
  total_instances INTEGER,
  total_routes INTEGER,
  total_service_instances INTEGER,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE space_quotas (
  guid TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  organization_guid TEXT NOT NULL REFERENCES organizations (guid),
  total_memory_in_mb INTEGER,
  total_instances INTEGER,
  total_routes INTEGER,
  total_service_instances INTEGER,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (organization_guid, name)
);
ALTER TABLE organizations ADD COLUMN quota_guid TEXT REFERENCES organization_quotas (guid);
ALTER TABLE spaces ADD COLUMN quota_guid TEXT REFERENCES space_quotas (guid);
`,
  },
  {
    id: 4,
    name: 'audit_events',
    // Who did what to which resource: app_events grow an actor, a target of any type, and the
    // space and org (kept as plain guids: an event outlives what it names). The crash and
    // health-manager events move over with their app as target.
    sql: `
CREATE TABLE audit_events (
  guid TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  actor_guid TEXT NOT NULL,
  actor_type TEXT NOT NULL,
  actor_name TEXT NOT NULL,
  target_guid TEXT NOT NULL,
  target_type TEXT NOT NULL,
  target_name TEXT NOT NULL,
  space_guid TEXT,
  organization_guid TEXT,
  data TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX audit_events_target ON audit_events (target_guid);
CREATE INDEX audit_events_space ON audit_events (space_guid);
CREATE INDEX audit_events_org ON audit_events (organization_guid);
CREATE INDEX audit_events_created ON audit_events (created_at);
INSERT INTO audit_events (guid, type, actor_guid, actor_type, actor_name, target_guid, target_type, target_name, space_guid, organization_guid, data, created_at, updated_at)
  SELECT e.guid, e.type, e.actor, e.actor, e.actor, e.app_guid, 'app', COALESCE(a.name, ''), a.space_guid, s.organization_guid, e.data, e.created_at, e.updated_at
  FROM app_events e LEFT JOIN apps a ON a.guid = e.app_guid LEFT JOIN spaces s ON s.guid = a.space_guid;
DROP TABLE app_events;
`,
  },
  {
    id: 5,
    name: 'services',
    // The marketplace and what apps use from it: OSB brokers (registered by an admin or
    // announced by a gateway; their Basic credentials kept here, never shown), the offerings
    // and plans of their catalogs, service instances (managed, or user-provided with their own
    // credentials) and credential bindings (to an app, or a service key). Credentials are
    // sealed text (services/credential-box.ts), never plain JSON.
    sql: `
CREATE TABLE service_brokers (
  guid TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  url TEXT NOT NULL,
  username TEXT NOT NULL,
  password TEXT NOT NULL,
  source TEXT NOT NULL,
  label TEXT,
  catalog_fetched_at TEXT,
  catalog_error TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE service_offerings (
  guid TEXT PRIMARY KEY,
  broker_guid TEXT NOT NULL REFERENCES service_brokers (guid),
  broker_id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  bindable INTEGER NOT NULL,
  plan_updateable INTEGER NOT NULL,
  tags TEXT NOT NULL,
  requires TEXT NOT NULL,
  metadata TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (broker_guid, broker_id)
);
CREATE TABLE service_plans (
  guid TEXT PRIMARY KEY,
  offering_guid TEXT NOT NULL REFERENCES service_offerings (guid),
  broker_guid TEXT NOT NULL,
  broker_id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  free INTEGER NOT NULL,
  bindable INTEGER NOT NULL,
  metadata TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (offering_guid, broker_id)
);
CREATE TABLE service_instances (
  guid TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  space_guid TEXT NOT NULL REFERENCES spaces (guid),
  plan_guid TEXT REFERENCES service_plans (guid),
  tags TEXT NOT NULL,
  credentials TEXT,
  syslog_drain_url TEXT,
  route_service_url TEXT,
  dashboard_url TEXT,
  operation_type TEXT NOT NULL,
  operation_state TEXT NOT NULL,
  operation_description TEXT,
  broker_operation TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (space_guid, name)
);
CREATE INDEX service_instances_plan ON service_instances (plan_guid);
CREATE TABLE service_bindings (
  guid TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  name TEXT,
  instance_guid TEXT NOT NULL REFERENCES service_instances (guid),
  app_guid TEXT,
  space_guid TEXT NOT NULL,
  credentials TEXT NOT NULL,
  syslog_drain_url TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX service_bindings_instance ON service_bindings (instance_guid);
CREATE INDEX service_bindings_app ON service_bindings (app_guid);
`,
  },
  {
    id: 6,
    name: 'package_upload_claims',
    // Which controller is receiving a package's bits (its index), and the claim of that upload;
    // updated_at is the claim's heartbeat. Uploads claimed before this migration have neither
    // and are judged by their updated_at alone.
    sql: `
ALTER TABLE packages ADD COLUMN upload_controller_index INTEGER;
ALTER TABLE packages ADD COLUMN upload_claim TEXT;
CREATE INDEX packages_state ON packages (state);
`,
  },
  {
    id: 7,
    name: 'service_instance_pending_plan',
    // The plan an asynchronous update moves a service instance to: recorded as its plan only
    // when the broker says the update succeeded, and kept here so a restarted controller can.
    sql: `
ALTER TABLE service_instances ADD COLUMN pending_plan_guid TEXT;
`,
  },
  {
    id: 8,
    name: 'service_binding_operations',
    // A binding's own last operation: a broker may create or delete one asynchronously (OSB
    // 2.14), so a binding can be in progress or failed. Bindings made before were made at once.
    sql: `
ALTER TABLE service_bindings ADD COLUMN operation_type TEXT NOT NULL DEFAULT 'create';
ALTER TABLE service_bindings ADD COLUMN operation_state TEXT NOT NULL DEFAULT 'succeeded';
ALTER TABLE service_bindings ADD COLUMN operation_description TEXT;
ALTER TABLE service_bindings ADD COLUMN broker_operation TEXT;
CREATE INDEX service_bindings_operation ON service_bindings (operation_state);
`,
  },
  {
    id: 9,
    name: 'private_domains',
    // The org owning a private domain; NULL for a shared one, which every domain made before
    // this migration is. Names stay unique across both kinds (the UNIQUE of migration 1).
    sql: `
ALTER TABLE domains ADD COLUMN organization_guid TEXT REFERENCES organizations (guid);
CREATE INDEX domains_organization ON domains (organization_guid);
`,
  },
];

/**
 * Applies the migrations not yet applied, each in its own transaction, in order. Several
 * controllers may start at once against one PostgreSQL database: each transaction first takes
 * the migration lock and re-reads what is applied, so a migration is applied exactly once.
 * (On SQLite, BEGIN IMMEDIATE already admits one writer at a time.)
 */
export async function migrate(db: SqlDriver, list: Migration[] = migrations): Promise<number[]> {
  await locked(db, (tx) => tx.exec('CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)'));
  const applied: number[] = [];
  for (const m of [...list].sort((a, b) => a.id - b.id)) {
    try {
      const done = await locked(db, async (tx) => {
        if (await tx.get('SELECT id FROM schema_migrations WHERE id = ?', [m.id])) return false;
        await tx.exec(m.sql);
        await tx.run('INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)', [m.id, m.name, new Date().toISOString()]);
        return true;
      });
      if (done) applied.push(m.id);
    } catch (err) {
      throw new DbError('migration_failed', `Applying migration ${m.id} (${m.name}): ${(err as Error).message}`, { cause: err });
    }
  }
  return applied;
}

/** Any 64-bit number the controller's database uses for nothing else: "ingot-cc" in ASCII. */
const MIGRATION_LOCK = 0x696e676f742d6363n;

/** A transaction holding the migration lock (released at its end) on PostgreSQL. */
function locked<T>(db: SqlDriver, fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    if (tx.dialect === 'postgres') await tx.get('SELECT pg_advisory_xact_lock(?)', [MIGRATION_LOCK]);
    return fn(tx);
  });
}

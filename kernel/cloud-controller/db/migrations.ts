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
];

/** Applies the migrations not yet applied, each in its own transaction, in order. */
export async function migrate(db: SqlDriver, list: Migration[] = migrations): Promise<number[]> {
  await db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  const done = new Set((await db.all<{ id: number }>('SELECT id FROM schema_migrations')).map((r) => Number(r.id)));
  const applied: number[] = [];
  for (const m of [...list].sort((a, b) => a.id - b.id)) {
    if (done.has(m.id)) continue;
    try {
      await db.transaction(async (tx) => {
        await tx.exec(m.sql);
        await tx.run('INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)', [m.id, m.name, new Date().toISOString()]);
      });
    } catch (err) {
      throw new DbError('migration_failed', `Applying migration ${m.id} (${m.name}): ${(err as Error).message}`, { cause: err });
    }
    applied.push(m.id);
  }
  return applied;
}

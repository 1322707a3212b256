// The director's schema as numbered migrations, applied by the controller's migrate() (same
// portable SQL rules: TEXT/INTEGER, timestamps as ISO-8601 text, JSON as text). A released
// migration never changes; a change of schema is a new number.
import type { Migration } from '../../kernel/cloud-controller/db/migrations.ts';

export const directorMigrations: Migration[] = [
  {
    id: 1,
    name: 'director initial',
    sql: `
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE cloud_configs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  properties TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE deployments (
  name TEXT PRIMARY KEY,
  manifest TEXT NOT NULL,
  cloud_config_id INTEGER REFERENCES cloud_configs (id),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE instances (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  deployment TEXT NOT NULL REFERENCES deployments (name) ON DELETE CASCADE,
  instance_group TEXT NOT NULL,
  idx INTEGER NOT NULL,
  uuid TEXT NOT NULL UNIQUE,
  az TEXT,
  state TEXT NOT NULL,
  bootstrap INTEGER NOT NULL DEFAULT 0,
  spec TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (deployment, instance_group, idx)
);
CREATE TABLE vms (
  cid TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL UNIQUE,
  deployment TEXT NOT NULL REFERENCES deployments (name) ON DELETE CASCADE,
  instance_id INTEGER REFERENCES instances (id) ON DELETE SET NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE disks (
  cid TEXT PRIMARY KEY,
  deployment TEXT NOT NULL REFERENCES deployments (name) ON DELETE CASCADE,
  instance_id INTEGER REFERENCES instances (id) ON DELETE SET NULL,
  size_mb INTEGER NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE releases (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  blob_id TEXT NOT NULL,
  uploaded_at TEXT NOT NULL,
  UNIQUE (name, version)
);
CREATE TABLE release_jobs (
  release_id INTEGER NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  blob_id TEXT,
  PRIMARY KEY (release_id, name)
);
CREATE TABLE release_packages (
  release_id INTEGER NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  dependencies TEXT NOT NULL DEFAULT '[]',
  blob_id TEXT,
  PRIMARY KEY (release_id, name)
);
CREATE TABLE stemcells (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  operating_system TEXT NOT NULL,
  cpi_cid TEXT,
  blob_id TEXT NOT NULL,
  cloud_properties TEXT NOT NULL DEFAULT '{}',
  uploaded_at TEXT NOT NULL,
  UNIQUE (name, version)
);
CREATE TABLE variables (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE tasks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  type TEXT NOT NULL,
  state TEXT NOT NULL,
  description TEXT NOT NULL,
  deployment TEXT,
  username TEXT NOT NULL,
  params TEXT NOT NULL DEFAULT '{}',
  result TEXT,
  created_at TEXT NOT NULL,
  started_at TEXT,
  ended_at TEXT
);
CREATE INDEX tasks_state ON tasks (state);
CREATE INDEX tasks_deployment ON tasks (deployment);
CREATE TABLE task_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX task_events_task ON task_events (task_id, kind, id);
CREATE TABLE locks (
  name TEXT PRIMARY KEY,
  task_id INTEGER NOT NULL REFERENCES tasks (id),
  acquired_at TEXT NOT NULL
);
CREATE TABLE mbus_agents (
  agent_id TEXT PRIMARY KEY,
  user TEXT NOT NULL UNIQUE,
  password TEXT NOT NULL,
  created_at TEXT NOT NULL
);
`,
  },
  {
    id: 2,
    name: 'instances desired state',
    // What `ingot start|stop|restart` last asked of an instance; a deploy applies a stopped
    // instance's new spec but leaves it stopped.
    sql: `ALTER TABLE instances ADD COLUMN desired_state TEXT NOT NULL DEFAULT 'started';`,
  },
  {
    id: 3,
    name: 'events and cloud-check problems',
    // events: BOSH's event log (the health monitor's alerts, resurrections); problems: what the
    // last cloud-check scan of a deployment found, until resolved or scanned again.
    sql: `
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  timestamp TEXT NOT NULL,
  user TEXT NOT NULL,
  action TEXT NOT NULL,
  object_type TEXT NOT NULL,
  object_name TEXT,
  deployment TEXT,
  instance TEXT,
  task_id INTEGER,
  context TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_deployment ON events (deployment, id);
CREATE TABLE problems (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  deployment TEXT NOT NULL,
  type TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  state TEXT NOT NULL,
  data TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL,
  resolved_at TEXT
);
CREATE INDEX problems_deployment ON problems (deployment, state);
`,
  },
  {
    id: 4,
    name: 'stemcell image blob',
    // The image taken out of a stemcell's tarball and handed to the CPI: recorded at upload, so
    // removing stemcells (catalog-removal.ts) knows its blob without reading the tarball again.
    sql: `ALTER TABLE stemcells ADD COLUMN image_blob_id TEXT;`,
  },
];

// The director's state in SQLite, through the controller's driver (WAL) and migrator. Every
// write is its own committed statement or transaction with synchronous=FULL, so a director
// killed with SIGKILL loses nothing it had answered for. Plain methods, no ORM.
import { openSqlite } from '../../kernel/cloud-controller/db/sqlite.ts';
import { migrate } from '../../kernel/cloud-controller/db/migrations.ts';
import type { SqlDriver } from '../../kernel/cloud-controller/db/driver.ts';
import type { VariableStore } from '../manifest/variables.ts';
import { LockHeldError } from './errors.ts';
import { directorMigrations } from './migrations.ts';
import { transition, type TaskHappening, type TaskState } from './task-states.ts';
import type {
  CloudConfigRecord,
  DeploymentRecord,
  DiskRecord,
  EventRecord,
  InstanceDesiredState,
  InstanceRecord,
  NewEvent,
  ProblemRecord,
  ReleaseDescription,
  ReleaseRecord,
  StemcellRecord,
  TaskEvent,
  TaskRecord,
  VmRecord,
} from './types.ts';

const now = (): string => new Date().toISOString();

interface TaskRow {
  id: number;
  type: string;
  state: TaskState;
  description: string;
  deployment: string | null;
  username: string;
  params: string;
  result: string | null;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
}

function taskOf(r: TaskRow): TaskRecord {
  return { ...r, id: Number(r.id), params: JSON.parse(r.params) as Record<string, unknown> };
}

export interface NewTask {
  type: string;
  description: string;
  deployment?: string | null;
  username: string;
  params?: Record<string, unknown>;
  /** Taken with the task, atomically; refused (LockHeldError) if another task holds one. */
  locks?: string[];
  /** Created `processing` (a task its caller runs itself, TaskRunner.runInline), never queued. */
  started?: boolean;
}

/**
 * The lock of every deployment at once: held, no `deployment:<name>` lock can be taken, and it
 * cannot be taken while any is held. Deleting releases and stemcells holds it (catalog-removal.ts).
 */
export const ALL_DEPLOYMENTS_LOCK = 'deployment:*';

/** Whether a held lock keeps a task from taking `wanted`: the same name, or `deployment:*` against any deployment's. */
export function locksConflict(held: string, wanted: string): boolean {
  if (held === wanted) return true;
  const isDeployment = (l: string) => l.startsWith('deployment:');
  return (held === ALL_DEPLOYMENTS_LOCK && isDeployment(wanted)) || (wanted === ALL_DEPLOYMENTS_LOCK && isDeployment(held));
}

export interface TaskFilter {
  states?: TaskState[];
  deployment?: string;
  type?: string;
  limit?: number;
}

export class DirectorStore {
  private constructor(readonly db: SqlDriver) {}

  static async open(file: string): Promise<DirectorStore> {
    const db = openSqlite(`sqlite://${file}`);
    // The controller's driver opens with NORMAL; the director answers for every write at once.
    await db.exec('PRAGMA synchronous = FULL');
    await migrate(db, directorMigrations);
    return new DirectorStore(db);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  // ---- settings ------------------------------------------------------------------------------

  async setting(key: string): Promise<string | undefined> {
    return (await this.db.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [key]))?.value;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.db.run('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  // ---- cloud configs -------------------------------------------------------------------------

  async addCloudConfig(properties: string): Promise<CloudConfigRecord> {
    return this.db.transaction(async (tx) => {
      const created_at = now();
      await tx.run('INSERT INTO cloud_configs (properties, created_at) VALUES (?, ?)', [properties, created_at]);
      const row = await tx.get<{ id: number }>('SELECT last_insert_rowid() AS id');
      return { id: Number(row!.id), properties, created_at };
    });
  }

  async cloudConfigs(limit = 1): Promise<CloudConfigRecord[]> {
    const rows = await this.db.all<CloudConfigRecord>('SELECT id, properties, created_at FROM cloud_configs ORDER BY id DESC LIMIT ?', [limit]);
    return rows.map((r) => ({ ...r, id: Number(r.id) }));
  }

  // ---- deployments, instances, vms, disks -----------------------------------------------------

  async deployments(): Promise<DeploymentRecord[]> {
    return this.db.all<DeploymentRecord>('SELECT name, manifest, cloud_config_id, created_at, updated_at FROM deployments ORDER BY name');
  }

  async deployment(name: string): Promise<DeploymentRecord | undefined> {
    return this.db.get<DeploymentRecord>('SELECT name, manifest, cloud_config_id, created_at, updated_at FROM deployments WHERE name = ?', [name]);
  }

  async saveDeployment(name: string, manifest: string, cloudConfigId: number | null): Promise<void> {
    const t = now();
    await this.db.run(
      `INSERT INTO deployments (name, manifest, cloud_config_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET manifest = excluded.manifest, cloud_config_id = excluded.cloud_config_id, updated_at = excluded.updated_at`,
      [name, manifest, cloudConfigId, t, t],
    );
  }

  async deleteDeployment(name: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.run('DELETE FROM vms WHERE deployment = ?', [name]);
      await tx.run('DELETE FROM disks WHERE deployment = ?', [name]);
      await tx.run('DELETE FROM instances WHERE deployment = ?', [name]);
      await tx.run('DELETE FROM deployments WHERE name = ?', [name]);
    });
  }

  async instances(deployment: string): Promise<InstanceRecord[]> {
    const rows = await this.db.all<Omit<InstanceRecord, 'spec' | 'bootstrap'> & { spec: string; bootstrap: number }>(
      'SELECT * FROM instances WHERE deployment = ? ORDER BY instance_group, idx',
      [deployment],
    );
    return rows.map((r) => ({ ...r, id: Number(r.id), bootstrap: Boolean(r.bootstrap), spec: JSON.parse(r.spec) as Record<string, unknown> }));
  }

  async saveInstance(i: Omit<InstanceRecord, 'id' | 'desired_state' | 'created_at' | 'updated_at'>): Promise<number> {
    const t = now();
    await this.db.run(
      `INSERT INTO instances (deployment, instance_group, idx, uuid, az, state, bootstrap, spec, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (deployment, instance_group, idx) DO UPDATE SET az = excluded.az, state = excluded.state,
         bootstrap = excluded.bootstrap, spec = excluded.spec, updated_at = excluded.updated_at`,
      [i.deployment, i.instance_group, i.idx, i.uuid, i.az, i.state, i.bootstrap ? 1 : 0, JSON.stringify(i.spec), t, t],
    );
    const row = await this.db.get<{ id: number }>('SELECT id FROM instances WHERE deployment = ? AND instance_group = ? AND idx = ?', [i.deployment, i.instance_group, i.idx]);
    return Number(row!.id);
  }

  /** What start/stop asked of these instances (by uuid); a deploy keeps it. */
  async setDesiredState(uuids: string[], state: InstanceDesiredState): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const uuid of uuids) await tx.run('UPDATE instances SET desired_state = ?, updated_at = ? WHERE uuid = ?', [state, now(), uuid]);
    });
  }

  async deleteInstance(id: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.run('UPDATE vms SET instance_id = NULL WHERE instance_id = ?', [id]);
      await tx.run('UPDATE disks SET instance_id = NULL WHERE instance_id = ?', [id]);
      await tx.run('DELETE FROM instances WHERE id = ?', [id]);
    });
  }

  async vms(deployment?: string): Promise<VmRecord[]> {
    return deployment
      ? this.db.all<VmRecord>('SELECT * FROM vms WHERE deployment = ? ORDER BY cid', [deployment])
      : this.db.all<VmRecord>('SELECT * FROM vms ORDER BY cid');
  }

  async saveVm(v: Omit<VmRecord, 'created_at'>): Promise<void> {
    await this.db.run('INSERT INTO vms (cid, agent_id, deployment, instance_id, created_at) VALUES (?, ?, ?, ?, ?)', [v.cid, v.agent_id, v.deployment, v.instance_id, now()]);
  }

  async deleteVm(cid: string): Promise<void> {
    await this.db.run('DELETE FROM vms WHERE cid = ?', [cid]);
  }

  async disks(deployment: string): Promise<DiskRecord[]> {
    return this.db.all<DiskRecord>('SELECT * FROM disks WHERE deployment = ? ORDER BY cid', [deployment]);
  }

  async saveDisk(d: Omit<DiskRecord, 'created_at'>): Promise<void> {
    await this.db.run('INSERT INTO disks (cid, deployment, instance_id, size_mb, created_at) VALUES (?, ?, ?, ?, ?)', [d.cid, d.deployment, d.instance_id, d.size_mb, now()]);
  }

  async deleteDisk(cid: string): Promise<void> {
    await this.db.run('DELETE FROM disks WHERE cid = ?', [cid]);
  }

  // ---- stemcells and releases ------------------------------------------------------------------

  async stemcells(): Promise<StemcellRecord[]> {
    const rows = await this.db.all<StemcellRecord & { cloud_properties: string }>('SELECT * FROM stemcells ORDER BY name, id');
    return rows.map((r) => ({ ...r, id: Number(r.id), cloud_properties: JSON.parse(r.cloud_properties as string) as Record<string, unknown> }));
  }

  async stemcell(name: string, version: string): Promise<StemcellRecord | undefined> {
    return (await this.stemcells()).find((s) => s.name === name && s.version === version);
  }

  async addStemcell(s: Omit<StemcellRecord, 'id' | 'uploaded_at'>): Promise<StemcellRecord> {
    return this.db.transaction(async (tx) => {
      const uploaded_at = now();
      await tx.run(
        'INSERT INTO stemcells (name, version, operating_system, cpi_cid, blob_id, image_blob_id, cloud_properties, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        [s.name, s.version, s.operating_system, s.cpi_cid, s.blob_id, s.image_blob_id, JSON.stringify(s.cloud_properties), uploaded_at],
      );
      const row = await tx.get<{ id: number }>('SELECT last_insert_rowid() AS id');
      return { ...s, id: Number(row!.id), uploaded_at };
    });
  }

  /** The CPI's cid of the stemcell, and the blob of the image it was given (none when the tarball had no image). */
  async setStemcellCid(id: number, cid: string, imageBlobId: string | null): Promise<void> {
    await this.db.run('UPDATE stemcells SET cpi_cid = ?, image_blob_id = ? WHERE id = ?', [cid, imageBlobId, id]);
  }

  async releases(): Promise<ReleaseRecord[]> {
    const rels = await this.db.all<{ id: number; name: string; version: string; blob_id: string; uploaded_at: string }>('SELECT * FROM releases ORDER BY name, id');
    const jobs = await this.db.all<{ release_id: number; name: string; version: string; fingerprint: string; blob_id: string | null }>('SELECT * FROM release_jobs ORDER BY name');
    const pkgs = await this.db.all<{ release_id: number; name: string; version: string; fingerprint: string; dependencies: string; blob_id: string | null }>(
      'SELECT * FROM release_packages ORDER BY name',
    );
    return rels.map((r) => ({
      ...r,
      id: Number(r.id),
      jobs: jobs.filter((j) => Number(j.release_id) === Number(r.id)).map(({ release_id: _, ...j }) => j),
      packages: pkgs
        .filter((p) => Number(p.release_id) === Number(r.id))
        .map(({ release_id: _, dependencies, ...p }) => ({ ...p, dependencies: JSON.parse(dependencies) as string[] })),
    }));
  }

  async release(name: string, version: string): Promise<ReleaseRecord | undefined> {
    return (await this.releases()).find((r) => r.name === name && r.version === version);
  }

  /** The release with its jobs and packages, in one transaction. `blobs` maps `jobs/x` / `packages/y` to blob ids. */
  async addRelease(d: ReleaseDescription, blobId: string, blobs: Map<string, string>): Promise<number> {
    return this.db.transaction(async (tx) => {
      await tx.run('INSERT INTO releases (name, version, blob_id, uploaded_at) VALUES (?, ?, ?, ?)', [d.name, d.version, blobId, now()]);
      const id = Number((await tx.get<{ id: number }>('SELECT last_insert_rowid() AS id'))!.id);
      for (const j of d.jobs) {
        await tx.run('INSERT INTO release_jobs (release_id, name, version, fingerprint, blob_id) VALUES (?, ?, ?, ?, ?)', [
          id, j.name, j.version ?? j.fingerprint, j.fingerprint, blobs.get(`jobs/${j.name}`) ?? null,
        ]);
      }
      for (const p of d.packages) {
        await tx.run('INSERT INTO release_packages (release_id, name, version, fingerprint, dependencies, blob_id) VALUES (?, ?, ?, ?, ?, ?)', [
          id, p.name, p.version ?? p.fingerprint, p.fingerprint, JSON.stringify(p.dependencies ?? []), blobs.get(`packages/${p.name}`) ?? null,
        ]);
      }
      return id;
    });
  }

  /** The release, its jobs and its packages (their blobs are the caller's to remove). */
  async deleteRelease(id: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.run('DELETE FROM release_jobs WHERE release_id = ?', [id]);
      await tx.run('DELETE FROM release_packages WHERE release_id = ?', [id]);
      await tx.run('DELETE FROM releases WHERE id = ?', [id]);
    });
  }

  async deleteStemcell(id: number): Promise<void> {
    await this.db.run('DELETE FROM stemcells WHERE id = ?', [id]);
  }

  /** Every deployment's manifest and its instances' applied specs: what the catalogue's usage is read from. */
  async deploymentUses(): Promise<Array<{ name: string; manifest: string; specs: Array<Record<string, unknown>> }>> {
    const deps = await this.deployments();
    const rows = await this.db.all<{ deployment: string; spec: string }>('SELECT deployment, spec FROM instances ORDER BY id');
    return deps.map((d) => ({
      name: d.name,
      manifest: d.manifest,
      specs: rows.filter((r) => r.deployment === d.name).map((r) => JSON.parse(r.spec) as Record<string, unknown>),
    }));
  }

  // ---- variables (the manifest's generated values) --------------------------------------------

  variableStore(): VariableStore {
    return {
      get: async (name) => {
        const row = await this.db.get<{ value: string }>('SELECT value FROM variables WHERE name = ?', [name]);
        return row ? (JSON.parse(row.value) as unknown) : undefined;
      },
      set: async (name, value) => {
        await this.db.run('INSERT INTO variables (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value', [
          name, JSON.stringify(value), now(),
        ]);
      },
    };
  }

  // ---- tasks, events, locks ------------------------------------------------------------------

  /** Creates a queued task and takes its locks, or refuses naming the task that holds one. */
  async createTask(t: NewTask): Promise<TaskRecord> {
    return this.db.transaction(async (tx) => {
      if (t.locks?.length) {
        const held = await tx.all<{ name: string; task_id: number; description: string }>('SELECT l.name, l.task_id, t.description FROM locks l JOIN tasks t ON t.id = l.task_id ORDER BY l.name');
        for (const lock of t.locks) {
          const holder = held.find((h) => locksConflict(h.name, lock));
          // Named by the deployment that is busy: `deployment:*` wanted, the held one says which.
          if (holder) throw new LockHeldError(lock === ALL_DEPLOYMENTS_LOCK ? holder.name : lock, Number(holder.task_id), holder.description);
        }
      }
      const created = now();
      await tx.run('INSERT INTO tasks (type, state, description, deployment, username, params, created_at, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
        t.type, t.started ? 'processing' : 'queued', t.description, t.deployment ?? null, t.username, JSON.stringify(t.params ?? {}), created, t.started ? created : null,
      ]);
      const id = Number((await tx.get<{ id: number }>('SELECT last_insert_rowid() AS id'))!.id);
      for (const lock of t.locks ?? []) await tx.run('INSERT INTO locks (name, task_id, acquired_at) VALUES (?, ?, ?)', [lock, id, now()]);
      return taskOf((await tx.get<TaskRow>('SELECT * FROM tasks WHERE id = ?', [id]))!);
    });
  }

  async task(id: number): Promise<TaskRecord | undefined> {
    const row = await this.db.get<TaskRow>('SELECT * FROM tasks WHERE id = ?', [id]);
    return row ? taskOf(row) : undefined;
  }

  async tasks(f: TaskFilter = {}): Promise<TaskRecord[]> {
    const where: string[] = [];
    const params: Array<string | number> = [];
    if (f.states?.length) {
      where.push(`state IN (${f.states.map(() => '?').join(', ')})`);
      params.push(...f.states);
    }
    if (f.deployment) {
      where.push('deployment = ?');
      params.push(f.deployment);
    }
    if (f.type) {
      where.push('type = ?');
      params.push(f.type);
    }
    const sql = `SELECT * FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return (await this.db.all<TaskRow>(sql, [...params, f.limit ?? 30])).map(taskOf);
  }

  /** Moves a task through the state machine; a finished task releases its locks in the same transaction. */
  async moveTask(id: number, happening: TaskHappening, result?: string): Promise<TaskRecord> {
    return this.db.transaction(async (tx) => {
      const row = await tx.get<TaskRow>('SELECT * FROM tasks WHERE id = ?', [id]);
      if (!row) throw new Error(`Moving task ${id}: no such task`);
      const next = transition(row.state, happening);
      const t = now();
      const finished = next === 'done' || next === 'error' || next === 'cancelled';
      await tx.run(
        `UPDATE tasks SET state = ?, started_at = COALESCE(started_at, CASE WHEN ? = 'processing' THEN ? END),
           ended_at = CASE WHEN ? THEN ? ELSE ended_at END, result = COALESCE(?, result) WHERE id = ?`,
        [next, next, t, finished ? 1 : 0, t, result ?? null, id],
      );
      if (finished) await tx.run('DELETE FROM locks WHERE task_id = ?', [id]);
      return taskOf((await tx.get<TaskRow>('SELECT * FROM tasks WHERE id = ?', [id]))!);
    });
  }

  async appendTaskOutput(taskId: number, kind: 'event' | 'debug', body: string): Promise<number> {
    await this.db.run('INSERT INTO task_events (task_id, kind, body) VALUES (?, ?, ?)', [taskId, kind, body]);
    return Number((await this.db.get<{ id: number }>('SELECT last_insert_rowid() AS id'))!.id);
  }

  /** Output lines of one kind after `afterId` (0 for all), oldest first, with their ids for paging. */
  async taskOutput(taskId: number, kind: 'event' | 'debug', afterId = 0): Promise<Array<{ id: number; body: string }>> {
    const rows = await this.db.all<{ id: number; body: string }>('SELECT id, body FROM task_events WHERE task_id = ? AND kind = ? AND id > ? ORDER BY id', [taskId, kind, afterId]);
    return rows.map((r) => ({ id: Number(r.id), body: r.body }));
  }

  async taskEvents(taskId: number): Promise<TaskEvent[]> {
    return (await this.taskOutput(taskId, 'event')).map((r) => JSON.parse(r.body) as TaskEvent);
  }

  async locks(): Promise<Array<{ name: string; task_id: number; acquired_at: string }>> {
    return (await this.db.all<{ name: string; task_id: number; acquired_at: string }>('SELECT * FROM locks ORDER BY name')).map((l) => ({ ...l, task_id: Number(l.task_id) }));
  }

  // ---- events and cloud-check problems ---------------------------------------------------------

  async addEvent(e: NewEvent): Promise<EventRecord> {
    return this.db.transaction(async (tx) => {
      const timestamp = now();
      await tx.run('INSERT INTO events (timestamp, user, action, object_type, object_name, deployment, instance, task_id, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', [
        timestamp, e.user, e.action, e.object_type, e.object_name ?? null, e.deployment ?? null, e.instance ?? null, e.task_id ?? null, JSON.stringify(e.context),
      ]);
      const id = Number((await tx.get<{ id: number }>('SELECT last_insert_rowid() AS id'))!.id);
      return { id, timestamp, object_name: null, deployment: null, instance: null, task_id: null, ...e };
    });
  }

  /** Newest first. */
  async events(f: { deployment?: string; action?: string; beforeId?: number; limit?: number } = {}): Promise<EventRecord[]> {
    const where: string[] = [];
    const params: Array<string | number> = [];
    if (f.deployment) (where.push('deployment = ?'), params.push(f.deployment));
    if (f.action) (where.push('action = ?'), params.push(f.action));
    if (f.beforeId) (where.push('id < ?'), params.push(f.beforeId));
    const rows = await this.db.all<Omit<EventRecord, 'context'> & { context: string }>(
      `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
      [...params, f.limit ?? 200],
    );
    return rows.map((r) => ({ ...r, id: Number(r.id), task_id: r.task_id === null ? null : Number(r.task_id), context: JSON.parse(r.context) as Record<string, unknown> }));
  }

  /** A scan's findings replace the deployment's open problems (those become `closed`). */
  async replaceProblems(deployment: string, found: Array<Pick<ProblemRecord, 'type' | 'resource_id' | 'data'>>): Promise<ProblemRecord[]> {
    await this.db.transaction(async (tx) => {
      await tx.run("UPDATE problems SET state = 'closed', resolved_at = ? WHERE deployment = ? AND state = 'open'", [now(), deployment]);
      for (const p of found) {
        await tx.run("INSERT INTO problems (deployment, type, resource_id, state, data, created_at) VALUES (?, ?, ?, 'open', ?, ?)", [deployment, p.type, p.resource_id, JSON.stringify(p.data), now()]);
      }
    });
    return this.problems(deployment);
  }

  /** The deployment's problems, open ones by default, oldest first. */
  async problems(deployment: string, states: Array<ProblemRecord['state']> = ['open']): Promise<ProblemRecord[]> {
    const rows = await this.db.all<Omit<ProblemRecord, 'data'> & { data: string }>(
      `SELECT * FROM problems WHERE deployment = ? AND state IN (${states.map(() => '?').join(', ')}) ORDER BY id`,
      [deployment, ...states],
    );
    return rows.map((r) => ({ ...r, id: Number(r.id), data: JSON.parse(r.data) as Record<string, unknown> }));
  }

  async resolveProblem(id: number): Promise<void> {
    await this.db.run("UPDATE problems SET state = 'resolved', resolved_at = ? WHERE id = ?", [now(), id]);
  }

  // ---- mbus credentials ------------------------------------------------------------------------

  async mbusAgents(): Promise<Array<{ agent_id: string; user: string; password: string }>> {
    return this.db.all('SELECT agent_id, user, password FROM mbus_agents ORDER BY agent_id');
  }

  async putMbusAgent(a: { agent_id: string; user: string; password: string }): Promise<void> {
    await this.db.run('INSERT INTO mbus_agents (agent_id, user, password, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET password = excluded.password', [
      a.agent_id, a.user, a.password, now(),
    ]);
  }

  async deleteMbusAgent(agentId: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM mbus_agents WHERE agent_id = ?', [agentId])).changes > 0;
  }
}

// The ccdb (the controllers' PostgreSQL) for a test: a real `ingot component ccdb` process
// on its own port, its dir in a scratch directory the `postgres` user can pass through, its
// config rewritable between starts (a rotated password), and a way to find every postgres
// process of its cluster. stop() leaves no process and no directory behind.
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { stringify } from 'yaml';
import type { DatabaseEntry } from '../../kernel/ccdb/config.ts';
import { pidsWorkingIn } from '../../kernel/ccdb/postmaster.ts';
import { withSession } from '../../kernel/services/nodes/postgresql/session.ts';
import { eventually, startComponentProcess, type StartedComponent } from './component-process.ts';
import type { NatsServer } from './nats-server.ts';
import { freePort } from './ports.ts';
import { scratchDir } from './tmp.ts';

const STATUS = { user: 'ingot', password: 'status-secret' };

export class Ccdb {
  proc: StartedComponent | undefined;

  private constructor(
    private readonly nats: NatsServer,
    /** The scratch directory: `dir` and the config file are below it. */
    readonly root: string,
    readonly port: number,
    public databases: DatabaseEntry[],
  ) {}

  /** A ccdb not yet started; `start()` runs it. */
  static async create(nats: NatsServer, databases: DatabaseEntry[], port?: number): Promise<Ccdb> {
    const root = scratchDir('ccdb');
    chmodSync(root, 0o711); // the server's user passes through to dir/data
    return new Ccdb(nats, root, port ?? (await freePort()), databases);
  }

  get dir(): string {
    return join(this.root, 'store');
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  config(): Record<string, unknown> {
    return {
      nats: this.nats.componentConfig,
      status: { host: '127.0.0.1', port: 0, ...STATUS },
      local_ip: '127.0.0.1',
      drain_timeout_s: 15,
      dir: this.dir,
      host: '127.0.0.1',
      port: this.port,
      probe_interval_s: 0.5,
      // Durability off: a test cluster never outlives its run, and fsyncs would dominate its time.
      postgres: { settings: { fsync: false, synchronous_commit: false, full_page_writes: false } },
      databases: this.databases,
    };
  }

  /** Writes the config as it is now; its path. */
  writeConfig(): string {
    const configFile = join(this.root, 'ccdb.yml');
    writeFileSync(configFile, stringify(this.config()));
    return configFile;
  }

  /** Writes the config and starts the component; resolves once it says started. */
  async start(): Promise<StartedComponent> {
    this.proc = await startComponentProcess('ccdb', this.writeConfig(), { statusPassword: STATUS.password, readyTimeoutMs: 90_000 });
    return this.proc;
  }

  async status(path: '/healthz' | '/varz'): Promise<{ status: number; body: any }> {
    const res = await fetch(this.proc!.statusUrl(path), { headers: { authorization: this.proc!.auth } });
    const text = await res.text();
    return { status: res.status, body: path === '/varz' ? JSON.parse(text) : text };
  }

  /** A `db.url` for an entry (the controller's form). */
  url(entry: DatabaseEntry, password = entry.password): string {
    return `postgres://${encodeURIComponent(entry.user)}:${encodeURIComponent(password)}@127.0.0.1:${this.port}/${encodeURIComponent(entry.name)}`;
  }

  /** One session as an entry's role in its database. */
  withClient<T>(entry: DatabaseEntry, fn: (c: pg.Client) => Promise<T>, password = entry.password): Promise<T> {
    return withSession({ host: '127.0.0.1', port: this.port, user: entry.user, password, database: entry.name }, fn);
  }

  /** Every process of the cluster (postmaster and backends: their working directory is the data dir). */
  postgresPids(): Promise<number[]> {
    return pidsWorkingIn(this.dataDir);
  }

  /** Until no postgres process of the cluster is left. */
  async noPostgresLeft(timeoutMs = 20_000): Promise<void> {
    await eventually(async () => (await this.postgresPids()).length === 0, timeoutMs, `no postgres process in ${this.dataDir}`);
  }

  /** Kills the component, then whatever of its cluster outlives it, and removes the directory. */
  async destroy(): Promise<void> {
    await this.proc?.kill('SIGKILL');
    try {
      await this.noPostgresLeft();
    } catch {
      for (const pid of await this.postgresPids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
    rmSync(this.root, { recursive: true, force: true });
  }
}

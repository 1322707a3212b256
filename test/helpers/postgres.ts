// A private PostgreSQL cluster for a test file, from Debian's binaries: initdb'd in a scratch
// directory owned by the `postgres` user (PostgreSQL refuses to run as root), listening on
// 127.0.0.1 on a free port and on a unix socket in that directory; a database per caller.
// stop() kills it and removes the directory. A run that dies without stop() leaves a postmaster
// whose command line points into the scratch root, so scripts/sweep.sh kills it with the rest
// (its backends exit when the postmaster is gone).
import type { TestFn } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './ports.ts';
import { scratchDir, TEST_ROOT } from './tmp.ts';

const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
const SUPERUSER = 'postgres';
const READY_TIMEOUT_MS = 30_000;

/** argv prefix that runs a command as the postgres user when we are root. */
function asPostgres(): { prefix: string[]; uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return { prefix: [] };
  const id = (flag: string): number => Number(spawnSync('id', [flag, SUPERUSER], { encoding: 'utf8' }).stdout.trim() || NaN);
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error(`PostgreSQL refuses to run as root and there is no ${SUPERUSER} user to run it as`);
  // setpriv execs the command itself, so the pid we hold is the postmaster's.
  return { prefix: ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--'], uid, gid };
}

export class PostgresCluster {
  private output = '';

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly password: string,
    private readonly proc: ChildProcess,
  ) {}

  static async start(): Promise<PostgresCluster> {
    const user = asPostgres();
    // mkdtemp makes the directory 0700 root; the cluster's owner must own it, and reach it
    // through the scratch root (0755 unless a strict umask made it; then it is opened up).
    const dir = scratchDir('pg');
    if (user.uid !== undefined) {
      if ((statSync(TEST_ROOT).mode & 0o001) === 0) chmodSync(TEST_ROOT, 0o755);
      chownSync(dir, user.uid, user.gid!);
    }
    const data = join(dir, 'data');
    const password = randomBytes(12).toString('hex');
    const pwfile = join(dir, 'pwfile');
    writeFileSync(pwfile, `${password}\n`);
    if (user.uid !== undefined) chownSync(pwfile, user.uid, user.gid!);
    const initdb = [...user.prefix, `${BIN}/initdb`, '-D', data, '-U', SUPERUSER, `--pwfile=${pwfile}`, '--auth-host=scram-sha-256', '--auth-local=trust', '--no-locale', '--encoding=UTF8', '--no-sync'];
    const init = spawnSync(initdb[0]!, initdb.slice(1), { cwd: dir, encoding: 'utf8' });
    if (init.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`initdb failed (${init.status ?? init.error?.message}):\n${init.stdout}${init.stderr}`);
    }
    const port = await freePort();
    // Durability off: a test cluster never outlives its run, and fsyncs would dominate its time.
    const args = ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200'];
    const cmd = [...user.prefix, `${BIN}/postgres`, ...args];
    const proc = spawn(cmd[0]!, cmd.slice(1), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const cluster = new PostgresCluster(dir, port, password, proc);
    for (const s of [proc.stdout!, proc.stderr!]) s.on('data', (c: Buffer) => void (cluster.output += c.toString()));
    try {
      await cluster.ready();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** The superuser's url for a database on TCP. */
  url(database = 'postgres'): string {
    return `postgres://${SUPERUSER}:${this.password}@127.0.0.1:${this.port}/${database}`;
  }

  /** The same over the unix socket in the cluster's directory. */
  socketUrl(database = 'postgres'): string {
    return `postgres://${SUPERUSER}@localhost:${this.port}/${database}?host=${this.dir}`;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** A new, empty database; its url. */
  async createDatabase(name: string): Promise<string> {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name ${name}: expected lower-case letters, digits and _`);
    await this.withClient((c) => c.query(`CREATE DATABASE ${name}`));
    return this.url(name);
  }

  async withClient<T>(fn: (c: pg.Client) => Promise<T>, database = 'postgres'): Promise<T> {
    const client = new pg.Client({ connectionString: this.url(database) });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  }

  /** Immediate shutdown (SIGQUIT), SIGKILL if it lingers; then the directory goes. */
  async stop(): Promise<void> {
    if (this.running) {
      const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
      this.proc.kill('SIGQUIT');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Polls a connection until the server accepts one (it refuses while starting up). */
  private async ready(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (!this.running) throw new Error(`postgres exited (${this.proc.exitCode ?? this.proc.signalCode}) while starting:\n${this.output}`);
      try {
        await this.withClient((c) => c.query('SELECT 1'));
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`postgres did not accept connections within ${READY_TIMEOUT_MS / 1000} s (${(err as Error).message}):\n${this.output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
}

/**
 * Runs a controller suite of a test file on PostgreSQL: a cluster started before the suite's
 * hooks and stopped after its after hooks (ava runs hooks in the order they are registered; a
 * serial one waits for those before it), and `register` given a factory of the database.
 */
export function onPostgres<C>(test: TestFn<C>, database: string, register: (dbUrl: () => Promise<string>) => void): void {
  let cluster: PostgresCluster | undefined;
  test.serial.before(async () => {
    cluster = await PostgresCluster.start();
  });
  register(() => cluster!.createDatabase(database));
  test.serial.after.always(async () => {
    await cluster?.stop();
  });
}

// What the PostgreSQL and MySQL backends share: the node owns one database server (not one
// per instance, as Redis does), run as an unprivileged user below base_dir, with an admin
// password only the node knows, supervised, and a timer that holds each unit to its plan's
// size. A backend says how its server is made and started, and what a unit is.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import type { z } from 'zod';
import { UnitError } from '../errors.ts';
import type { PlanLimits } from './config.ts';
import type { BackendContext, ServiceBackend, UnitRecord } from './types.ts';
import { SupervisedServer, type SupervisedServerOptions } from './supervised-server.ts';

export interface Owner {
  name: string;
  uid: number;
  gid: number;
}

export interface ServerSetup {
  /** The config key naming the user the server runs as (for errors): `postgresql.run_as`. */
  runAsKey: string;
  runAs: string;
  /** Which Debian package makes that user, for the error when it is missing. */
  userHint: string;
}

export abstract class ServerBackend implements ServiceBackend {
  protected readonly owner: Owner | undefined;
  protected server: SupervisedServer | undefined;
  /** The server's admin password, read (or made) at start. */
  protected password = '';
  private quotaTimer: NodeJS.Timeout | undefined;

  constructor(
    protected readonly ctx: BackendContext,
    private readonly setup: ServerSetup,
  ) {
    this.owner = process.getuid?.() === 0 ? lookupUser(setup.runAs, setup.runAsKey, setup.userHint) : undefined;
  }

  abstract restore(units: UnitRecord[]): Promise<void>;
  abstract provision(instanceId: string, plan: PlanLimits): Promise<Record<string, unknown>>;
  abstract bind(unit: UnitRecord, bindingId: string): Promise<Record<string, unknown>>;
  abstract unbind(unit: UnitRecord, bindingId: string): Promise<void>;
  abstract unprovision(unit: UnitRecord): Promise<void>;
  /** One pass of the size checks over every unit. */
  protected abstract checkSizes(): Promise<void>;

  /**
   * Node start: base_dir and the server's directory ready, the admin secret read (or made),
   * the server's data made when it has none, the server started and the size checks begun.
   */
  protected async startServer(o: {
    secretFile: string;
    serverDir: string;
    hasData: boolean;
    makeData(): Promise<void>;
    server: Omit<SupervisedServerOptions, 'runAs' | 'log'>;
    quotaIntervalS: number;
  }): Promise<void> {
    await prepareBaseDir(this.ctx.baseDir, this.owner, this.setup.runAsKey);
    this.password = await nodeSecret(o.secretFile);
    await ownedDir(o.serverDir, this.owner);
    if (!o.hasData) await o.makeData();
    this.server = new SupervisedServer({ ...o.server, runAs: this.owner?.name, log: this.ctx.log });
    await this.server.start();
    this.quotaTimer = setInterval(() => void this.checkSizes(), o.quotaIntervalS * 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.quotaTimer);
    await this.server?.stop();
  }

  protected serverVarz(port: number, overSize: string[]): Record<string, unknown> {
    return {
      port,
      run_as: this.owner?.name ?? null,
      server: { pid: this.server?.pid ?? null, running: this.server?.running ?? false, restarts: this.server?.restarts ?? 0 },
      over_size: overSize,
    };
  }

  /** Runs a data-making tool (initdb, mariadb-install-db) as the server's user; throws its last words. */
  protected runAsOwner(argv: string[], cwd: string, doing: string): void {
    const asUser = this.owner ? ['setpriv', `--reuid=${this.owner.name}`, `--regid=${this.owner.name}`, '--init-groups', '--'] : [];
    const cmd = [...asUser, ...argv];
    const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd, encoding: 'utf8' });
    if (r.status !== 0) throw new UnitError(`${doing} failed (${r.status ?? r.error?.message}): ${(r.stderr || r.stdout).trim().slice(-1000)}`);
  }

  /** The units whose plan has a size, with it: what the size checks look at. */
  protected sizedUnits(): Array<{ unit: UnitRecord; sizeMb: number }> {
    if (!this.server?.running) return [];
    return [...this.ctx.units()].flatMap((unit) => {
      const sizeMb = this.ctx.config.plans[unit.plan]?.size_mb;
      return sizeMb ? [{ unit, sizeMb }] : [];
    });
  }

  protected planOf(unit: UnitRecord): PlanLimits {
    const plan = this.ctx.config.plans[unit.plan];
    if (!plan) throw new UnitError(`instance ${unit.instance_id}: its plan ${unit.plan} is no longer in this node's config`);
    return plan;
  }

  protected async writeOwned(file: string, text: string, mode: number): Promise<void> {
    await writeFile(file, text, { mode });
    if (this.owner) await chown(file, this.owner.uid, this.owner.gid);
  }
}

/** A unit's backend data from node.json, checked against the backend's schema. */
export function unitData<T extends z.ZodTypeAny>(unit: UnitRecord, schema: T, service: string): z.output<T> {
  const parsed = schema.safeParse(unit.data);
  if (!parsed.success) throw new UnitError(`instance ${unit.instance_id}: its record in node.json is not a ${service} unit's`);
  return parsed.data;
}

/** Statements in order on one admin session; a failure says what was being done and where (passwords elided). */
export async function runStatements(c: { query(sql: string): Promise<unknown> }, statements: string[], doing: string): Promise<void> {
  for (const sql of statements) {
    try {
      await c.query(sql);
    } catch (err) {
      throw new UnitError(`${doing}: ${(err as Error).message} (in: ${sql.replace(/(PASSWORD|IDENTIFIED BY) \S+/g, '$1 …')})`, { cause: err });
    }
  }
}

/** A user's ids (getent: /etc/passwd or NSS); `key` names the config key that chose it. */
export function lookupUser(name: string, key: string, hint: string): Owner {
  const entry = spawnSync('getent', ['passwd', name], { encoding: 'utf8' }).stdout ?? '';
  const [user, , uid, gid] = entry.trim().split(':');
  if (user === name && uid !== undefined && gid !== undefined) return { name, uid: Number(uid), gid: Number(gid) };
  throw new UnitError(`${key}: user ${name} does not exist on this machine (${hint})`);
}

/** The base directory exists, and `owner` can reach it (not read it): servers live below it. */
export async function prepareBaseDir(baseDir: string, owner: Owner | undefined, key: string): Promise<void> {
  await mkdir(baseDir, { recursive: true, mode: 0o711 });
  if (!owner) return;
  const probe = spawnSync('setpriv', [`--reuid=${owner.name}`, `--regid=${owner.name}`, '--clear-groups', '--', 'test', '-x', baseDir]);
  if (probe.status !== 0) {
    throw new UnitError(`user ${owner.name} (${key}) cannot reach base_dir ${baseDir}: give it and its parent directories search permission (o+x)`);
  }
}

/** A directory of `owner`'s, private to it (a server's data directory must be). */
export async function ownedDir(dir: string, owner: Owner | undefined): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  if (owner) await chown(dir, owner.uid, owner.gid);
}

/** A secret only the node knows, kept in base_dir (0600, root's): made once, read on every start. */
export async function nodeSecret(file: string): Promise<string> {
  try {
    const secret = (await readFile(file, 'utf8')).trim();
    if (secret.length >= 16) return secret;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(24).toString('hex');
  await writeFile(file, secret + '\n', { mode: 0o600 });
  return secret;
}

/** A binding's password: hex, so it needs no escaping in a URI or an option file. */
export function newPassword(): string {
  return randomBytes(24).toString('hex');
}

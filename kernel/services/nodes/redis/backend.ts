// The Redis backend of the service node. One instance is one redis-server process of its
// own: its own port from `port_range`, bound to the node's `host`, `maxmemory` and
// `maxclients` from the plan, its data (AOF) in `<base_dir>/<instance_id>/`. The `default`
// user has a random password only the node knows; a plan change is CONFIG SET on the unit's
// own server (and its redis.conf follows, rendered from the unit's current plan at each start); each binding is an ACL user of its own
// (all keys, all commands but @admin), deleted on unbind — which also closes its connections.
// Two instances never share a server, so one's credentials can never reach another's keys.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import { ServiceError, UnitError } from '../../errors.ts';
import { freePorts } from '../../node/capacity.ts';
import type { PlanLimits } from '../../node/config.ts';
import type { BackendContext, ServiceBackend, UnitRecord } from '../../node/types.ts';
import { RedisProcess } from './redis-process.ts';
import { BINDING_RULES, planSettings, redisUri, renderAclFile, renderRedisConf, unitPaths } from './redis-conf.ts';

const redisUnitData = z.object({ port: z.number().int(), admin_password: z.string().min(16) }).passthrough();
type RedisUnitData = z.infer<typeof redisUnitData>;

interface Owner {
  name: string;
  uid: number;
  gid: number;
}

export function createRedisBackend(ctx: BackendContext): ServiceBackend {
  return new RedisBackend(ctx);
}

class RedisBackend implements ServiceBackend {
  private readonly servers = new Map<string, RedisProcess>();
  /** Ports handed out but whose unit is not in the node's state yet (a provision in flight). */
  private readonly reserved = new Set<number>();
  private readonly owner: Owner | undefined;

  constructor(private readonly ctx: BackendContext) {
    this.owner = process.getuid?.() === 0 ? lookupUser(ctx.config.redis.run_as) : undefined;
  }

  async restore(units: UnitRecord[]): Promise<void> {
    await this.prepareBaseDir();
    await Promise.all(
      units.map(async (unit) => {
        try {
          const plan = this.ctx.config.plans[unit.plan];
          if (!plan) throw new UnitError(`its plan ${unit.plan} is no longer in this node's config`);
          await this.server(unit.instance_id, this.dataOf(unit), plan).start({ keepTrying: true });
        } catch (err) {
          // Logged and kept (its server is tried again with the back-off); /varz shows it down.
          this.ctx.log.error({ instance_id: unit.instance_id, err: (err as Error).message }, 'restoring a redis instance failed');
        }
      }),
    );
    this.ctx.log.info({ instances: units.length, running: [...this.servers.values()].filter((s) => s.running).length }, 'redis instances restored');
  }

  async provision(instanceId: string, plan: PlanLimits): Promise<Record<string, unknown>> {
    const dir = this.unitDir(instanceId);
    const data: RedisUnitData = { port: await this.pickPort(), admin_password: randomBytes(24).toString('hex') };
    this.reserved.add(data.port);
    try {
      await mkdir(dir, { recursive: true, mode: 0o750 });
      await this.own(dir);
      await this.server(instanceId, data, plan).start();
    } catch (err) {
      this.servers.delete(instanceId);
      await rm(dir, { recursive: true, force: true });
      throw err;
    } finally {
      this.reserved.delete(data.port);
    }
    return data;
  }

  async bind(unit: UnitRecord, bindingId: string): Promise<Record<string, unknown>> {
    if (bindingId === 'default') throw new ServiceError('invalid', 'binding_id "default" is reserved by Redis');
    const data = this.dataOf(unit);
    const password = randomBytes(24).toString('hex');
    await this.adminCommand(unit, 'binding', 'ACL', 'SETUSER', bindingId, 'reset', ...BINDING_RULES, `>${password}`);
    const c = { host: this.ctx.host, port: data.port, username: bindingId, password };
    return { ...c, uri: redisUri(c) };
  }

  async unbind(unit: UnitRecord, bindingId: string): Promise<void> {
    // ACL DELUSER also closes every connection authenticated as that user (Redis 7).
    try {
      await this.adminCommand(unit, 'unbinding', 'ACL', 'DELUSER', bindingId);
    } catch (err) {
      // A server that is down gets its ACL file rewritten without the user before it starts again.
      if (this.servers.get(unit.instance_id)?.running) throw err;
      this.ctx.log.warn({ instance_id: unit.instance_id, binding_id: bindingId }, 'redis-server down at unbind; its next start drops the user');
    }
  }

  async update(unit: UnitRecord, plan: PlanLimits): Promise<void> {
    await this.adminCommand(unit, 'changing the plan', 'CONFIG', 'SET', ...planSettings(plan));
  }

  async unprovision(unit: UnitRecord): Promise<void> {
    await this.servers.get(unit.instance_id)?.stop();
    this.servers.delete(unit.instance_id);
    await rm(this.unitDir(unit.instance_id), { recursive: true, force: true });
  }

  async stop(): Promise<void> {
    await Promise.all([...this.servers.values()].map((s) => s.stop()));
  }

  varz(): Record<string, unknown> {
    return {
      redis: {
        run_as: this.owner?.name ?? null,
        servers: Object.fromEntries([...this.servers].map(([id, s]) => [id, { pid: s.pid ?? null, running: s.running, restarts: s.restarts }])),
      },
    };
  }

  /** The unit's supervised server, created on first use. */
  private server(instanceId: string, data: RedisUnitData, plan: PlanLimits): RedisProcess {
    const existing = this.servers.get(instanceId);
    if (existing) return existing;
    const dir = this.unitDir(instanceId);
    const paths = unitPaths(dir);
    const server = new RedisProcess({
      instanceId,
      serverPath: this.ctx.config.redis.server_path,
      confPath: paths.conf,
      pidPath: paths.pid,
      logPath: paths.log,
      runAs: this.owner?.name,
      host: this.ctx.host,
      port: data.port,
      adminPassword: data.admin_password,
      startTimeoutMs: this.ctx.config.redis.start_timeout_s * 1000,
      log: this.ctx.log,
      prepare: async () => {
        // The bindings as the node holds them now (a restart must not revive an unbound user).
        const current = [...this.ctx.units()].find((u) => u.instance_id === instanceId);
        const bindings = Object.entries(current?.bindings ?? {}).map(([username, b]) => ({ username, password: String(b.credentials.password) }));
        // The unit's plan as it is now: a plan change since the server was made holds over restarts.
        const now = (current && this.ctx.config.plans[current.plan]) ?? plan;
        await this.writeOwned(paths.conf, renderRedisConf({ dir, host: this.ctx.host, port: data.port, plan: now }));
        await this.writeOwned(paths.acl, renderAclFile(data.admin_password, bindings));
      },
    });
    this.servers.set(instanceId, server);
    return server;
  }

  private async adminCommand(unit: UnitRecord, doing: string, ...args: string[]): Promise<void> {
    const server = this.servers.get(unit.instance_id);
    if (!server) throw new UnitError(`instance ${unit.instance_id} has no redis-server on this node`);
    let client;
    try {
      client = await server.admin();
      await client.command(...args);
    } catch (err) {
      throw new UnitError(`${doing} on redis-server port ${this.dataOf(unit).port}: ${(err as Error).message}`, { cause: err });
    } finally {
      client?.close();
    }
  }

  /** The lowest port of the range no unit holds and nothing else listens on. */
  private async pickPort(): Promise<number> {
    const taken = new Set<number>(this.reserved);
    for (const u of this.ctx.units()) taken.add(this.dataOf(u).port);
    for (const port of freePorts(this.ctx.config.port_range, taken)) {
      if (await portIsFree(this.ctx.host, port)) return port;
    }
    const { min, max } = this.ctx.config.port_range;
    throw new ServiceError('no_capacity', `no capacity: node ${this.ctx.nodeId} has no free port in ${min}-${max}`);
  }

  private dataOf(unit: UnitRecord): RedisUnitData {
    const parsed = redisUnitData.safeParse(unit.data);
    if (!parsed.success) throw new UnitError(`instance ${unit.instance_id}: its record in node.json is not a Redis unit's`);
    return parsed.data;
  }

  private unitDir(instanceId: string): string {
    return join(this.ctx.baseDir, instanceId);
  }

  private async writeOwned(file: string, text: string): Promise<void> {
    await writeFile(file, text, { mode: 0o640 });
    await this.own(file);
  }

  private async own(path: string): Promise<void> {
    if (this.owner) await chown(path, this.owner.uid, this.owner.gid);
  }

  /** The base directory exists, and the user servers run as can reach it (not read it). */
  private async prepareBaseDir(): Promise<void> {
    await mkdir(this.ctx.baseDir, { recursive: true, mode: 0o711 });
    if (!this.owner) return;
    const probe = spawnSync('setpriv', [`--reuid=${this.owner.name}`, `--regid=${this.owner.name}`, '--clear-groups', '--', 'test', '-x', this.ctx.baseDir]);
    if (probe.status !== 0) {
      throw new UnitError(`user ${this.owner.name} (redis.run_as) cannot reach base_dir ${this.ctx.baseDir}: give it and its parent directories search permission (o+x)`);
    }
  }
}

function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** A user's ids (getent: /etc/passwd or NSS); the node refuses to start when the configured one is missing. */
function lookupUser(name: string): Owner {
  const entry = spawnSync('getent', ['passwd', name], { encoding: 'utf8' }).stdout ?? '';
  const [user, , uid, gid] = entry.trim().split(':');
  if (user === name && uid !== undefined && gid !== undefined) return { name, uid: Number(uid), gid: Number(gid) };
  throw new UnitError(`redis.run_as: user ${name} does not exist on this machine (Debian's redis-server package creates "redis")`);
}

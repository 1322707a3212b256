// The RabbitMQ backend of the service node. The node owns one RabbitMQ server (a fixed node
// name, all its files under base_dir, its own ports, epmd and cookie); one instance is one
// vhost on it, named by the instance id, with the plan's limits as vhost limits
// (max-connections, max-queues) and a policy bounding every queue's bytes. Each binding is a
// user of its own with every permission on that vhost alone; unbind deletes it and closes its
// connections. The node administers through the management API as an admin only it knows.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { readJsonFile, writeJsonFile } from '../../json-file.ts';
import { ServiceError, UnitError } from '../../errors.ts';
import type { PlanLimits } from '../../node/config.ts';
import type { BackendContext, ServiceBackend, UnitRecord } from '../../node/types.ts';
import { ManagementApi } from './management-api.ts';
import {
  BINDING_TAGS,
  bindingCredentials,
  POLICY_NAME,
  rabbitNodeName,
  renderRabbitConf,
  serverPaths,
  strayObjects,
  vhostLimits,
  vhostPolicy,
  type DesiredUnit,
  type ServerPaths,
} from './rabbitmq-conf.ts';
import { RabbitProcess } from './rabbitmq-process.ts';

const adminFile = z.object({ username: z.string().min(1), password: z.string().min(16), cookie: z.string().min(20) }).strict();
type AdminSecrets = z.infer<typeof adminFile>;

const rabbitUnitData = z.object({ vhost: z.string().min(1) }).passthrough();

interface Owner {
  name: string;
  uid: number;
  gid: number;
}

export function createRabbitmqBackend(ctx: BackendContext): ServiceBackend {
  return new RabbitmqBackend(ctx);
}

class RabbitmqBackend implements ServiceBackend {
  private readonly paths: ServerPaths;
  private readonly owner: Owner | undefined;
  private secrets: AdminSecrets | undefined;
  private api: ManagementApi | undefined;
  private server: RabbitProcess | undefined;
  /** Vhosts and users being made right now, not in node.json yet: reconciliation leaves them alone. */
  private readonly pending = new Set<string>();

  constructor(private readonly ctx: BackendContext) {
    this.paths = serverPaths(ctx.baseDir);
    this.owner = process.getuid?.() === 0 ? lookupUser(ctx.config.rabbitmq.run_as) : undefined;
  }

  async restore(units: UnitRecord[]): Promise<void> {
    // The server is the node's, units or none: a node that cannot run it cannot offer anything.
    this.secrets = await this.loadSecrets();
    await this.prepareDirs();
    const { rabbitmq } = this.ctx.config;
    this.api = new ManagementApi({ host: this.ctx.host, port: rabbitmq.management_port, username: this.secrets.username, password: this.secrets.password });
    this.server = new RabbitProcess({
      paths: this.paths,
      nodeName: rabbitNodeName(this.ctx.nodeId),
      rabbitmq,
      runAs: this.owner?.name,
      api: this.api,
      log: this.ctx.log,
      prepare: () => this.writeServerFiles(),
      onReady: () => this.reconcile(),
    });
    await this.server.start();
    this.ctx.log.info({ node: rabbitNodeName(this.ctx.nodeId), amqp_port: rabbitmq.amqp_port, instances: units.length }, 'rabbitmq server ready');
  }

  async provision(instanceId: string, plan: PlanLimits): Promise<Record<string, unknown>> {
    const api = this.adminApi();
    const vhost = instanceId;
    this.pending.add(vhost);
    try {
      await api.putVhost(vhost);
      await applyPlan(api, vhost, plan);
    } catch (err) {
      await api.deleteVhost(vhost).catch(() => undefined);
      throw err;
    } finally {
      this.pending.delete(vhost);
    }
    return { vhost };
  }

  /** A plan change: the vhost limits and the queue policy are put again with the new plan's values. */
  async update(unit: UnitRecord, plan: PlanLimits): Promise<void> {
    await applyPlan(this.adminApi(), this.vhostOf(unit), plan);
  }

  async bind(unit: UnitRecord, bindingId: string): Promise<Record<string, unknown>> {
    const api = this.adminApi();
    // One user namespace serves every vhost: a binding id another unit already holds would
    // widen that user's reach, so it is refused, as is the admin's name.
    const holder = [...this.ctx.units()].find((u) => u.instance_id !== unit.instance_id && Object.hasOwn(u.bindings, bindingId));
    if (holder || bindingId === this.secrets?.username) throw new ServiceError('conflict', `binding_id ${bindingId} is already a user on this RabbitMQ node`);
    const vhost = this.vhostOf(unit);
    const password = randomBytes(24).toString('hex');
    this.pending.add(bindingId);
    try {
      await api.putUser(bindingId, password, BINDING_TAGS);
      await api.grantAll(vhost, bindingId);
    } catch (err) {
      await api.deleteUser(bindingId).catch(() => undefined);
      throw err;
    } finally {
      this.pending.delete(bindingId);
    }
    const { amqp_port, management_port } = this.ctx.config.rabbitmq;
    return { ...bindingCredentials({ host: this.ctx.host, amqpPort: amqp_port, managementPort: management_port, vhost, username: bindingId, password }) };
  }

  async unbind(unit: UnitRecord, bindingId: string): Promise<void> {
    const api = this.adminApi();
    try {
      // The user first, so no new connection authenticates; then the open ones are closed.
      await api.deleteUser(bindingId);
      await api.closeConnectionsOf(bindingId);
    } catch (err) {
      // A server that is down is reconciled with node.json when it is back: the user goes then.
      if (this.server?.running) throw err;
      this.ctx.log.warn({ instance_id: unit.instance_id, binding_id: bindingId }, 'rabbitmq-server down at unbind; its next start deletes the user');
    }
  }

  async unprovision(unit: UnitRecord): Promise<void> {
    const api = this.adminApi();
    try {
      // Deleting the vhost closes its connections and drops its queues and messages.
      await api.deleteVhost(this.vhostOf(unit));
      for (const bindingId of Object.keys(unit.bindings)) await api.deleteUser(bindingId);
    } catch (err) {
      if (this.server?.running) throw err;
      this.ctx.log.warn({ instance_id: unit.instance_id }, 'rabbitmq-server down at unprovision; its next start deletes the vhost');
    }
  }

  async stop(): Promise<void> {
    await this.server?.stop();
  }

  varz(): Record<string, unknown> {
    const { rabbitmq } = this.ctx.config;
    return {
      rabbitmq: {
        node: rabbitNodeName(this.ctx.nodeId),
        run_as: this.owner?.name ?? null,
        amqp_port: rabbitmq.amqp_port,
        management_port: rabbitmq.management_port,
        pid: this.server?.pid ?? null,
        running: this.server?.running ?? false,
        restarts: this.server?.restarts ?? 0,
      },
    };
  }

  /**
   * node.json is the truth: every unit's vhost, limits and policy and every binding's user
   * are (re)applied, and whatever else the server holds goes. Runs after every start, so a
   * unit or binding removed while the server was down is gone from it too.
   */
  private async reconcile(): Promise<void> {
    const api = this.adminApi();
    const desired: DesiredUnit[] = [];
    for (const unit of this.ctx.units()) {
      const plan = this.ctx.config.plans[unit.plan];
      if (!plan) {
        this.ctx.log.error({ instance_id: unit.instance_id, plan: unit.plan }, 'its plan is no longer in the config; keeping the vhost with its old limits');
      }
      desired.push({ vhost: this.vhostOf(unit), plan, users: Object.entries(unit.bindings).map(([username, b]) => ({ username, password: String(b.credentials.password) })) });
    }
    const stray = strayObjects(desired, { vhosts: await api.vhostNames(), users: await api.userNames() }, { admin: this.adminName(), pending: this.pending });
    for (const vhost of stray.vhosts) await api.deleteVhost(vhost);
    for (const user of stray.users) {
      await api.deleteUser(user);
      await api.closeConnectionsOf(user);
    }
    for (const u of desired) {
      await api.putVhost(u.vhost);
      if (u.plan) await applyPlan(api, u.vhost, u.plan);
      for (const b of u.users) {
        await api.putUser(b.username, b.password, BINDING_TAGS);
        await api.grantAll(u.vhost, b.username);
      }
    }
    if (stray.vhosts.length + stray.users.length > 0) this.ctx.log.warn({ removed: stray }, 'rabbitmq: removed what node.json does not hold');
  }

  private adminApi(): ManagementApi {
    if (!this.api) throw new UnitError('the RabbitMQ server has not been started');
    return this.api;
  }

  private adminName(): string {
    return this.secrets!.username;
  }

  private vhostOf(unit: UnitRecord): string {
    const parsed = rabbitUnitData.safeParse(unit.data);
    if (!parsed.success) throw new UnitError(`instance ${unit.instance_id}: its record in node.json is not a RabbitMQ unit's`);
    return parsed.data.vhost;
  }

  /** The admin and the Erlang cookie, made once and kept (0600, the node's own file). */
  private async loadSecrets(): Promise<AdminSecrets> {
    const existing = await readJsonFile(this.paths.admin, adminFile.nullable(), null);
    if (existing) return existing;
    const made: AdminSecrets = {
      username: `ingot-admin-${randomBytes(4).toString('hex')}`,
      password: randomBytes(24).toString('hex'),
      cookie: randomBytes(20).toString('hex').toUpperCase(),
    };
    await mkdir(this.ctx.baseDir, { recursive: true, mode: 0o711 });
    await writeJsonFile(this.paths.admin, made);
    return made;
  }

  /** The server's directory, its user's alone; the base directory reachable (not readable) by that user. */
  private async prepareDirs(): Promise<void> {
    const p = this.paths;
    await mkdir(this.ctx.baseDir, { recursive: true, mode: 0o711 });
    if (/\s/.test(p.dir)) throw new UnitError(`base_dir ${this.ctx.baseDir} must not contain spaces (Debian's rabbitmq-server script splits its arguments on them)`);
    for (const dir of [p.dir, p.home, p.mnesia, p.log]) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await this.own(dir);
    }
    if (this.owner) {
      const probe = spawnSync('setpriv', [`--reuid=${this.owner.name}`, `--regid=${this.owner.name}`, '--clear-groups', '--', 'test', '-x', p.dir]);
      if (probe.status !== 0) {
        throw new UnitError(`user ${this.owner.name} (rabbitmq.run_as) cannot reach base_dir ${this.ctx.baseDir}: give it and its parent directories search permission (o+x)`);
      }
    }
  }

  private async writeServerFiles(): Promise<void> {
    const p = this.paths;
    const s = this.secrets!;
    await this.writeOwned(p.conf, renderRabbitConf({ host: this.ctx.host, rabbitmq: this.ctx.config.rabbitmq, admin: s }), 0o600);
    await this.writeOwned(p.envConf, '# The Ingot service node sets the whole environment; this file keeps /etc/rabbitmq/rabbitmq-env.conf out.\n', 0o600);
    await this.writeOwned(p.enabledPlugins, '[rabbitmq_management].\n', 0o600);
    // Erlang refuses a cookie file others can read.
    await chmod(p.cookie, 0o600).catch(() => undefined);
    await this.writeOwned(p.cookie, s.cookie, 0o400);
  }

  private async writeOwned(file: string, text: string, mode: number): Promise<void> {
    await writeFile(file, text, { mode });
    await chmod(file, mode);
    await this.own(file);
  }

  private async own(path: string): Promise<void> {
    if (this.owner) await chown(path, this.owner.uid, this.owner.gid);
  }
}

/** The plan's limits on the vhost: connections and queues as vhost limits, bytes per queue as a policy. */
async function applyPlan(api: ManagementApi, vhost: string, plan: PlanLimits): Promise<void> {
  for (const [name, value] of Object.entries(vhostLimits(plan))) await api.putVhostLimit(vhost, name, value);
  await api.putPolicy(vhost, POLICY_NAME, vhostPolicy(plan));
}

/** A user's ids (getent: /etc/passwd or NSS); the node refuses to start when the configured one is missing. */
function lookupUser(name: string): Owner {
  const entry = spawnSync('getent', ['passwd', name], { encoding: 'utf8' }).stdout ?? '';
  const [user, , uid, gid] = entry.trim().split(':');
  if (user === name && uid !== undefined && gid !== undefined) return { name, uid: Number(uid), gid: Number(gid) };
  throw new UnitError(`rabbitmq.run_as: user ${name} does not exist on this machine (Debian's rabbitmq-server package creates "rabbitmq")`);
}

// What the node's RabbitMQ server and its units look like, as functions of data: the server's
// files and environment (one fixed node name, every path under base_dir, its own ports,
// epmd and cookie), a unit's vhost limits and policy from its plan, a binding's credentials,
// and the reconciliation of what the server holds with what node.json says it should.
import { join } from 'node:path';
import type { NodeConfig, PlanLimits } from '../../node/config.ts';

export type RabbitmqConfig = NodeConfig['rabbitmq'];

/** Queues a unit may hold when its plan does not say. */
export const DEFAULT_MAX_QUEUES = 100;
/** The policy every unit's vhost carries; an app (no policymaker tag) cannot override it. */
export const POLICY_NAME = 'ingot-plan-limits';
/** What a binding's user may do in the management UI/API: its own vhost's objects, nothing else. */
export const BINDING_TAGS = 'management';

export interface ServerPaths {
  /** Everything the server owns (its user's, mode 0700). */
  dir: string;
  home: string;
  cookie: string;
  conf: string;
  envConf: string;
  advancedConf: string;
  enabledPlugins: string;
  mnesia: string;
  log: string;
  pid: string;
  /** The admin user's credentials: the node's own file (0600), out of the server user's reach. */
  admin: string;
}

export function serverPaths(baseDir: string): ServerPaths {
  const dir = join(baseDir, 'rabbitmq');
  const home = join(dir, 'home');
  return {
    dir,
    home,
    cookie: join(home, '.erlang.cookie'),
    conf: join(dir, 'rabbitmq.conf'),
    envConf: join(dir, 'rabbitmq-env.conf'),
    advancedConf: join(dir, 'advanced.config'),
    enabledPlugins: join(dir, 'enabled_plugins'),
    mnesia: join(dir, 'mnesia'),
    log: join(dir, 'log'),
    pid: join(dir, 'rabbitmq.pid'),
    admin: join(baseDir, 'rabbitmq-admin.json'),
  };
}

/**
 * Fixed for the life of the node: the Mnesia directory is named after it, so a restarted
 * node finds its vhosts, users, durable queues and persistent messages again.
 */
export function rabbitNodeName(nodeId: string): string {
  return `ingot-${nodeId}@localhost`;
}

export interface ServerConfInput {
  host: string;
  rabbitmq: RabbitmqConfig;
  admin: { username: string; password: string };
}

export function renderRabbitConf(c: ServerConfInput): string {
  return [
    '# Rendered by the Ingot service node; rewritten at every start.',
    `listeners.tcp.1 = ${c.host}:${c.rabbitmq.amqp_port}`,
    `management.tcp.ip = ${c.host}`,
    `management.tcp.port = ${c.rabbitmq.management_port}`,
    // The admin exists from the first boot of an empty database (it replaces `guest`); later
    // boots find it in Mnesia and ignore these lines.
    `default_user = ${c.admin.username}`,
    `default_pass = ${c.admin.password}`,
    'default_user_tags.administrator = true',
    'default_permissions.configure = .*',
    'default_permissions.read = .*',
    'default_permissions.write = .*',
    'log.console = false',
    'log.file.level = info',
    '',
  ].join('\n');
}

/** The server's environment, complete: nothing is inherited from the node's (no NOTIFY_SOCKET, no stray RABBITMQ_*). */
export function serverEnv(p: ServerPaths, nodeName: string, r: RabbitmqConfig): Record<string, string> {
  return {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    // Erlang reads its cookie from $HOME/.erlang.cookie (RABBITMQ_ERLANG_COOKIE is deprecated).
    HOME: p.home,
    RABBITMQ_NODENAME: nodeName,
    // Our own (empty) env file instead of /etc/rabbitmq/rabbitmq-env.conf, which belongs to Debian's service.
    RABBITMQ_CONF_ENV_FILE: p.envConf,
    RABBITMQ_CONFIG_FILE: p.conf,
    RABBITMQ_ADVANCED_CONFIG_FILE: p.advancedConf,
    RABBITMQ_ENABLED_PLUGINS_FILE: p.enabledPlugins,
    RABBITMQ_MNESIA_BASE: p.mnesia,
    RABBITMQ_LOG_BASE: p.log,
    RABBITMQ_PID_FILE: p.pid,
    RABBITMQ_DIST_PORT: String(r.dist_port),
    ERL_EPMD_PORT: String(r.epmd_port),
    // The node runs epmd itself; distribution listens on loopback only.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}',
  };
}

/** Arguments of the start script, passed through to beam.smp: they put base_dir on its command line, so the node and scripts/sweep.sh recognise it. */
export function serverArgs(p: ServerPaths): string[] {
  return ['-ingot_server_dir', p.dir];
}

export interface VhostLimits {
  'max-connections': number;
  'max-queues': number;
}

export function vhostLimits(plan: PlanLimits): VhostLimits {
  return { 'max-connections': plan.max_clients, 'max-queues': plan.max_queues ?? DEFAULT_MAX_QUEUES };
}

/**
 * The plan's memory as a bound on every queue of the unit: a queue holds at most memory_mb of
 * message bodies, and a publish past it is refused (nacked to confirm-mode publishers), never
 * silently dropping old messages.
 */
export function vhostPolicy(plan: PlanLimits): { pattern: string; 'apply-to': string; priority: number; definition: Record<string, unknown> } {
  return {
    pattern: '.*',
    'apply-to': 'queues',
    priority: 0,
    definition: { 'max-length-bytes': plan.memory_mb * 1024 * 1024, overflow: 'reject-publish' },
  };
}

export interface RabbitCredentials {
  host: string;
  port: number;
  vhost: string;
  username: string;
  password: string;
  uri: string;
  http_api_uri: string;
}

export function bindingCredentials(c: { host: string; amqpPort: number; managementPort: number; vhost: string; username: string; password: string }): RabbitCredentials {
  const user = `${encodeURIComponent(c.username)}:${encodeURIComponent(c.password)}`;
  return {
    host: c.host,
    port: c.amqpPort,
    vhost: c.vhost,
    username: c.username,
    password: c.password,
    // The vhost is the URI's path, percent-encoded whole (a "/" in it would otherwise split it).
    uri: `amqp://${user}@${hostPart(c.host)}:${c.amqpPort}/${encodeURIComponent(c.vhost)}`,
    http_api_uri: `http://${user}@${hostPart(c.host)}:${c.managementPort}/api/`,
  };
}

function hostPart(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export interface DesiredUnit {
  vhost: string;
  /** Absent when the unit's plan has left the config: the vhost keeps the limits it has. */
  plan: PlanLimits | undefined;
  users: Array<{ username: string; password: string }>;
}

export interface ServerContents {
  vhosts: string[];
  users: string[];
}

/**
 * What must go from the server: every vhost and user node.json does not know (a unit or
 * binding removed while the server was down, or half made when the node died), except the
 * admin, the default vhost and whatever is being made right now.
 */
export function strayObjects(desired: DesiredUnit[], actual: ServerContents, keep: { admin: string; pending: ReadonlySet<string> }): ServerContents {
  const vhosts = new Set(desired.map((u) => u.vhost));
  const users = new Set(desired.flatMap((u) => u.users.map((b) => b.username)));
  return {
    vhosts: actual.vhosts.filter((v) => v !== '/' && !vhosts.has(v) && !keep.pending.has(v)),
    users: actual.users.filter((u) => u !== keep.admin && !users.has(u) && !keep.pending.has(u)),
  };
}

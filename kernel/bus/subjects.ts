// The one catalogue of kernel subjects (DESIGN.md §3). Each entry names its subject (or
// subject builder), its zod schema and, by inference, its type. Handlers receive messages
// parsed against these schemas; nothing else in the kernel parses bus JSON.
//
// Wire names stay snake_case as they are on the wire. New fields are optional; objects are
// passthrough so a newer sender's extra fields reach an older receiver untouched.
import { z } from 'zod';

const id = z.string().min(1).max(256);
const port = z.number().int().min(1).max(65535);
const hostAddr = z.string().min(1).max(255);
const uri = z.string().min(1).max(2048);
const nonNegInt = z.number().int().min(0);

// ---- router ---------------------------------------------------------------------------

export const routerRegister = z
  .object({
    host: hostAddr,
    port,
    uris: z.array(uri).min(1).max(1000),
    app_id: id.optional(),
    instance_id: id.optional(),
    private_instance_id: id.optional(),
    index: nonNegInt.optional(),
    tags: z.record(z.string()).optional(),
    stale_threshold_in_seconds: z.number().positive().optional(),
  })
  .passthrough();
export type RouterRegister = z.infer<typeof routerRegister>;

export const routerStart = z
  .object({
    id,
    hosts: z.array(hostAddr),
    minimum_register_interval_s: z.number().positive(),
    prune_threshold_s: z.number().positive().optional(),
  })
  .passthrough();
export type RouterStart = z.infer<typeof routerStart>;

export const routerGreet = z.object({}).passthrough();

// ---- DEA ------------------------------------------------------------------------------

export const deaDiscover = z
  .object({
    app_id: id,
    droplet_sha: z.string().optional(),
    memory_mb: nonNegInt,
    disk_mb: nonNegInt,
    stack: z.string().min(1),
  })
  .passthrough();
export type DeaDiscover = z.infer<typeof deaDiscover>;

export const deaDiscoverReply = z.object({ dea_id: id, host: hostAddr }).passthrough();
export type DeaDiscoverReply = z.infer<typeof deaDiscoverReply>;

export const deaAdvertise = z
  .object({
    dea_id: id,
    stacks: z.array(z.string()),
    available_memory_mb: z.number(),
    available_disk_mb: z.number(),
    app_counts: z.record(nonNegInt),
    draining: z.boolean().optional(),
  })
  .passthrough();
export type DeaAdvertise = z.infer<typeof deaAdvertise>;

const healthCheck = z
  .object({
    type: z.enum(['port', 'http', 'process']),
    endpoint: z.string().optional(),
    timeout_s: z.number().positive().optional(),
  })
  .passthrough();

export const serviceCredentials = z
  .object({
    name: z.string(),
    label: z.string(),
    plan: z.string().optional(),
    tags: z.array(z.string()).optional(),
    credentials: z.record(z.unknown()),
    /** CF's VCAP_SERVICES fields beyond those the DEA needs; optional. */
    instance_guid: z.string().optional(),
    instance_name: z.string().optional(),
    binding_guid: z.string().optional(),
    binding_name: z.string().nullable().optional(),
    syslog_drain_url: z.string().nullable().optional(),
    volume_mounts: z.array(z.unknown()).optional(),
  })
  .passthrough();
export type ServiceCredentials = z.infer<typeof serviceCredentials>;

export const deaStart = z
  .object({
    app_id: id,
    name: z.string().min(1),
    index: nonNegInt,
    version: z.string().min(1),
    instance_id: id.optional(),
    droplet_uri: uri,
    droplet_sha256: z.string().regex(/^[0-9a-f]{64}$/),
    uris: z.array(uri),
    limits: z.object({ memory_mb: z.number().int().positive(), disk_mb: z.number().int().positive(), pids: z.number().int().positive().optional(), log_rate_lines_per_s: z.number().int().positive().optional() }).passthrough(),
    env: z.record(z.string()),
    services: z.array(serviceCredentials),
    health_check: healthCheck.optional(),
    start_command: z.string().optional(),
    stack: z.string().optional(),
  })
  .passthrough();
export type DeaStart = z.infer<typeof deaStart>;

const instanceState = z.enum(['STARTING', 'RUNNING', 'CRASHED', 'STOPPING', 'STOPPED', 'EVACUATING']);
export type InstanceState = z.infer<typeof instanceState>;

export const deaStop = z
  .object({
    app_id: id,
    version: z.string().optional(),
    instance_ids: z.array(id).optional(),
    indices: z.array(nonNegInt).optional(),
    states: z.array(instanceState).optional(),
  })
  .passthrough();
export type DeaStop = z.infer<typeof deaStop>;

export const deaUpdate = z.object({ app_id: id, uris: z.array(uri) }).passthrough();
export type DeaUpdate = z.infer<typeof deaUpdate>;

export const deaFindDroplet = z
  .object({
    app_id: id,
    version: z.string().optional(),
    instance_ids: z.array(id).optional(),
    indices: z.array(nonNegInt).optional(),
    states: z.array(instanceState).optional(),
    include_stats: z.boolean().optional(),
  })
  .passthrough();
export type DeaFindDroplet = z.infer<typeof deaFindDroplet>;

export const deaFindDropletReply = z
  .object({
    dea_id: id,
    app_id: id,
    version: z.string(),
    instance_id: id,
    index: nonNegInt,
    state: instanceState,
    state_timestamp: z.number(),
    host: hostAddr.optional(),
    port: port.optional(),
    stats: z
      .object({
        uptime_s: z.number(),
        cpu_percent: z.number(),
        memory_bytes: z.number(),
        memory_quota_bytes: z.number(),
        disk_bytes: z.number(),
        disk_quota_bytes: z.number(),
      })
      .passthrough()
      .optional(),
  })
  .passthrough();
export type DeaFindDropletReply = z.infer<typeof deaFindDropletReply>;

export const deaHeartbeat = z
  .object({
    dea_id: id,
    instances: z.array(
      z
        .object({
          app_id: id,
          version: z.string(),
          instance_id: id,
          index: nonNegInt,
          state: instanceState,
          state_timestamp: z.number(),
        })
        .passthrough(),
    ),
  })
  .passthrough();
export type DeaHeartbeat = z.infer<typeof deaHeartbeat>;

export const dropletExited = z
  .object({
    app_id: id,
    version: z.string(),
    instance_id: id,
    index: nonNegInt,
    reason: z.enum(['CRASHED', 'STOPPED', 'DEA_SHUTDOWN', 'DEA_EVACUATION']),
    exit_status: z.number().int().optional(),
    exit_description: z.string().optional(),
    crash_timestamp: z.number().optional(),
  })
  .passthrough();
export type DropletExited = z.infer<typeof dropletExited>;

export const dropletUpdated = z.object({ app_id: id }).passthrough();
export type DropletUpdated = z.infer<typeof dropletUpdated>;

// ---- staging --------------------------------------------------------------------------

export const stagingRequest = z
  .object({
    app_id: id,
    build_id: id,
    package_uri: uri,
    droplet_upload_uri: uri,
    buildpack: z.string().optional(),
    buildpack_cache_uri: uri.optional(),
    env: z.record(z.string()),
    limits: z.object({ memory_mb: z.number().int().positive(), disk_mb: z.number().int().positive() }).passthrough(),
    stack: z.string().optional(),
    /** The user's start command (the process's `command`), when set; it wins over the buildpack's. */
    command: z.string().min(1).max(4096).optional(),
    /** sha256 of the package behind package_uri, so the stager can verify its download. */
    package_sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  })
  .passthrough();
export type StagingRequest = z.infer<typeof stagingRequest>;

export const stagingReply = z
  .object({
    build_id: id,
    state: z.enum(['STAGED', 'FAILED']),
    error: z.string().optional(),
    droplet_sha256: z.string().optional(),
    detected_buildpack: z.string().optional(),
    start_command: z.string().optional(),
  })
  .passthrough();
export type StagingReply = z.infer<typeof stagingReply>;

// ---- health manager -------------------------------------------------------------------

export const healthmanagerStatus = z
  .object({ app_id: id, version: z.string().optional(), state: z.enum(['CRASHED', 'FLAPPING']).optional() })
  .passthrough();
export type HealthmanagerStatus = z.infer<typeof healthmanagerStatus>;

export const healthmanagerHealth = z
  .object({ droplets: z.array(z.object({ app_id: id, version: z.string().optional() }).passthrough()) })
  .passthrough();
export type HealthmanagerHealth = z.infer<typeof healthmanagerHealth>;

/** The answer to healthmanager.status: the app's crashed instances and flapping indices (times in unix seconds). */
export const healthmanagerStatusReply = z
  .object({
    app_id: id,
    version: z.string().optional(),
    crashed: z.array(z.object({ instance_id: id, index: nonNegInt, version: z.string(), since: z.number() }).passthrough()),
    flapping: z.array(
      z
        .object({ index: nonNegInt, version: z.string(), crash_count: nonNegInt, since: z.number(), next_restart_at: z.number().optional() })
        .passthrough(),
    ),
  })
  .passthrough();
export type HealthmanagerStatusReply = z.infer<typeof healthmanagerStatusReply>;

/** The answer to healthmanager.health: per app asked, desired and running counts. */
export const healthmanagerHealthReply = z
  .object({
    droplets: z.array(
      z
        .object({ app_id: id, version: z.string().optional(), desired: nonNegInt, running: nonNegInt, crashed: nonNegInt, flapping: z.boolean() })
        .passthrough(),
    ),
  })
  .passthrough();
export type HealthmanagerHealthReply = z.infer<typeof healthmanagerHealthReply>;

export const hmRequest = z
  .object({
    op: z.enum(['START', 'STOP']),
    app_id: id,
    version: z.string(),
    indices: z.array(nonNegInt).optional(),
    instance_ids: z.array(id).optional(),
    reason: z.string(),
  })
  .passthrough();
export type HmRequest = z.infer<typeof hmRequest>;

/**
 * A health manager telling its peers it is alive, published every election interval. The
 * HMs elect one leader among themselves (kernel/health-manager/election.ts): only it sends
 * on `cloudcontrollers.hm.requests`. `started_at` (unix seconds) is since when the HM has
 * watched without a gap; `leader` is whether it sends now.
 */
export const healthmanagerPresence = z
  .object({ id, started_at: z.number().nonnegative(), leader: z.boolean() })
  .passthrough();
export type HealthmanagerPresence = z.infer<typeof healthmanagerPresence>;

// ---- logs -----------------------------------------------------------------------------

export const logLine = z
  .object({
    app_id: id,
    source: z.enum(['APP', 'STG', 'RTR', 'API', 'HM']),
    index: nonNegInt.optional(),
    stream: z.enum(['out', 'err']),
    timestamp: z.number(),
    line: z.string().max(64 * 1024),
  })
  .passthrough();
export type LogLine = z.infer<typeof logLine>;

// ---- services -------------------------------------------------------------------------

export const serviceNodeAnnounce = z
  .object({
    node_id: id,
    plans: z.array(z.string()),
    available_capacity: z.number(),
    /** How many more instances of each plan fit on the node (its free units over the plan's units). */
    plan_capacity: z.record(nonNegInt).optional(),
    /** The node's announce interval: a gateway forgets a node silent for 3 of them. */
    interval_s: z.number().positive().optional(),
  })
  .passthrough();
export type ServiceNodeAnnounce = z.infer<typeof serviceNodeAnnounce>;

export const serviceGatewayAnnounce = z
  .object({ name: z.string().min(1), label: z.string().min(1), url: uri })
  .passthrough();
export type ServiceGatewayAnnounce = z.infer<typeof serviceGatewayAnnounce>;

export const serviceNodeRequest = z
  .object({
    instance_id: id,
    binding_id: id.optional(),
    plan: z.string().optional(),
    parameters: z.record(z.unknown()).optional(),
    /** A digest of the broker request (OSB: the same id with other details is a conflict); the node keeps it. */
    fingerprint: z.string().max(128).optional(),
  })
  .passthrough();
export type ServiceNodeRequest = z.infer<typeof serviceNodeRequest>;

/** Why a node refused: the gateway maps these to OSB statuses (409, 410, 422). */
export const serviceNodeErrorCode = z.enum(['conflict', 'not_found', 'no_capacity', 'invalid', 'failed']);
export type ServiceNodeErrorCode = z.infer<typeof serviceNodeErrorCode>;

export const serviceNodeReply = z
  .object({
    ok: z.boolean(),
    credentials: z.record(z.unknown()).optional(),
    error: z.string().optional(),
    code: serviceNodeErrorCode.optional(),
    node_id: id.optional(),
    /** The unit or binding already existed with the same fingerprint (OSB: 200, not 201). */
    existed: z.boolean().optional(),
  })
  .passthrough();
export type ServiceNodeReply = z.infer<typeof serviceNodeReply>;

/** A gateway asking every node of a service at once (discover: announce now; find: who holds it). */
export const serviceNodeDiscover = z.object({}).passthrough();

export const serviceNodeFind = z.object({ instance_id: id }).passthrough();
export type ServiceNodeFind = z.infer<typeof serviceNodeFind>;

/** Only the node holding the instance answers. */
export const serviceNodeFindReply = z
  .object({ node_id: id, instance_id: id, plan: z.string(), fingerprint: z.string().optional() })
  .passthrough();
export type ServiceNodeFindReply = z.infer<typeof serviceNodeFindReply>;

// ---- components -----------------------------------------------------------------------

export const componentAnnounce = z
  .object({
    type: z.string().min(1),
    index: nonNegInt,
    uuid: id,
    host: z.string(),
    credentials: z.tuple([z.string(), z.string()]),
    start: z.string(),
    uptime: z.string(),
  })
  .passthrough();
export type ComponentAnnounce = z.infer<typeof componentAnnounce>;

export const componentDiscover = z.object({ type: z.string().optional() }).passthrough();

/** Token for a subject segment taken from data (app ids, labels): never a wildcard or a dot. */
function token(name: string, value: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(value)) throw new TypeError(`${name} "${value}" is not a valid subject token`);
  return value;
}

// ---- the catalogue --------------------------------------------------------------------

/** A concrete subject (or, for subscriptions, a wildcard pattern) and the schema of its messages. */
export interface Topic<S extends z.ZodTypeAny = z.ZodTypeAny> {
  readonly subject: string;
  readonly schema: S;
}

/** A subject family: call it for one concrete subject; as a Topic it is the wildcard pattern. */
export type TopicFamily<S extends z.ZodTypeAny, A extends string[]> = Topic<S> & ((...args: A) => Topic<S>);

function topic<S extends z.ZodTypeAny>(subject: string, schema: S): Topic<S> {
  return { subject, schema };
}

function family<S extends z.ZodTypeAny, A extends string[]>(
  pattern: string,
  schema: S,
  build: (...args: A) => string,
): TopicFamily<S, A> {
  const fn = (...args: A): Topic<S> => ({ subject: build(...args), schema });
  return Object.assign(fn, { subject: pattern, schema });
}

export const subjects = {
  routerRegister: topic('router.register', routerRegister),
  routerUnregister: topic('router.unregister', routerRegister),
  routerStart: topic('router.start', routerStart),
  routerGreet: topic('router.greet', routerGreet),
  deaDiscover: topic('dea.discover', deaDiscover),
  deaAdvertise: topic('dea.advertise', deaAdvertise),
  deaStart: family('dea.*.start', deaStart, (deaId: string) => `dea.${token('dea_id', deaId)}.start`),
  deaStop: topic('dea.stop', deaStop),
  deaUpdate: topic('dea.update', deaUpdate),
  deaFindDroplet: topic('dea.find.droplet', deaFindDroplet),
  deaHeartbeat: topic('dea.heartbeat', deaHeartbeat),
  dropletExited: topic('droplet.exited', dropletExited),
  dropletUpdated: topic('droplet.updated', dropletUpdated),
  stagingRequest: topic('staging.request', stagingRequest),
  healthmanagerStatus: topic('healthmanager.status', healthmanagerStatus),
  healthmanagerHealth: topic('healthmanager.health', healthmanagerHealth),
  hmRequests: topic('cloudcontrollers.hm.requests', hmRequest),
  healthmanagerPresence: topic('healthmanager.presence', healthmanagerPresence),
  logs: family('logs.*', logLine, (appId: string) => `logs.${token('app_id', appId)}`),
  serviceNodeAnnounce: family('services.*.announce', serviceNodeAnnounce, (label: string) => `services.${token('label', label)}.announce`),
  serviceGatewayAnnounce: topic('services.gateway.announce', serviceGatewayAnnounce),
  serviceNodeDiscover: family('services.*.discover', serviceNodeDiscover, (label: string) => `services.${token('label', label)}.discover`),
  serviceNodeFind: family('services.*.find', serviceNodeFind, (label: string) => `services.${token('label', label)}.find`),
  serviceNode: family(
    'services.*.*.*',
    serviceNodeRequest,
    (label: string, op: ServiceNodeOp, nodeId: string) => `services.${token('label', label)}.${op}.${token('node_id', nodeId)}`,
  ),
  componentAnnounce: topic('vcap.component.announce', componentAnnounce),
  componentDiscover: topic('vcap.component.discover', componentDiscover),
} as const;

/** Replies are validated too: the schema a request's answer must satisfy. */
export const replies = {
  deaDiscover: deaDiscoverReply,
  deaFindDroplet: deaFindDropletReply,
  routerGreet: routerStart,
  componentDiscover: componentAnnounce,
  stagingRequest: stagingReply,
  serviceNode: serviceNodeReply,
  serviceNodeFind: serviceNodeFindReply,
  healthmanagerStatus: healthmanagerStatusReply,
  healthmanagerHealth: healthmanagerHealthReply,
} as const;

/** Service node operations: `services.<label>.<op>.<node_id>`. */
export type ServiceNodeOp = 'provision' | 'bind' | 'unbind' | 'unprovision' | 'update';

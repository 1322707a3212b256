// The mbus protocol between director, health monitor and agent (DESIGN §5): the one catalogue
// of subjects and message shapes. Everything the agent receives is parsed here, once; every
// message it sends is validated against the same schemas before it leaves.
import { z } from 'zod';

// ---- subjects --------------------------------------------------------------------------------

export const subjects = {
  /** director → agent, requests. */
  agent: (agentId: string) => `agent.${agentId}`,
  heartbeat: (agentId: string) => `hm.agent.heartbeat.${agentId}`,
  alert: (agentId: string) => `hm.agent.alert.${agentId}`,
  /** Replies addressed to one director about one agent (BOSH's `director.<id>.<agent_id>.<uuid>`). */
  directorReply: (directorId: string, agentId: string, uuid: string) => `director.${directorId}.${agentId}.${uuid}`,
  /** What an agent may publish replies to: any director, only its own agent id. */
  directorRepliesFor: (agentId: string) => `director.*.${agentId}.>`,
} as const;

const agentIdPattern = /^[A-Za-z0-9_-]+$/;
export const AgentId = z.string().regex(agentIdPattern, 'an agent id is letters, digits, - and _ (no dots or wildcards)');

// ---- settings (the file the CPI writes; orchestrator/cpi/local/agent-settings.ts) -------------

export const AgentTuning = z
  .object({
    /** Where jobs, packages and logs live; /var/vcap in a VM. */
    root: z.string().default('/var/vcap'),
    heartbeat_interval_ms: z.number().int().positive().default(5000),
    restart_base_ms: z.number().int().positive().default(1000),
    restart_max_ms: z.number().int().positive().default(30_000),
    /** This many crashes within failing_window_ms and the job reports `failing`. */
    failing_crashes: z.number().int().positive().default(5),
    failing_window_ms: z.number().int().positive().default(60_000),
    /** SIGTERM, then SIGKILL after this grace (or a process's longer stop_timeout_s, plus a margin). */
    stop_grace_ms: z.number().int().positive().default(10_000),
    /** Finished tasks are forgotten after this long. */
    task_retention_ms: z.number().int().positive().default(3_600_000),
  })
  .strict();
export type AgentTuning = z.output<typeof AgentTuning>;

export const AgentSettingsFile = z.object({
  agent_id: AgentId,
  mbus: z.object({ url: z.string().min(1), user: z.string().optional(), password: z.string().optional() }),
  /** May be empty (the CPI had none); apply and fetch_logs then refuse with a sentence. */
  blobstore: z.object({ url: z.string() }),
  networks: z.record(z.unknown()).default({}),
  disks: z.object({ persistent: z.record(z.string()).default({}) }).default({ persistent: {} }),
  vm: z.object({ name: z.string() }).optional(),
  env: z.record(z.unknown()).default({}),
  /** Ingot's own addition: tunables (tests shorten every interval). */
  agent: AgentTuning.default({}),
});
export type AgentSettingsFile = z.output<typeof AgentSettingsFile>;

// ---- requests and replies ----------------------------------------------------------------------

const replySubjectPattern = /^[^\s*>]+$/;

export const AgentRequest = z.object({
  method: z.string().min(1),
  arguments: z.array(z.unknown()).default([]),
  /** Where to answer; otherwise the NATS reply subject of the request. */
  reply_to: z.string().regex(replySubjectPattern, 'a reply subject has no spaces or wildcards').optional(),
});
export type AgentRequest = z.output<typeof AgentRequest>;

export const TaskRunning = z.object({ agent_id: z.string().optional(), agent_task_id: z.string(), state: z.literal('running') });
export type TaskRunning = z.output<typeof TaskRunning>;

export const AgentReply = z.union([
  z.object({ value: z.unknown() }).strict(),
  z.object({ exception: z.object({ message: z.string() }) }).strict(),
]);
export type AgentReply = z.output<typeof AgentReply>;

const Sha256 = z.string().regex(/^(sha256:)?[0-9a-f]{64}$/, 'a sha256 digest is 64 hex digits, optionally prefixed "sha256:"');
const BlobName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a name is letters, digits, ".", "_" and "-"');

export const BlobRef = z.object({
  name: BlobName,
  version: z.string().optional(),
  blobstore_id: z.string().min(1),
  sha256: Sha256,
});
export type BlobRef = z.output<typeof BlobRef>;

/** The apply spec: what this instance runs. Packages and rendered jobs are tarballs in the blobstore. */
export const ApplySpec = z.object({
  deployment: z.string().default(''),
  /** The instance group's name (BOSH's `job.name`). */
  name: z.string().min(1),
  index: z.number().int().nonnegative().default(0),
  id: z.string().optional(),
  jobs: z.array(BlobRef.extend({ properties: z.record(z.unknown()).default({}) })).default([]),
  packages: z.array(BlobRef).default([]),
});
export type ApplySpec = z.output<typeof ApplySpec>;

/** A process's own health endpoint, polled after each spawn until it answers 2xx. */
export const ReadinessCheck = z
  .object({
    http: z
      .string()
      .url()
      .refine((u) => /^https?:$/.test(new URL(u).protocol), 'an http:// or https:// URL'),
  })
  .strict();
export type ReadinessCheck = z.output<typeof ReadinessCheck>;

/** A job's spec.json inside its tarball: monit's role, as data. */
export const ProcessDef = z.object({
  name: BlobName,
  executable: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z.record(z.string()).default({}),
  /** Readiness: the process counts as running only once this answers 2xx (else as soon as it is spawned). */
  ready: ReadinessCheck.optional(),
  /**
   * How long the process itself may take to stop after SIGTERM (a component's drain bound), in
   * seconds: the agent waits at least this long, plus a margin, before SIGKILL.
   */
  stop_timeout_s: z
    .number({ invalid_type_error: 'expected a number of seconds' })
    .positive('expected a positive number of seconds')
    .finite()
    .optional(),
});
export type ProcessDef = z.output<typeof ProcessDef>;
/** An errand: a command run to its end on `run_errand` (BOSH's bin/run, as data). */
export const ErrandDef = z.object({
  executable: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z.record(z.string()).default({}),
});
export type ErrandDef = z.output<typeof ErrandDef>;
/** A job's drain command (BOSH's bin/drain, as data): prints an integer, as bin/drain does. */
export const JobSpecFile = z.object({ name: z.string().optional(), processes: z.array(ProcessDef).default([]), errand: ErrandDef.optional(), drain: ErrandDef.optional() });
export type JobSpecFile = z.output<typeof JobSpecFile>;

export const ScriptName = z.enum(['pre-start', 'post-start', 'post-deploy', 'pre-stop']);
export type ScriptName = z.output<typeof ScriptName>;

/** Each method's arguments (a positional list, as in BOSH). */
export const methodArguments = {
  ping: z.tuple([]),
  get_state: z.tuple([]).rest(z.unknown()),
  apply: z.tuple([ApplySpec]),
  start: z.tuple([]),
  stop: z.tuple([]),
  drain: z.tuple([z.enum(['update', 'shutdown', 'status'])]).rest(z.unknown()),
  run_script: z.tuple([ScriptName]).rest(z.unknown()),
  get_task: z.tuple([z.string().min(1)]),
  cancel_task: z.tuple([z.string().min(1)]),
  fetch_logs: z.tuple([]).rest(z.unknown()),
  mount_disk: z.tuple([z.string().min(1)]),
  /** BOSH's list_disk: the cids of the settings' persistent disks mounted now. */
  list_disk: z.tuple([]).rest(z.unknown()),
  /** `[]`, or `[job]`: the job whose errand runs (else the first job that has one). */
  run_errand: z.union([z.tuple([]), z.tuple([BlobName])]),
} as const;
export type MethodName = keyof typeof methodArguments;
export type MethodArgs<M extends MethodName> = z.output<(typeof methodArguments)[M]>;

/** list_disk's reply: disk cids. */
export const DiskList = z.array(z.string());
export type DiskList = z.output<typeof DiskList>;

// ---- state, heartbeats, alerts ---------------------------------------------------------------

export const JobState = z.enum(['running', 'failing', 'stopped']);
export type JobState = z.output<typeof JobState>;
export const ProcessState = z.enum(['running', 'starting', 'failing', 'stopped']);
export type ProcessState = z.output<typeof ProcessState>;

export const Vitals = z.object({
  load: z.tuple([z.string(), z.string(), z.string()]),
  cpu: z.object({ user: z.string(), sys: z.string(), wait: z.string() }),
  mem: z.object({ percent: z.string(), kb: z.string() }),
  swap: z.object({ percent: z.string(), kb: z.string() }),
  disk: z.record(z.object({ percent: z.string() })),
  uptime: z.object({ secs: z.number() }),
});
export type Vitals = z.output<typeof Vitals>;

export const ProcessStatus = z.object({
  name: z.string(),
  job: z.string(),
  state: ProcessState,
  pid: z.number().int().optional(),
  restarts: z.number().int().nonnegative(),
});
export type ProcessStatus = z.output<typeof ProcessStatus>;

export const AgentState = z.object({
  agent_id: z.string(),
  deployment: z.string(),
  job: z.object({ name: z.string() }).nullable(),
  index: z.number().int().nullable(),
  job_state: JobState,
  processes: z.array(ProcessStatus),
  vitals: Vitals,
  persistent_disk: z.record(z.string()),
});
export type AgentState = z.output<typeof AgentState>;

export const Heartbeat = z.object({
  agent_id: z.string(),
  deployment: z.string(),
  job: z.string().nullable(),
  index: z.number().int().nullable(),
  job_state: JobState,
  vitals: Vitals,
  number_of_processes: z.number().int().nonnegative(),
});
export type Heartbeat = z.output<typeof Heartbeat>;

export const Alert = z.object({
  id: z.string(),
  severity: z.number().int().min(1).max(5),
  title: z.string(),
  summary: z.string(),
  created_at: z.number().int(),
});
export type Alert = z.output<typeof Alert>;

// ---- parsing -----------------------------------------------------------------------------------

/** zod's issues as one line: `arguments.0.jobs.0.sha256: a sha256 digest is …; name: Required`. */
export function describeIssues(error: z.ZodError, prefix = ''): string {
  return error.issues
    .map((i) => {
      const path = [prefix, ...i.path.map(String)].filter((p) => p !== '').join('.');
      return path ? `${path}: ${i.message}` : i.message;
    })
    .join('; ');
}

export type ParsedRequest =
  | { ok: true; method: MethodName; args: unknown[]; replyTo?: string }
  | { ok: false; message: string; replyTo?: string };

export function isMethodName(name: string): name is MethodName {
  return Object.prototype.hasOwnProperty.call(methodArguments, name);
}

/** Raw bytes of a request in, a typed method and its arguments (or a sentence saying what is wrong) out. */
export function parseRequest(data: Uint8Array | string): ParsedRequest {
  let json: unknown;
  try {
    json = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data));
  } catch {
    return { ok: false, message: 'Parsing the request: not JSON' };
  }
  // Even a request that fails to parse is answered where it asked, if that is a usable subject.
  const rawReplyTo = (json as { reply_to?: unknown } | null)?.reply_to;
  const replyTo = typeof rawReplyTo === 'string' && replySubjectPattern.test(rawReplyTo) ? rawReplyTo : undefined;
  const base = AgentRequest.safeParse(json);
  if (!base.success) return { ok: false, message: `Parsing the request: ${describeIssues(base.error)}`, ...(replyTo ? { replyTo } : {}) };
  const req = base.data;
  if (!isMethodName(req.method)) {
    return { ok: false, message: `Unknown message ${JSON.stringify(req.method)}; known: ${Object.keys(methodArguments).join(', ')}`, ...(replyTo ? { replyTo } : {}) };
  }
  const args = methodArguments[req.method].safeParse(req.arguments);
  if (!args.success) {
    return { ok: false, message: `Parsing the arguments of ${req.method}: ${describeIssues(args.error, 'arguments')}`, ...(replyTo ? { replyTo } : {}) };
  }
  return { ok: true, method: req.method, args: args.data as unknown[], ...(req.reply_to ? { replyTo: req.reply_to } : {}) };
}

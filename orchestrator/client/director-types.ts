// The director API's answers as the CLI reads them (orchestrator/director/api.ts): one zod
// schema per shape, wire names kept. Unknown fields pass through, so a newer director still
// talks to this CLI.
import { z } from 'zod';

export const TASK_STATES = ['queued', 'processing', 'cancelling', 'done', 'error', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];
export const FINISHED_STATES: ReadonlySet<TaskState> = new Set(['done', 'error', 'cancelled']);

export const info = z
  .object({
    name: z.string(),
    uuid: z.string(),
    version: z.string(),
    user_authentication: z.object({ type: z.string() }).passthrough(),
    cpi: z.unknown().optional(),
  })
  .passthrough();
export type DirectorInfo = z.infer<typeof info>;

export const token = z.object({ access_token: z.string().min(1), token_type: z.string().optional(), expires_in: z.number() }).passthrough();
export type DirectorToken = z.infer<typeof token>;

export const stemcell = z
  .object({
    name: z.string(),
    version: z.string(),
    operating_system: z.string(),
    cid: z.string().nullable(),
    blob_id: z.string().optional(),
    uploaded_at: z.string().optional(),
    deployments: z.array(z.string()).default([]),
  })
  .passthrough();
export type Stemcell = z.infer<typeof stemcell>;

const releaseItem = z.object({ name: z.string(), version: z.string().optional(), fingerprint: z.string().optional() }).passthrough();

export const release = z
  .object({
    name: z.string(),
    version: z.string(),
    blob_id: z.string().optional(),
    uploaded_at: z.string().optional(),
    jobs: z.array(releaseItem).default([]),
    packages: z.array(releaseItem).default([]),
  })
  .passthrough();
export type Release = z.infer<typeof release>;

/** The answer of DELETE /releases/… and /stemcells/…: what went, and the task that did it. */
export const removed = z.object({ task_id: z.number(), deleted: z.array(z.string()), blobs: z.array(z.string()) }).passthrough();
export type Removed = z.infer<typeof removed>;

export const cloudConfig = z.object({ id: z.number(), properties: z.string(), created_at: z.string() }).passthrough();
export type CloudConfig = z.infer<typeof cloudConfig>;

export const cloudConfigSaved = z.object({ id: z.number(), created_at: z.string(), changed: z.boolean() }).passthrough();
export type CloudConfigSaved = z.infer<typeof cloudConfigSaved>;

export const deployment = z
  .object({
    name: z.string(),
    cloud_config_id: z.number().nullable(),
    releases: z.array(z.object({ name: z.string(), version: z.string() }).passthrough()).default([]),
    stemcells: z.array(z.object({ version: z.string() }).passthrough()).default([]),
    updated_at: z.string().optional(),
  })
  .passthrough();
export type Deployment = z.infer<typeof deployment>;

/** GET /deployments/:name/instances[?state=true]: the director's record and, asked, the agent's. */
export const instanceRow = z
  .object({
    instance: z.string(),
    id: z.string(),
    az: z.string().nullable(),
    ips: z.array(z.string()),
    vm_cid: z.string().nullable(),
    deploy_state: z.string(),
    process_state: z.string().optional(),
    desired_state: z.string().optional(),
    processes: z.array(z.object({ name: z.string(), state: z.string(), restarts: z.number(), pid: z.number().optional() })).optional(),
    vitals: z
      .object({
        load: z.array(z.string()),
        cpu: z.object({ user: z.string(), sys: z.string(), wait: z.string() }),
        mem: z.object({ percent: z.string(), kb: z.string() }),
        uptime: z.object({ secs: z.number() }),
      })
      .passthrough()
      .optional(),
  })
  .passthrough();
export type InstanceRow = z.infer<typeof instanceRow>;

/** POST /deployments/:name/instances/:group/:index/ssh: a command line to run on the director's host. */
export const sshTarget = z
  .object({ instance: z.string(), id: z.string(), vm_cid: z.string(), ips: z.array(z.string()), host_id: z.string(), argv: z.array(z.string()).min(1) })
  .passthrough();
export type SshTarget = z.infer<typeof sshTarget>;

/** GET /deployments/:name/vms: each VM holding an instance, with its agent's word now. */
export const vmRow = z
  .object({
    instance: z.string(),
    id: z.string(),
    vm_cid: z.string(),
    agent_id: z.string(),
    az: z.string().nullable(),
    ips: z.array(z.string()),
    vm_type: z.string().nullable(),
    process_state: z.string(),
    created_at: z.string(),
  })
  .passthrough();
export type VmRow = z.infer<typeof vmRow>;

/** What `ingot start|stop|restart` asks of instances (POST /deployments/:name/jobs/…?state=). */
export const JOB_STATE_CHANGES = ['started', 'stopped', 'restarted'] as const;
export type JobStateChange = (typeof JOB_STATE_CHANGES)[number];

/** A run_errand task's result: each instance's exit code and output tails. */
export const errandResult = z.object({
  errand: z.string(),
  runs: z.array(z.object({ instance: z.string(), id: z.string(), exit_code: z.number().nullable(), stdout: z.string(), stderr: z.string() }).passthrough()),
});
export type ErrandResult = z.infer<typeof errandResult>;

/** POST /deployments/:name/diff: the plan's lines (secrets redacted) and whether anything changes. */
export const deploymentDiff = z.object({ diff: z.array(z.string()), changed: z.boolean() }).passthrough();
export type DeploymentDiff = z.infer<typeof deploymentDiff>;

export const task = z
  .object({
    id: z.number(),
    state: z.enum(TASK_STATES),
    type: z.string(),
    description: z.string(),
    deployment: z.string().nullable(),
    user: z.string(),
    result: z.string().nullable(),
    started_at: z.string().nullable(),
    ended_at: z.string().nullable(),
    /** Unix seconds of its creation. */
    timestamp: z.number(),
  })
  .passthrough();
export type Task = z.infer<typeof task>;

/** One step of a task, BOSH's event shape (orchestrator/director/types.ts TaskEvent). */
export const taskEvent = z
  .object({
    time: z.number(),
    stage: z.string(),
    task: z.string(),
    index: z.number(),
    total: z.number(),
    state: z.enum(['started', 'finished', 'failed', 'in_progress']),
    progress: z.number(),
    tags: z.array(z.string()).optional(),
    data: z.record(z.unknown()).optional(),
  })
  .passthrough();
export type TaskEvent = z.infer<typeof taskEvent>;

export const debugLine = z.object({ line: z.string() });

export const taskResult = z.object({ state: z.enum(TASK_STATES), result: z.string().nullable() });
export type TaskResult = z.infer<typeof taskResult>;

/** GET /events: one entry of the event log (the health monitor's alerts). */
export const directorEvent = z
  .object({
    id: z.number(),
    timestamp: z.string(),
    user: z.string(),
    action: z.string(),
    object_type: z.string(),
    object_name: z.string().nullable(),
    deployment: z.string().nullable(),
    instance: z.string().nullable(),
    task_id: z.number().nullable(),
    context: z.record(z.unknown()),
  })
  .passthrough();
export type DirectorEvent = z.infer<typeof directorEvent>;

/** GET /deployments/:name/problems: what the last cloud-check scan found, with the fixes offered (the first is the default). */
export const problem = z
  .object({
    id: z.number(),
    type: z.string(),
    description: z.string(),
    instance: z.string().nullable(),
    resource_id: z.string(),
    resolutions: z.array(z.object({ name: z.string(), plan: z.string() })),
  })
  .passthrough();
export type Problem = z.infer<typeof problem>;

/** GET/PUT /resurrection. */
export const resurrection = z.object({ resurrection_paused: z.boolean(), resurrection_configured: z.boolean() }).passthrough();
export type Resurrection = z.infer<typeof resurrection>;

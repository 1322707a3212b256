// The agent: answers the director on agent.<agent_id> through one table from method name to
// action, supervises the applied jobs' processes, heartbeats to the health monitor and
// alerts when a process dies. Every message in and out goes through protocol.ts.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type Msg, type NatsConnection } from 'nats';
import * as tar from 'tar';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { BlobstoreClient } from './blobstore.ts';
import { parseDrainOutput } from './drain-output.ts';
import { AgentError, doing } from './errors.ts';
import { install, jobDir, readJobSpec, type InstalledJob } from './installer.ts';
import { currentMountPoints, mountedDisks } from './mounts.ts';
import {
  Alert,
  AgentReply,
  AgentState,
  ApplySpec,
  Heartbeat,
  parseRequest,
  subjects,
  type AgentSettingsFile,
  type JobState,
  type MethodArgs,
  type MethodName,
  type TaskRunning,
} from './protocol.ts';
import { hasScript, runJobScript } from './scripts.ts';
import { loadSettings } from './settings.ts';
import { Supervisor, type SupervisorEvent } from './supervisor.ts';
import { TaskRegistry } from './tasks.ts';
import { VitalsSampler } from './vitals.ts';

const encoder = new TextEncoder();

/** What a method answers: a value at once, or a task to be polled. */
type Answer = { value: unknown } | { task: (signal: AbortSignal) => Promise<unknown> };
type Action<M extends MethodName> = (args: MethodArgs<M>) => Answer | Promise<Answer>;

export class Agent {
  private nc: NatsConnection | undefined;
  private readonly supervisor: Supervisor;
  private readonly tasks: TaskRegistry;
  private readonly blobs: BlobstoreClient;
  private readonly vitals: VitalsSampler;
  private spec: ApplySpec | undefined;
  private jobs: InstalledJob[] = [];
  private mounted: Record<string, string> = {};
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  readonly root: string;
  private readonly logRoot: string;

  constructor(
    private readonly settings: AgentSettingsFile,
    private readonly log: Logger,
    /** Where the settings came from: read again for the disks, which the CPI rewrites on attach_disk. */
    private readonly settingsFile?: string,
  ) {
    const t = settings.agent;
    this.root = t.root;
    this.logRoot = join(this.root, 'sys', 'log');
    this.blobs = new BlobstoreClient(settings.blobstore.url);
    this.tasks = new TaskRegistry(t.task_retention_ms);
    const persistent = Object.fromEntries(Object.entries(settings.disks.persistent).map(([cid, path]) => [cid, this.inRoot(path)]));
    this.vitals = new VitalsSampler({ system: this.root, ...persistent });
    this.supervisor = new Supervisor(
      this.logRoot,
      { baseMs: t.restart_base_ms, maxMs: t.restart_max_ms, failingCrashes: t.failing_crashes, windowMs: t.failing_window_ms },
      t.stop_grace_ms,
      (e) => this.onSupervisorEvent(e),
    );
  }

  get agentId(): string {
    return this.settings.agent_id;
  }

  /** The protocol: one table from method name to action. */
  private readonly methods: { [M in MethodName]: Action<M> } = {
    ping: () => ({ value: 'pong' }),
    get_state: () => ({ value: this.state() }),
    apply: ([spec]) => ({ task: (signal) => this.exclusive(() => this.apply(spec, signal)) }),
    start: () => ({ value: this.start() }),
    stop: () => ({ task: () => this.exclusive(() => this.stop()) }),
    drain: ([type]) => ({ task: (signal) => this.exclusive(() => this.drain(type, signal)) }),
    run_script: ([name]) => ({ task: (signal) => this.exclusive(() => this.runScript(name, signal)) }),
    get_task: ([id]) => this.getTask(id),
    cancel_task: ([id]) => ({ value: this.tasks.cancel(id) }),
    fetch_logs: () => ({ task: () => this.fetchLogs() }),
    mount_disk: ([cid]) => ({ value: this.mountDisk(cid) }),
    list_disk: () => ({ value: this.listDisk() }),
    run_errand: ([job]) => ({ task: (signal) => this.exclusive(() => this.runErrand(job, signal)) }),
  };

  /** Calls that change what runs (apply, stop, drain, scripts, errands) go one at a time, in arrival order. */
  private queue: Promise<unknown> = Promise.resolve();
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  async run(): Promise<void> {
    mkdirSync(this.logRoot, { recursive: true });
    await this.restoreSpec();
    const { url, user, password } = this.settings.mbus;
    try {
      this.nc = await connect({
        servers: [url],
        name: `agent/${this.agentId}`,
        ...(user !== undefined ? { user, pass: password ?? '' } : {}),
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1000,
        waitOnFirstConnect: true,
      });
    } catch (err) {
      throw new AgentError('invalid_settings', `Connecting to the mbus at ${url}: ${(err as Error).message}`, { cause: err });
    }
    this.nc.subscribe(subjects.agent(this.agentId), { callback: (err, m) => (err ? this.log.warn({ err: err.message }, 'mbus subscription error') : void this.handle(m)) });
    await this.nc.flush();
    // The agent is this VM's monit: after a restart of the agent (or the VM) the jobs that
    // were started come back without the director asking.
    if (this.spec && this.readDesired() === 'started') this.supervisor.start();
    const t = this.settings.agent;
    this.heartbeatTimer = setInterval(() => this.heartbeat(), t.heartbeat_interval_ms);
    this.heartbeat();
    this.log.info({ agent_id: this.agentId, subject: subjects.agent(this.agentId), root: this.root }, 'agent ready');
  }

  /** Stops the jobs and leaves the mbus (SIGTERM to the agent). */
  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await this.supervisor.stop();
    if (this.nc && !this.nc.isClosed()) await this.nc.drain().catch(() => undefined);
  }

  // ---- requests ------------------------------------------------------------------------------

  private async handle(m: Msg): Promise<void> {
    const req = parseRequest(m.data);
    const replyTo = req.replyTo ?? (m.reply || undefined);
    let reply: AgentReply;
    if (!req.ok) {
      this.log.warn({ reason: req.message }, 'bad request');
      reply = { exception: { message: req.message } };
    } else {
      try {
        const action = this.methods[req.method] as Action<MethodName>;
        const answer = await action(req.args as never);
        if ('task' in answer) reply = { value: { agent_id: this.agentId, ...this.tasks.start(req.method, answer.task) } };
        else reply = { value: answer.value ?? null };
      } catch (err) {
        reply = { exception: { message: err instanceof Error ? err.message : String(err) } };
      }
    }
    if (!replyTo) return;
    this.send(replyTo, AgentReply, reply);
  }

  private send<S extends z.ZodTypeAny>(subject: string, schema: S, msg: z.input<S>): void {
    const parsed = schema.safeParse(msg);
    if (!parsed.success) {
      this.log.error({ subject, issues: parsed.error.issues }, 'refusing to send an invalid message');
      return;
    }
    if (!this.nc || this.nc.isClosed()) return;
    try {
      this.nc.publish(subject, encoder.encode(JSON.stringify(parsed.data)));
    } catch (err) {
      // A reply_to that is no valid subject must not take the agent down.
      this.log.warn({ subject, err: (err as Error).message }, 'could not publish');
    }
  }

  private getTask(id: string): Answer {
    const r = this.tasks.poll(id);
    if ('running' in r) return { value: r.running satisfies TaskRunning };
    if ('exception' in r) throw new AgentError('task_failed', r.exception.message);
    return { value: r.value };
  }

  // ---- actions -------------------------------------------------------------------------------

  private state(): AgentState {
    const processes = this.supervisor.status();
    return {
      agent_id: this.agentId,
      deployment: this.spec?.deployment ?? '',
      job: this.spec ? { name: this.spec.name } : null,
      index: this.spec?.index ?? null,
      job_state: this.jobState(),
      processes,
      vitals: this.vitals.sample(),
      persistent_disk: { ...this.mounted },
    };
  }

  /** After a drain, processes that exited read stopped (all of them: the job is stopped; some: failing, as BOSH says of unmonitored ones). */
  private jobState(): JobState {
    const processes = this.supervisor.status();
    if (processes.length === 0 || processes.every((p) => p.state === 'stopped')) return 'stopped';
    return processes.every((p) => p.state === 'running') ? 'running' : 'failing';
  }

  private async apply(spec: ApplySpec, signal: AbortSignal): Promise<unknown> {
    return doing('Applying the spec', async () => {
      const jobs = await install(spec, this.root, this.blobs, signal);
      // New bits take effect on the next start, as in BOSH: apply never restarts anything.
      this.spec = spec;
      this.jobs = jobs;
      await this.supervisor.load(this.processesOf(jobs));
      mkdirSync(join(this.root, 'bosh'), { recursive: true });
      writeFileSync(join(this.root, 'bosh', 'spec.json'), JSON.stringify(spec, null, 2));
      return 'applied';
    });
  }

  private processesOf(jobs: InstalledJob[]): Parameters<Supervisor['load']>[0] {
    return jobs.flatMap((job) =>
      job.spec.processes.map((def) => ({
        job: job.name,
        def,
        cwd: job.dir,
        env: this.jobEnv(job),
      })),
    );
  }

  /** What a job's processes and errand learn from their environment. */
  private jobEnv(job: InstalledJob): Record<string, string> {
    return { INGOT_JOB_DIR: job.dir, INGOT_JOB_PROPERTIES: join(job.dir, 'config', 'properties.json'), INGOT_ROOT: this.root };
  }

  private desiredFile(): string {
    return join(this.root, 'bosh', 'desired.json');
  }

  private readDesired(): 'started' | 'stopped' {
    try {
      return (JSON.parse(readFileSync(this.desiredFile(), 'utf8')) as { state?: string }).state === 'started' ? 'started' : 'stopped';
    } catch {
      return 'stopped';
    }
  }

  private writeDesired(state: 'started' | 'stopped'): void {
    mkdirSync(join(this.root, 'bosh'), { recursive: true });
    writeFileSync(this.desiredFile(), JSON.stringify({ state }));
  }

  private async restoreSpec(): Promise<void> {
    const file = join(this.root, 'bosh', 'spec.json');
    if (!existsSync(file)) return;
    try {
      const spec = ApplySpec.parse(JSON.parse(readFileSync(file, 'utf8')));
      this.spec = spec;
      this.jobs = spec.jobs.map((j) => ({ name: j.name, dir: jobDir(this.root, j.name), spec: readJobSpec(jobDir(this.root, j.name), j.name) }));
      await this.supervisor.load(this.processesOf(this.jobs));
    } catch (err) {
      this.log.warn({ file, err: (err as Error).message }, 'ignoring the saved spec');
    }
  }

  private requireApplied(doingWhat: string): ApplySpec {
    if (!this.spec) throw new AgentError('not_applied', `${doingWhat}: nothing has been applied to this agent yet`);
    return this.spec;
  }

  private start(): string {
    this.requireApplied('Starting jobs');
    this.writeDesired('started');
    this.supervisor.start();
    return 'started';
  }

  private async stop(): Promise<string> {
    this.writeDesired('stopped');
    await this.supervisor.stop();
    return 'stopped';
  }

  private async drain(type: 'update' | 'shutdown' | 'status', signal: AbortSignal): Promise<number> {
    this.requireApplied('Draining');
    // As BOSH's agent runs `monit unmonitor` first: a process that exits while its job drains
    // (the DEA once evacuated) stays down until the stop, instead of a fresh one starting.
    if (type !== 'status') this.supervisor.unmonitor();
    let total = 0;
    for (const job of this.jobs) {
      const command = job.spec.drain;
      if (!command && !hasScript(job.dir, 'drain')) continue;
      total = Math.max(
        total,
        await doing(`Draining job ${job.name}`, async () => {
          const env = { ...this.jobEnv(job), ...command?.env, BOSH_JOB_STATE: JSON.stringify({ job_state: this.jobState() }), BOSH_JOB_NEXT_STATE: '{}' };
          let waited = 0;
          let args = [type === 'status' ? 'job_check_status' : type === 'shutdown' ? 'job_shutdown' : 'job_changed', 'hash_unchanged'];
          for (;;) {
            // The pids afresh for each call, so a job_check_status call sees a process that has exited.
            const callEnv = { ...env, INGOT_JOB_PIDS: this.jobPids(job.name) };
            const r = await runJobScript({ job: job.name, jobDir: job.dir, script: 'drain', ...(command ? { command: { executable: command.executable, args: [...command.args, ...args] } } : { args }), env: callEnv, logRoot: this.logRoot, signal });
            if (r.exitCode !== 0) throw new AgentError('script_failed', `bin/drain exited with ${r.exitCode}: ${r.stderr.trim().slice(-200)}`);
            const answer = parseDrainOutput(r.stdout);
            await sleep(answer.seconds * 1000, undefined, { signal });
            waited += answer.seconds;
            if (answer.kind === 'wait') return waited;
            // Dynamic drain: ask again with "status" until it answers a plain wait.
            args = ['job_check_status', 'hash_unchanged'];
          }
        }),
      );
    }
    return total;
  }

  /** The job's running processes, for a drain command to signal: `name=pid` separated by spaces. */
  private jobPids(job: string): string {
    return this.supervisor.status().filter((p) => p.job === job && p.pid !== undefined).map((p) => `${p.name}=${p.pid}`).join(' ');
  }

  private async runScript(name: string, signal: AbortSignal): Promise<Record<string, string>> {
    this.requireApplied(`Running ${name} scripts`);
    const results: Record<string, string> = {};
    const failures: string[] = [];
    await Promise.all(
      this.jobs
        .filter((j) => hasScript(j.dir, name))
        .map(async (job) => {
          const r = await runJobScript({ job: job.name, jobDir: job.dir, script: name, logRoot: this.logRoot, signal });
          results[job.name] = r.exitCode === 0 ? 'executed' : 'failed';
          if (r.exitCode !== 0) failures.push(`${job.name}/bin/${name} exited with ${r.exitCode}`);
        }),
    );
    if (failures.length) throw new AgentError('script_failed', `Running ${name} scripts: ${failures.join('; ')}`);
    return results;
  }

  /** The job's errand (its spec's `errand`, else its bin/run) to its end: exit code and output tails. */
  private async runErrand(name: string | undefined, signal: AbortSignal): Promise<{ exit_code: number | null; stdout: string; stderr: string }> {
    this.requireApplied('Running the errand');
    const hasErrand = (j: InstalledJob): boolean => j.spec.errand !== undefined || hasScript(j.dir, 'run');
    const job = name === undefined ? this.jobs.find(hasErrand) : this.jobs.find((j) => j.name === name);
    if (!job) throw new AgentError('script_failed', name === undefined ? 'Running the errand: no job has an errand' : `Running the errand: no job ${name} here (jobs: ${this.jobs.map((j) => j.name).join(', ')})`);
    if (!hasErrand(job)) throw new AgentError('script_failed', `Running the errand: job ${job.name} has no errand`);
    const errand = job.spec.errand;
    const r = await runJobScript({
      job: job.name,
      jobDir: job.dir,
      script: 'run',
      ...(errand ? { command: { executable: errand.executable, args: errand.args }, env: { ...this.jobEnv(job), ...errand.env } } : {}),
      logRoot: this.logRoot,
      signal,
    });
    return { exit_code: r.exitCode, stdout: r.stdout.slice(-64 * 1024), stderr: r.stderr.slice(-64 * 1024) };
  }

  private async fetchLogs(): Promise<{ blobstore_id: string; sha256: string }> {
    return doing('Fetching logs', async () => {
      mkdirSync(this.logRoot, { recursive: true });
      const chunks: Buffer[] = [];
      const stream = tar.c({ gzip: true, cwd: this.logRoot, portable: true }, ['.']);
      for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
      return this.blobs.upload(Buffer.concat(chunks));
    });
  }

  /** The local CPI bind-mounts the disk already; the agent checks the mount point and records it. */
  private mountDisk(cid: string): Record<string, string> {
    const disks = this.persistentDisks();
    const path = disks[cid];
    if (!path) throw new AgentError('disk_not_mounted', `Mounting persistent disk ${cid}: the settings name no such disk (known: ${Object.keys(disks).join(', ') || 'none'})`);
    const inRoot = this.inRoot(path);
    if (!existsSync(inRoot) || !statSync(inRoot).isDirectory()) throw new AgentError('disk_not_mounted', `Mounting persistent disk ${cid}: ${inRoot} is not a directory (the CPI mounts the disk there)`);
    this.mounted[cid] = inRoot;
    return { [cid]: inRoot };
  }

  /** BOSH's list_disk: the settings' persistent disks whose path is a mount point now. */
  private listDisk(): string[] {
    const disks = Object.fromEntries(Object.entries(this.persistentDisks()).map(([cid, path]) => [cid, this.inRoot(path)]));
    return mountedDisks(disks, currentMountPoints());
  }

  /** The settings' persistent disks, read again when they came from a file (BOSH reloads settings for mount_disk). */
  private persistentDisks(): Record<string, string> {
    if (!this.settingsFile) return this.settings.disks.persistent;
    try {
      return loadSettings(this.settingsFile).disks.persistent;
    } catch (err) {
      this.log.warn({ file: this.settingsFile, err: (err as Error).message }, 'reading the disks from the settings again; using those read at start');
      return this.settings.disks.persistent;
    }
  }

  /** Paths in the settings are as seen in a VM (/var/vcap/…); a test's root stands in for /var/vcap. */
  private inRoot(path: string): string {
    return path.startsWith('/var/vcap/') && this.root !== '/var/vcap' ? join(this.root, path.slice('/var/vcap/'.length)) : path;
  }

  // ---- heartbeats and alerts ---------------------------------------------------------------------

  private heartbeat(): void {
    const hb: Heartbeat = {
      agent_id: this.agentId,
      deployment: this.spec?.deployment ?? '',
      job: this.spec?.name ?? null,
      index: this.spec?.index ?? null,
      job_state: this.jobState(),
      vitals: this.vitals.sample(),
      number_of_processes: this.supervisor.count,
    };
    this.send(subjects.heartbeat(this.agentId), Heartbeat, hb);
  }

  private onSupervisorEvent(e: SupervisorEvent): void {
    if (e.type === 'exited') return this.log.info({ job: e.job, process: e.process, exit: e.exit }, 'process exited while its job drains; left down until start');
    if (e.type === 'killed') return this.log.warn({ job: e.job, process: e.process, after_ms: e.afterMs }, 'process still running after SIGTERM; SIGKILL');
    const alert: Alert =
      e.type === 'crashed'
        ? { id: randomUUID(), severity: 2, title: `${e.job}/${e.process} (${e.exit}) - restarting`, summary: `process ${e.process} of job ${e.job} died (${e.exit}); restarting in ${e.restartInMs} ms`, created_at: Math.floor(Date.now() / 1000) }
        : { id: randomUUID(), severity: 1, title: `${e.job}/${e.process} - failing`, summary: `process ${e.process} of job ${e.job} crashed ${e.crashes} times within the window`, created_at: Math.floor(Date.now() / 1000) };
    this.log.warn({ alert }, 'process alert');
    this.send(subjects.alert(this.agentId), Alert, alert);
  }
}

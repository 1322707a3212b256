// The droplet execution agent: runs app instances in containers and reports on them. It
// obeys the controller (discover, start, stop, update, find), tells the health manager what
// really runs (heartbeats, exits), and never restarts an instance on its own.
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadavg, cpus } from 'node:os';
import * as tar from 'tar';
import { parse as parseYaml } from 'yaml';
import {
  replies,
  subjects,
  type Bus,
  type DeaDiscover,
  type DeaFindDroplet,
  type DeaStart,
  type DeaStop,
  type DeaUpdate,
  type DropletExited,
  type InstanceState,
  type StagingRequest,
} from '../bus/mod.ts';
import type { Logger } from '../component/mod.ts';
import type { Container, ContainerHost, ExitInfo } from './container/mod.ts';
import { uidRangeOf, type DeaConfig } from './config.ts';
import { DropletCache } from './droplet-cache.ts';
import { instanceEnvironment } from './environment.ts';
import { waitUntilHealthy } from './health-check.ts';
import { appCounts, isActive, matches, nowSeconds, reservedDiskMb, reservedMemoryMb, type Instance } from './instance.ts';
import { InstanceRegistry } from './instance-registry.ts';
import { fits, taintMs, type PlacementState } from './placement.ts';
import { containerSandboxFactory } from './staging-container.ts';
import { createStager, ProcessSandbox, StagingError, type Stager } from './staging/mod.ts';

export interface DeaOptions {
  config: DeaConfig;
  bus: Bus;
  log: Logger;
  containers: ContainerHost;
  /** The address routers reach this DEA's mapped ports at. */
  hostAddress: string;
  uuid: string;
}

/** Why the DEA is refusing new work. */
type Mode = 'serving' | 'evacuating' | 'shutting_down' | 'detached';

/** How often disk quotas are checked. */
const DISK_CHECK_INTERVAL_MS = 10_000;

export class Dea {
  readonly id: string;
  private readonly cfg: DeaConfig;
  private readonly bus: Bus;
  private readonly log: Logger;
  private readonly containers: ContainerHost;
  private readonly registry: InstanceRegistry;
  private readonly droplets: DropletCache;
  private readonly hostAddress: string;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unsubscribes: Array<() => void> = [];
  /** Instances the DEA itself is stopping: their exit is not a crash. */
  private readonly stopping = new Set<string>();
  private routeTimer: NodeJS.Timeout | undefined;
  private stager: Stager | undefined;
  private stopStaging: (() => void) | undefined;
  private stagingInFlight = 0;
  private mode: Mode = 'serving';
  private evacuationDone: (() => void) | undefined;
  readonly counters = {
    stagings: 0,
    staging_failures: 0,
    discovers_answered: 0,
    discovers_declined: 0,
    starts: 0,
    start_failures: 0,
    crashes: 0,
    stops: 0,
    oom_kills: 0,
    disk_quota_stops: 0,
    adopted: 0,
  };

  constructor(opts: DeaOptions) {
    this.cfg = opts.config;
    this.bus = opts.bus;
    this.log = opts.log;
    this.containers = opts.containers;
    this.hostAddress = opts.hostAddress;
    this.id = `${opts.config.index}-${opts.uuid.replace(/-/g, '').slice(0, 16)}`;
    this.registry = new InstanceRegistry(join(opts.config.base_dir, 'instances.json'));
    this.droplets = new DropletCache(join(opts.config.base_dir, 'droplets'), opts.config.max_droplet_mb * 1024 * 1024);
  }

  async start(): Promise<void> {
    await mkdir(this.cfg.base_dir, { recursive: true });
    await this.adopt();
    const b = this.bus;
    this.unsubscribes.push(
      b.subscribe(subjects.deaDiscover, (msg, ctx) => this.onDiscover(msg, ctx.reply)),
      b.subscribe(subjects.deaStart(this.id), (msg) => this.startInstance(msg)),
      b.subscribe(subjects.deaStop, (msg) => this.onStop(msg)),
      b.subscribe(subjects.deaUpdate, (msg) => this.onUpdate(msg)),
      b.subscribe(subjects.deaFindDroplet, (msg, ctx) => this.onFind(msg, ctx.reply)),
      b.subscribe(subjects.routerStart, (msg) => this.onRouterStart(msg.minimum_register_interval_s)),
    );
    if (this.cfg.staging.enabled) await this.startStaging();
    b.onReconnected(() => {
      this.registerAllRoutes();
      this.advertise();
    });
    this.timers.push(
      setInterval(() => this.heartbeat(), this.cfg.heartbeat_interval_s * 1000),
      setInterval(() => this.advertise(), this.cfg.advertise_interval_s * 1000),
      setInterval(() => void this.checkDisks(), DISK_CHECK_INTERVAL_MS),
    );
    // Ask routers for their interval; until one answers, re-register every 20 s (CF's default).
    this.onRouterStart(20);
    void b.request(subjects.routerGreet, {}, replies.routerGreet, { timeoutMs: 2000 }).then(
      (r) => this.onRouterStart(r.minimum_register_interval_s),
      () => undefined,
    );
    this.advertise();
    this.heartbeat();
  }

  // ---- state reported ---------------------------------------------------------------

  placementState(): PlacementState {
    const all = this.registry.all();
    return {
      stacks: this.cfg.stacks,
      draining: this.mode !== 'serving',
      totalMemoryMb: this.cfg.memory_mb,
      availableMemoryMb: this.cfg.memory_mb - reservedMemoryMb(all),
      totalDiskMb: this.cfg.disk_mb,
      availableDiskMb: this.cfg.disk_mb - reservedDiskMb(all),
      appCounts: appCounts(all),
      cpuLoad: (loadavg()[0] ?? 0) / Math.max(1, cpus().length),
    };
  }

  varz(): Record<string, unknown> {
    const s = this.placementState();
    return {
      dea_id: this.id,
      mode: this.mode,
      stacks: s.stacks,
      available_memory_mb: s.availableMemoryMb,
      available_disk_mb: s.availableDiskMb,
      instances: this.registry.all().map((i) => ({ instance_id: i.instance_id, app_id: i.app_id, index: i.index, state: i.state, host_port: i.host_port })),
      dropped_log_lines: this.droppedLogLines(),
      ...this.counters,
    };
  }

  private droppedLogLines(): number {
    return this.containers.containers().reduce((n, c) => n + (c.process?.droppedLogLines() ?? 0), 0);
  }

  private advertise(): void {
    if (this.mode === 'detached') return;
    const s = this.placementState();
    this.bus.publish(subjects.deaAdvertise, {
      dea_id: this.id,
      stacks: s.stacks,
      available_memory_mb: s.availableMemoryMb,
      available_disk_mb: s.availableDiskMb,
      app_counts: s.appCounts,
      draining: s.draining,
    });
  }

  private heartbeat(): void {
    if (this.mode === 'detached') return;
    this.bus.publish(subjects.deaHeartbeat, {
      dea_id: this.id,
      instances: this.registry
        .all()
        .filter((i) => i.state !== 'STOPPED')
        .map((i) => ({ app_id: i.app_id, version: i.version, instance_id: i.instance_id, index: i.index, state: i.state, state_timestamp: i.state_timestamp })),
    });
  }

  // ---- controller requests ------------------------------------------------------------

  private onDiscover(msg: DeaDiscover, reply: string | undefined): void {
    if (!reply) return;
    const state = this.placementState();
    const fit = fits(state, msg);
    if (!fit.ok) {
      this.counters.discovers_declined++;
      this.log.debug({ app_id: msg.app_id, reason: fit.reason }, 'declining discover');
      return;
    }
    const delay = taintMs(state, msg.app_id, {
      perInstanceMs: this.cfg.taint.per_instance_ms,
      memoryMs: this.cfg.taint.memory_ms,
      cpuMs: this.cfg.taint.cpu_ms,
      maxMs: this.cfg.taint.max_ms,
    });
    setTimeout(() => {
      if (this.mode !== 'serving') return;
      this.counters.discovers_answered++;
      this.bus.respond(reply, replies.deaDiscover, { dea_id: this.id, host: this.hostAddress });
    }, delay);
  }

  async startInstance(msg: DeaStart): Promise<void> {
    if (this.mode !== 'serving') {
      this.log.warn({ app_id: msg.app_id, index: msg.index, mode: this.mode }, 'refusing a start while not serving');
      return;
    }
    const instanceId = msg.instance_id ?? randomUUID();
    if (this.registry.get(instanceId)) return; // a redelivered start: already ours
    const now = nowSeconds();
    const instance: Instance = {
      instance_id: instanceId,
      app_id: msg.app_id,
      app_name: msg.name,
      index: msg.index,
      version: msg.version,
      state: 'STARTING',
      state_timestamp: now,
      uris: msg.uris,
      droplet_sha256: msg.droplet_sha256,
      memory_mb: msg.limits.memory_mb,
      disk_mb: msg.limits.disk_mb,
      host_port: 0,
      port: 0,
      started_at: now,
      start: msg,
    };
    this.registry.put(instance);
    this.counters.starts++;
    this.advertise();
    const log = this.log.child({ app_id: msg.app_id, index: msg.index, instance_id: instanceId });
    let container: Container | undefined;
    try {
      const droplet = await this.droplets.fetch(msg.droplet_uri, msg.droplet_sha256);
      container = await this.containers.createContainer({
        id: instanceId,
        memoryBytes: msg.limits.memory_mb * 1024 * 1024,
        diskBytes: msg.limits.disk_mb * 1024 * 1024,
        pids: msg.limits.pids ?? this.cfg.pids_limit,
      });
      instance.host_port = container.hostPort;
      instance.port = container.containerPort;
      this.registry.put(instance);
      await tar.x({ file: droplet, cwd: container.paths.home, preserveOwner: false, filter: (p) => p.startsWith('app/') || p === 'staging_info.yml' });
      const command = msg.start_command ?? (await stagedStartCommand(container.paths.home));
      if (!command) throw new Error('no start command: none was given and the droplet names none');
      if (this.stopping.has(instanceId)) return; // stopped while it was being set up
      const namespaced = this.cfg.isolation === 'namespaces';
      const env = instanceEnvironment(msg, {
        instanceId,
        host: this.hostAddress,
        hostPort: container.hostPort,
        containerPort: container.containerPort,
        startedAt: new Date(now * 1000),
        home: namespaced ? '/home/vcap/app' : container.paths.app,
        tmp: namespaced ? '/tmp' : container.paths.tmp,
      });
      const proc = await container.spawn({
        // bash, after .profile.d, as Cloud Foundry's launcher does: buildpacks put runtimes on PATH there.
        // (The container runs this with sh; profile scripts are bash, so bash sources them.)
        command: `exec bash -c 'for f in .profile.d/*.sh; do [ -r "$f" ] && . "$f"; done; exec bash -c "$INGOT_START_COMMAND"'`,
        env: { ...env, INGOT_START_COMMAND: command },
        logLinesPerSecond: msg.limits.log_rate_lines_per_s ?? this.cfg.log_rate_lines_per_s,
        onLine: (stream, line) => this.appLog(instance, stream === 'stdout' ? 'out' : 'err', line),
      });
      void proc.exited.then((exit) => this.onExit(instance, container!, exit));
      const health = await waitUntilHealthy({
        host: container.address ?? '127.0.0.1',
        port: container.containerPort,
        type: msg.health_check?.type ?? 'port',
        endpoint: msg.health_check?.endpoint,
        timeoutMs: (msg.health_check?.timeout_s ?? this.cfg.health_check_timeout_s) * 1000,
        alive: () => container!.process !== null,
      });
      if (instance.state !== 'STARTING') return; // it crashed or was stopped meanwhile
      if (!health.healthy) {
        log.warn({ reason: health.reason }, 'instance unhealthy; stopping it');
        instance.exit_description = health.reason;
        this.stopping.add(instanceId);
        await container.stop({ graceMs: this.cfg.stop_grace_s * 1000, reason: health.reason });
        this.crashed(instance, { exit_description: health.reason });
        return;
      }
      this.setState(instance, 'RUNNING');
      this.registerRoutes(instance);
      log.info({ host_port: container.hostPort }, 'instance running');
    } catch (err) {
      this.counters.start_failures++;
      const reason = `failed to start: ${(err as Error).message}`;
      log.error({ err: (err as Error).message }, 'start failed');
      if (container?.process) {
        this.stopping.add(instanceId);
        await container.stop({ graceMs: 1000, reason }).catch(() => undefined);
      }
      if (instance.state === 'STARTING') this.crashed(instance, { exit_description: reason });
    }
  }

  private onStop(msg: DeaStop): void {
    for (const i of this.registry.all()) if (matches(i, msg)) void this.stopInstance(i, 'STOPPED');
  }

  private onUpdate(msg: DeaUpdate): void {
    for (const i of this.registry.all()) {
      if (i.app_id !== msg.app_id) continue;
      const removed = i.uris.filter((u) => !msg.uris.includes(u));
      if (i.state === 'RUNNING' && removed.length > 0) this.publishRoutes(subjects.routerUnregister, i, removed);
      i.uris = msg.uris;
      i.start = { ...i.start, uris: msg.uris };
      this.registry.put(i);
      if (i.state === 'RUNNING') this.registerRoutes(i);
    }
  }

  private async onFind(msg: DeaFindDroplet, reply: string | undefined): Promise<void> {
    if (!reply) return;
    for (const i of this.registry.all()) {
      if (!matches(i, msg)) continue;
      const container = this.containers.get(i.instance_id);
      let stats;
      if (msg.include_stats && container && !container.destroyed) {
        const s = await container.stats().catch(() => undefined);
        if (s) {
          const uptime = nowSeconds() - i.started_at;
          stats = {
            uptime_s: Math.round(uptime),
            cpu_percent: uptime > 0 ? Math.round((s.cpuNanos / 1e9 / uptime) * 1000) / 10 : 0,
            memory_bytes: s.memoryBytes,
            memory_quota_bytes: i.memory_mb * 1024 * 1024,
            disk_bytes: s.diskBytes,
            disk_quota_bytes: i.disk_mb * 1024 * 1024,
          };
        }
      }
      this.bus.respond(reply, replies.deaFindDroplet, {
        dea_id: this.id,
        app_id: i.app_id,
        version: i.version,
        instance_id: i.instance_id,
        index: i.index,
        state: i.state,
        state_timestamp: i.state_timestamp,
        ...(i.host_port ? { host: this.hostAddress, port: i.host_port } : {}),
        ...(stats ? { stats } : {}),
        ...(i.exit_description ? { exit_description: i.exit_description } : {}),
      });
    }
  }

  private onRouterStart(intervalS: number): void {
    clearInterval(this.routeTimer);
    this.routeTimer = setInterval(() => this.registerAllRoutes(), Math.max(1, intervalS) * 1000);
    this.registerAllRoutes();
  }

  // ---- staging ------------------------------------------------------------------------

  /** Joins the `stagers` queue group: each staging request goes to one DEA. */
  private async startStaging(): Promise<void> {
    const st = this.cfg.staging;
    const workDir = join(this.cfg.base_dir, 'staging');
    // The staging uid must traverse (not list) down to its own workspace.
    await mkdir(workDir, { recursive: true });
    await chmod(this.cfg.base_dir, 0o711);
    await chmod(workDir, 0o711);
    this.stager = createStager({
      workDir,
      // Buildpacks run in a container like the app's own (staging-container.ts). Without
      // isolation: as an unprivileged uid kept apart from the instances' range, with the
      // staging memory and disk as rlimits.
      sandbox:
        this.cfg.isolation === 'namespaces'
          ? containerSandboxFactory(this.containers, { pids: st.pids_limit })
          : ProcessSandbox.factory(process.geteuid?.() === 0 ? { uid: uidRangeOf(this.cfg).start - 1 } : {}),
      timeoutMs: st.timeout_s * 1000,
      memoryMb: st.memory_mb,
      diskMb: st.disk_mb,
      stack: this.cfg.stacks[0],
      uploadMethod: 'PUT',
      ...(st.npm_registry ? { npmRegistry: st.npm_registry } : {}),
      ...(st.proxy ? { proxy: st.proxy } : {}),
      ...(st.buildpacks_dir ? { buildpacksDir: st.buildpacks_dir } : {}),
      allowLocalBuildpacks: st.allow_local_buildpacks,
    });
    this.stopStaging = this.bus.subscribe(subjects.stagingRequest, (msg, ctx) => this.stage(msg, ctx.reply), { queue: 'stagers' });
  }

  private async stage(msg: StagingRequest, reply: string | undefined): Promise<void> {
    const stager = this.stager;
    if (!stager) return;
    this.stagingInFlight++;
    this.counters.stagings++;
    const log = (line: string, stream: 'out' | 'err'): void =>
      this.bus.publish(subjects.logs(msg.app_id), { app_id: msg.app_id, source: 'STG', stream, timestamp: Date.now(), line: line.slice(0, 64 * 1024) });
    try {
      const result = await stager.stage(msg, { onLog: log });
      if (reply) {
        this.bus.respond(reply, replies.stagingRequest, {
          build_id: msg.build_id,
          state: 'STAGED',
          droplet_sha256: result.droplet_sha256,
          detected_buildpack: result.detected_buildpack,
          start_command: result.start_command,
        });
      }
    } catch (err) {
      this.counters.staging_failures++;
      const error = err instanceof StagingError ? err.message : `Staging failed: ${(err as Error).message}`;
      this.log.warn({ app_id: msg.app_id, build_id: msg.build_id, error }, 'staging failed');
      if (reply) this.bus.respond(reply, replies.stagingRequest, { build_id: msg.build_id, state: 'FAILED', error });
    } finally {
      this.stagingInFlight--;
    }
  }

  // ---- instance lifecycle -------------------------------------------------------------

  private async stopInstance(i: Instance, reason: 'STOPPED' | 'DEA_SHUTDOWN'): Promise<void> {
    if (this.stopping.has(i.instance_id) && i.state !== 'CRASHED') return;
    this.stopping.add(i.instance_id);
    const wasActive = isActive(i);
    if (i.state === 'RUNNING' || i.state === 'EVACUATING') this.publishRoutes(subjects.routerUnregister, i, i.uris);
    if (wasActive) this.setState(i, 'STOPPING');
    const container = this.containers.get(i.instance_id);
    try {
      if (container?.process) await container.stop({ graceMs: this.cfg.stop_grace_s * 1000, reason: 'stopped by request' });
      await container?.destroy();
    } catch (err) {
      this.log.error({ instance_id: i.instance_id, err: (err as Error).message }, 'stopping an instance failed');
    }
    this.counters.stops++;
    if (wasActive) this.exited(i, { reason });
    this.registry.delete(i.instance_id);
    this.stopping.delete(i.instance_id);
    this.advertise();
    this.checkEvacuationDone();
  }

  /** An exit: if the DEA did not cause it, a crash — unregister at once, then report. */
  private onExit(i: Instance, container: Container, exit: ExitInfo): void {
    if (this.stopping.has(i.instance_id) || this.mode === 'detached') return;
    if (!isActive(i)) return;
    if (exit.reason === 'out of memory') this.counters.oom_kills++;
    this.crashed(i, { exit_status: exit.exitStatus ?? undefined, exit_description: exit.description });
    // A crashed instance's files and logs stay readable for a while, then go.
    const t = setTimeout(() => {
      if (this.registry.get(i.instance_id)?.state === 'CRASHED') {
        this.registry.delete(i.instance_id);
        void container.destroy().catch(() => undefined);
      }
    }, this.cfg.crash_retention_s * 1000);
    t.unref();
  }

  private crashed(i: Instance, info: { exit_status?: number | undefined; exit_description: string }): void {
    const wasRunning = i.state === 'RUNNING' || i.state === 'EVACUATING';
    if (wasRunning) this.publishRoutes(subjects.routerUnregister, i, i.uris);
    i.exit_description = info.exit_description;
    if (info.exit_status !== undefined) i.exit_status = info.exit_status;
    this.setState(i, 'CRASHED');
    this.counters.crashes++;
    this.exited(i, { reason: 'CRASHED', exit_status: info.exit_status, exit_description: info.exit_description });
    this.retireOldCrashes(i.app_id);
    this.log.warn({ app_id: i.app_id, index: i.index, instance_id: i.instance_id, ...info }, 'instance crashed');
    this.advertise();
    this.checkEvacuationDone();
  }

  /** A crash-looping app must not use up the DEA's ports and addresses: keep its newest few. */
  private retireOldCrashes(appId: string): void {
    const crashed = this.registry
      .all()
      .filter((c) => c.app_id === appId && c.state === 'CRASHED')
      .sort((a, b) => b.state_timestamp - a.state_timestamp);
    for (const old of crashed.slice(this.cfg.crashed_kept_per_app)) {
      this.registry.delete(old.instance_id);
      void this.containers.get(old.instance_id)?.destroy().catch(() => undefined);
    }
  }

  private exited(i: Instance, extra: Pick<DropletExited, 'reason'> & Partial<DropletExited>): void {
    this.bus.publish(subjects.dropletExited, {
      app_id: i.app_id,
      version: i.version,
      instance_id: i.instance_id,
      index: i.index,
      crash_timestamp: extra.reason === 'CRASHED' ? Math.floor(nowSeconds()) : undefined,
      ...extra,
    });
  }

  private setState(i: Instance, state: InstanceState): void {
    i.state = state;
    i.state_timestamp = nowSeconds();
    this.registry.put(i);
  }

  private async checkDisks(): Promise<void> {
    for (const i of this.registry.all()) {
      if (i.state !== 'RUNNING') continue;
      const c = this.containers.get(i.instance_id);
      if (!c?.process) continue;
      const disk = await c.checkDisk().catch(() => undefined);
      if (!disk?.overQuota) continue;
      const reason = `disk quota exceeded: ${Math.round(disk.usedBytes / 1048576)} MB used of ${Math.round(disk.quotaBytes / 1048576)} MB`;
      this.counters.disk_quota_stops++;
      this.stopping.add(i.instance_id);
      await c.stop({ graceMs: this.cfg.stop_grace_s * 1000, reason }).catch(() => undefined);
      this.stopping.delete(i.instance_id);
      this.crashed(i, { exit_description: reason });
    }
  }

  // ---- routes and logs ----------------------------------------------------------------

  private registerRoutes(i: Instance): void {
    if (i.uris.length > 0) this.publishRoutes(subjects.routerRegister, i, i.uris);
  }

  private registerAllRoutes(): void {
    if (this.mode === 'detached' || this.mode === 'shutting_down') return;
    for (const i of this.registry.all()) if (i.state === 'RUNNING' || i.state === 'EVACUATING') this.registerRoutes(i);
  }

  private publishRoutes(topic: typeof subjects.routerRegister, i: Instance, uris: string[]): void {
    if (uris.length === 0) return;
    this.bus.publish(topic, {
      host: this.hostAddress,
      port: i.host_port,
      uris,
      app_id: i.app_id,
      instance_id: i.instance_id,
      private_instance_id: i.instance_id,
      index: i.index,
      tags: { component: 'dea', dea_id: this.id },
    });
  }

  /** An app's output line onto logs.<app_id> (the container keeps every line in its files). */
  private appLog(i: Instance, stream: 'out' | 'err', line: string): void {
    this.bus.publish(subjects.logs(i.app_id), { app_id: i.app_id, source: 'APP', index: i.index, stream, timestamp: Date.now(), line: line.slice(0, 64 * 1024) });
  }

  // ---- adoption, evacuation, shutdown --------------------------------------------------

  /** A restarted DEA adopts the instances still running in their containers. */
  private async adopt(): Promise<void> {
    const loaded = await this.registry.load();
    if (loaded.problem) this.log.warn({ problem: loaded.problem }, 'ignoring an unreadable instance registry');
    for (const i of this.registry.all()) {
      const container = this.containers.get(i.instance_id);
      const proc = container?.process;
      if (container && proc && (i.state === 'RUNNING' || i.state === 'STARTING' || i.state === 'EVACUATING')) {
        if (i.state === 'EVACUATING') this.setState(i, 'RUNNING');
        this.counters.adopted++;
        await container.attachLogs({
          logLinesPerSecond: i.start.limits.log_rate_lines_per_s ?? this.cfg.log_rate_lines_per_s,
          onLine: (stream, line) => this.appLog(i, stream === 'stdout' ? 'out' : 'err', line),
        });
        void proc.exited.then((exit) => this.onExit(i, container, exit));
        if (i.state === 'STARTING') {
          // Its health check died with the old process; run it again.
          void waitUntilHealthy({
            host: container.address ?? '127.0.0.1',
            port: container.containerPort,
            type: i.start.health_check?.type ?? 'port',
            endpoint: i.start.health_check?.endpoint,
            timeoutMs: (i.start.health_check?.timeout_s ?? this.cfg.health_check_timeout_s) * 1000,
            alive: () => container.process !== null,
          }).then((h) => {
            if (h.healthy && i.state === 'STARTING') {
              this.setState(i, 'RUNNING');
              this.registerRoutes(i);
            }
          });
        }
        this.log.info({ instance_id: i.instance_id, app_id: i.app_id, index: i.index }, 'adopted a running instance');
        continue;
      }
      if (isActive(i)) {
        // It died while the DEA was away: that is a crash the health manager must hear of.
        this.crashed(i, { exit_description: container?.lastExit?.description ?? 'the instance was gone when the DEA restarted' });
      }
      this.registry.delete(i.instance_id);
      await container?.destroy().catch(() => undefined);
    }
    // Containers with no instance record are leftovers.
    for (const c of this.containers.containers()) if (!this.registry.get(c.id)) await c.destroy().catch(() => undefined);
  }

  /** SIGUSR2: report every instance as evacuating, refuse new work, keep serving until each
   *  is stopped by request or the evacuation timeout ends. Resolves when evacuation is over. */
  evacuate(): Promise<void> {
    if (this.mode === 'evacuating') return new Promise((r) => (this.evacuationDone = r));
    this.mode = 'evacuating';
    this.stopStaging?.();
    this.log.info({ timeout_s: this.cfg.evacuation_timeout_s }, 'evacuating');
    this.advertise();
    for (const i of this.registry.all()) {
      if (!isActive(i)) continue;
      i.evacuating = true;
      this.setState(i, 'EVACUATING');
      this.exited(i, { reason: 'DEA_EVACUATION' });
    }
    this.heartbeat();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => finish(), this.cfg.evacuation_timeout_s * 1000);
      const finish = (): void => {
        clearTimeout(timer);
        this.evacuationDone = undefined;
        resolve();
      };
      this.evacuationDone = finish;
      this.checkEvacuationDone();
    });
  }

  private checkEvacuationDone(): void {
    if (this.mode === 'evacuating' && !this.registry.all().some(isActive)) this.evacuationDone?.();
  }

  /** SIGTERM: every instance is stopped and reported DEA_SHUTDOWN. */
  async shutdown(): Promise<void> {
    this.mode = 'shutting_down';
    this.stopStaging?.();
    this.advertise();
    await Promise.all(this.registry.all().map((i) => this.stopInstance(i, 'DEA_SHUTDOWN')));
    await this.registry.flush();
  }

  /** Leaves instances running for the next DEA process to adopt. */
  async detach(): Promise<void> {
    if (this.mode === 'serving') this.mode = 'detached';
    for (const t of this.timers) clearInterval(t);
    clearInterval(this.routeTimer);
    for (const u of this.unsubscribes) u();
    await this.registry.flush();
  }
}

async function stagedStartCommand(home: string): Promise<string | undefined> {
  try {
    const info = parseYaml(await readFile(join(home, 'staging_info.yml'), 'utf8')) as { start_command?: unknown };
    return typeof info?.start_command === 'string' && info.start_command.length > 0 ? info.start_command : undefined;
  } catch {
    return undefined;
  }
}

// The health monitor inside the director (BOSH's health monitor with its resurrector plugin):
// it reads every agent's heartbeats and alerts on the mbus with its own read-only user, and
// every scan_interval_ms looks at each deployment — a VM the CPI no longer has, or an agent
// silent past agent_timeout_ms, is down. Down instances, once a second look confirms them, are
// recreated by a `scan_and_fix` task under the deployment's lock, unless the deployment is
// melting down (analysis.ts) or resurrection is off: then it only alerts. Alerts are events
// (store.addEvent), each raised once per episode. A deployment some task holds the lock of is left alone until it ends.
import { connect, type NatsConnection, type Subscription } from 'nats';
import type { Logger } from 'pino';
import { Alert, Heartbeat } from '../agent/protocol.ts';
import type { Cpi } from '../cpi/types.ts';
import { deploymentLock } from '../director/api.ts';
import type { DirectorConfig } from '../director/config.ts';
import { LockHeldError } from '../director/errors.ts';
import type { MbusCredential } from '../director/mbus.ts';
import type { DirectorStore } from '../director/store.ts';
import type { TaskRunner } from '../director/task-runner.ts';
import { downInstances, meltdownVerdict, pruneDown, unconfirmedDown, type WatchedInstance } from './analysis.ts';

/** The settings key `PUT /resurrection` writes (BOSH's resurrection_paused). */
export const RESURRECTION_PAUSED = 'resurrection_paused';
export const HM_USER = 'health_monitor';

/** What an alert event's context holds. Severity is BOSH's: 1 alert … 4 warning (lower is worse). */
export interface AlertContext {
  severity: number;
  title: string;
  summary: string;
  /** down · meltdown · paused · resurrect · resurrect_failed · agent */
  kind: string;
  [k: string]: unknown;
}

export interface HealthMonitorDeps {
  config: DirectorConfig['health_monitor'];
  store: DirectorStore;
  tasks: TaskRunner;
  cpi: Cpi | undefined;
  credential: MbusCredential;
  log: Logger;
}

export class HealthMonitor {
  private nc: NatsConnection | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly startedAt = Date.now();
  private readonly lastHeartbeat = new Map<string, number>();
  /** deployment → instance uuid → when last seen down (the meltdown window). */
  private readonly lastDown = new Map<string, Map<string, number>>();
  /** deployment → instance uuids alerted down in their current episode. */
  private readonly alertedDown = new Map<string, Set<string>>();
  /** deployments alerted as melting down / paused in their current episode. */
  private readonly alertedHold = new Map<string, 'meltdown' | 'paused'>();
  /** deployment → the last scan_and_fix task queued for it. */
  private readonly lastFix = new Map<string, number>();
  private readonly alertedFailures = new Set<number>();

  constructor(private readonly d: HealthMonitorDeps) {}

  async start(): Promise<void> {
    const c = this.d.credential;
    this.nc = await connect({ servers: [c.url], user: c.user, pass: c.password, name: 'health-monitor', maxReconnectAttempts: -1, reconnectTimeWait: 500 });
    this.listen(this.nc.subscribe('hm.agent.heartbeat.*'), (agentId, data) => {
      if (Heartbeat.safeParse(data).success) this.lastHeartbeat.set(agentId, Date.now());
      else this.d.log.warn({ agent_id: agentId }, 'health monitor: a heartbeat that is not one was dropped');
    });
    this.listen(this.nc.subscribe('hm.agent.alert.*'), (agentId, data) => {
      const alert = Alert.safeParse(data);
      if (!alert.success) return this.d.log.warn({ agent_id: agentId }, 'health monitor: an alert that is not one was dropped');
      void this.agentAlert(agentId, alert.data).catch((err: Error) => this.d.log.error({ err: err.message }, 'health monitor: recording an agent alert'));
    });
    this.schedule();
    this.d.log.info({ agent_timeout_ms: this.d.config.agent_timeout_ms, scan_interval_ms: this.d.config.scan_interval_ms }, 'health monitor started');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    if (this.nc && !this.nc.isClosed()) await this.nc.close();
  }

  /** One look at every deployment (the loop calls it; tests may too). */
  tick(): Promise<void> {
    this.ticking = this.ticking.then(() => this.scanAll()).catch((err: Error) => this.d.log.error({ err: err.message }, 'health monitor: scanning failed'));
    return this.ticking;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick().finally(() => this.schedule()), this.d.config.scan_interval_ms);
  }

  private listen(sub: Subscription, onMessage: (agentId: string, data: unknown) => void): void {
    void (async () => {
      for await (const m of sub) {
        const agentId = m.subject.split('.').slice(3).join('.');
        try {
          onMessage(agentId, JSON.parse(new TextDecoder().decode(m.data)));
        } catch {
          this.d.log.warn({ subject: m.subject }, 'health monitor: a message that is not JSON was dropped');
        }
      }
    })();
  }

  private async alert(deployment: string | null, instance: string | null, context: AlertContext, taskId?: number): Promise<void> {
    await this.d.store.addEvent({ user: HM_USER, action: 'alert', object_type: 'alert', object_name: context.title, deployment, instance, ...(taskId ? { task_id: taskId } : {}), context });
    this.d.log.warn({ deployment, instance, ...context }, 'health monitor alert');
  }

  private async agentAlert(agentId: string, a: Alert): Promise<void> {
    const vm = (await this.d.store.vms()).find((v) => v.agent_id === agentId);
    const inst = vm?.instance_id ? (await this.d.store.instances(vm.deployment)).find((i) => i.id === vm.instance_id) : undefined;
    await this.alert(vm?.deployment ?? null, inst ? `${inst.instance_group}/${inst.idx}` : null, { severity: a.severity, title: a.title, summary: a.summary, kind: 'agent', agent_id: agentId, alert_id: a.id });
  }

  private async scanAll(): Promise<void> {
    const locks = new Set((await this.d.store.locks()).map((l) => l.name));
    const paused = !this.d.config.resurrection || (await this.d.store.setting(RESURRECTION_PAUSED)) === 'true';
    for (const dep of await this.d.store.deployments()) {
      if (this.stopped) return;
      // A task works on it (a deploy creating VMs, a recreate): it leaves the deployment consistent.
      if (locks.has(deploymentLock(dep.name))) continue;
      await this.scanDeployment(dep.name, paused);
    }
  }

  private async scanDeployment(name: string, paused: boolean): Promise<void> {
    const now = Date.now();
    const [instances, vms] = await Promise.all([this.d.store.instances(name), this.d.store.vms(name)]);
    // The CPI is asked about every VM at once: VMs lost together are seen together.
    const looks = instances.map(async (i): Promise<WatchedInstance | undefined> => {
      const vm = vms.find((v) => v.instance_id === i.id);
      if (!vm) return undefined;
      const heartbeat = this.lastHeartbeat.get(vm.agent_id);
      return {
        uuid: i.uuid,
        label: `${i.instance_group}/${i.idx}`,
        agent_id: vm.agent_id,
        vm_cid: vm.cid,
        vm_created_ms: Date.parse(vm.created_at),
        vm_exists: this.d.cpi ? await this.d.cpi.has_vm(vm.cid).catch(() => true) : true,
        ...(heartbeat !== undefined ? { last_heartbeat_ms: heartbeat } : {}),
      };
    });
    const watched = (await Promise.all(looks)).filter((w) => w !== undefined);
    let down = downInstances(watched, now, { agentTimeoutMs: this.d.config.agent_timeout_ms, watchingSinceMs: this.startedAt });
    // A task that took the deployment while we looked may be what removed a VM: look next time.
    if (down.length && (await this.d.store.locks()).some((l) => l.name === deploymentLock(name))) down = [];
    const policy = this.d.config.resurrector;
    const recent = pruneDown(this.lastDown.get(name) ?? new Map<string, number>(), now, policy);
    for (const x of down) recent.set(x.uuid, now);
    this.lastDown.set(name, recent);

    const alerted = this.alertedDown.get(name) ?? new Set<string>();
    for (const uuid of alerted) if (!down.some((x) => x.uuid === uuid)) alerted.delete(uuid);
    const unconfirmed = unconfirmedDown(down, alerted);
    for (const x of down) {
      if (alerted.has(x.uuid)) continue;
      alerted.add(x.uuid);
      await this.alert(name, x.label, { severity: 2, title: `${x.label} is down: ${x.reason === 'missing_vm' ? 'its VM is missing' : 'its agent is unresponsive'}`, summary: x.why, kind: 'down', reason: x.reason });
    }
    this.alertedDown.set(name, alerted);
    if (down.length === 0) {
      this.alertedHold.delete(name);
      return;
    }
    const labels = down.map((x) => x.label).join(', ');
    if (paused) {
      if (this.alertedHold.get(name) !== 'paused') {
        this.alertedHold.set(name, 'paused');
        await this.alert(name, null, { severity: 3, title: `Resurrection is off: not recreating ${labels}`, summary: `${down.length} instance${down.length === 1 ? ' is' : 's are'} down in ${name}; resurrection is off (ingot update-resurrection on, or cloud-check, repairs them)`, kind: 'paused', instances: down.map((x) => x.label) });
      }
      return;
    }
    const verdict = meltdownVerdict(recent, instances.length, now, policy);
    if (verdict.meltdown) {
      if (this.alertedHold.get(name) !== 'meltdown') {
        this.alertedHold.set(name, 'meltdown');
        await this.alert(name, null, {
          severity: 1,
          title: `Skipping resurrection for instances: ${labels}; meltdown`,
          summary: `${verdict.down} of ${verdict.total} instances of ${name} (${Math.round(verdict.share * 100)}%) were down within ${policy.time_threshold} s (thresholds: ${policy.minimum_down_jobs} instances and ${Math.round(policy.percent_threshold * 100)}%): the resurrector holds back; repair with ingot -d ${name} cloud-check`,
          kind: 'meltdown',
          instances: down.map((x) => x.label),
          down: verdict.down,
          total: verdict.total,
        });
      }
      return;
    }
    this.alertedHold.delete(name);
    if (unconfirmed.length > 0) return; // the next look confirms them, or finds the rest of a meltdown
    // A resurrection that failed is tried again only after agent_timeout_ms, not every scan.
    const previous = this.lastFix.has(name) ? await this.d.store.task(this.lastFix.get(name)!) : undefined;
    if (previous?.state === 'error' && previous.ended_at) {
      if (!this.alertedFailures.has(previous.id)) {
        this.alertedFailures.add(previous.id);
        await this.alert(name, null, { severity: 2, title: `Resurrection of ${labels} failed`, summary: `task ${previous.id}: ${previous.result ?? 'no reason given'}; trying again in ${Math.round(this.d.config.agent_timeout_ms / 1000)} s`, kind: 'resurrect_failed', instances: down.map((x) => x.label) }, previous.id);
      }
      if (now - Date.parse(previous.ended_at) < this.d.config.agent_timeout_ms) return;
    }
    let taskId: number;
    try {
      const task = await this.d.tasks.enqueue({
        type: 'scan_and_fix',
        description: `scan and fix ${name}: ${labels}`,
        deployment: name,
        username: HM_USER,
        locks: [deploymentLock(name)],
        params: { instances: down.map((x) => x.uuid) },
      });
      taskId = task.id;
      this.lastFix.set(name, taskId);
    } catch (err) {
      if (err instanceof LockHeldError) return; // a task took the deployment meanwhile: look again next time
      throw err;
    }
    await this.alert(name, null, { severity: 4, title: `Recreating ${labels}`, summary: `the resurrector queued task ${taskId} to recreate ${labels} of ${name}`, kind: 'resurrect', instances: down.map((x) => x.label) }, taskId);
  }
}

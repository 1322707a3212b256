// The runner: carries an app's desired state to the DEAs over NATS, and owns every state
// transition of its instances — start (a new version, every index placed), stop, scale
// (start or stop the highest indices), restart (all at once, or rolling: one index at a
// time, the next only once the new instance RUNs), the health managers' START/STOP when the
// controller agrees, route changes (dea.update) and deletion. Every change of the desired
// state is announced on `droplet.updated` so the HMs re-read it.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { replies, subjects, type Bus, type DeaFindDropletReply, type HmRequest, type LogLine } from '../bus/mod.ts';
import { blobPaths, type UrlSigner } from './auth/signed-urls.ts';
import type { CcConfig } from './config.ts';
import type { AppRecord, ProcessRecord, Store } from './db/mod.ts';
import { errors } from './errors.ts';
import { recordHmRequest } from './app-events.ts';
import { decideStart, decideStop, type DesiredApp } from './hm-requests.ts';
import { KeyedLock } from './locks.ts';
import { appUris, loadRunnable, webProcess } from './lookups.ts';
import type { Placer, Runnable } from './placement.ts';
import type { CredentialBox } from './services/credential-box.ts';
import { quotaGuard, type QuotaGuard } from './quota-guard.ts';
import { contribution, delta, NO_USAGE } from './quotas.ts';
import { planProcessChange, rollingOrder } from './scaling.ts';

export type RestartStrategy = 'recreate' | 'rolling';

export interface RunnerDeps {
  store: Store;
  bus: Bus;
  placer: Placer;
  signer: UrlSigner;
  config: CcConfig;
  log: Logger;
  /** Opens bindings' credentials for the start messages. */
  box: CredentialBox;
}

interface Rollout {
  from: string;
  to: string;
  cancelled: boolean;
}

export class AppRunner {
  private readonly lock = new KeyedLock();
  private readonly rollouts = new Map<string, Rollout>();
  /** Placements in flight, `app/version/index`: an HM START repeated meanwhile is ignored. */
  private readonly placing = new Set<string>();
  private readonly background = new Set<Promise<unknown>>();
  readonly counts = { placed: 0, unplaced: 0, hm_agreed: 0, hm_refused: 0, rollouts: 0 };
  private readonly quotas: QuotaGuard;

  constructor(private readonly d: RunnerDeps) {
    this.quotas = quotaGuard(d.store);
  }

  isRolling(appGuid: string): boolean {
    return this.rollouts.has(appGuid);
  }

  // ---- desired-state changes ------------------------------------------------------------

  /**
   * STOPPED → STARTED: a new version, and every index placed. Starting a started app is a
   * no-op; a start past the space's or org's quota is refused and the app stays STOPPED.
   */
  async start(appGuid: string): Promise<AppRecord> {
    return this.lock.run(appGuid, async () => {
      const app = await this.mustGetApp(appGuid);
      if (app.state === 'STARTED') return app;
      const runnable = await loadRunnable(this.d.store, app, this.d.box);
      if (!runnable) throw errors.noDroplet();
      const started = await this.quotas.guard(app.space_guid, contribution({ ...runnable.process, started: true }), async (tx) =>
        (await tx.apps.update(app.guid, { state: 'STARTED', version: randomUUID() }))!,
      );
      this.changed(started.guid);
      this.apiLog(started.guid, `Starting app ${started.name} with ${runnable.process.instances} instance(s)`);
      this.placeAll({ ...runnable, app: started }, rollingOrder(runnable.process.instances));
      return started;
    });
  }

  /** STARTED → STOPPED: every instance of every version stops. */
  async stop(appGuid: string): Promise<AppRecord> {
    return this.lock.run(appGuid, async () => {
      const app = await this.mustGetApp(appGuid);
      const rollout = this.rollouts.get(appGuid);
      if (rollout) rollout.cancelled = true;
      if (app.state === 'STOPPED') return app;
      const stopped = (await this.d.store.apps.update(app.guid, { state: 'STOPPED' }))!;
      this.d.bus.publish(subjects.deaStop, { app_id: app.guid });
      this.changed(app.guid);
      this.apiLog(app.guid, `Stopping app ${app.name}`);
      return stopped;
    });
  }

  /**
   * A new version for every instance. `recreate` stops all, then starts all; `rolling`
   * replaces one index at a time in the background and the app never goes dark.
   */
  async restart(appGuid: string, strategy: RestartStrategy): Promise<AppRecord> {
    return this.lock.run(appGuid, async () => {
      const app = await this.mustGetApp(appGuid);
      if (this.rollouts.has(appGuid)) throw errors.conflict('A rolling restart of this app is in progress');
      const runnable = await loadRunnable(this.d.store, app, this.d.box);
      if (!runnable) throw errors.noDroplet();
      if (strategy === 'rolling' && app.state === 'STARTED') {
        const next = (await this.d.store.apps.update(app.guid, { version: randomUUID() }))!;
        this.beginRollout({ ...runnable, app: next }, app.version);
        this.changed(app.guid);
        return next;
      }
      // A stopped app restarted starts: its instances count toward the quotas from now.
      const adds = app.state === 'STARTED' ? NO_USAGE : contribution({ ...runnable.process, started: true });
      const next = await this.quotas.guard(app.space_guid, adds, async (tx) => {
        if (app.state === 'STARTED') this.d.bus.publish(subjects.deaStop, { app_id: app.guid });
        return (await tx.apps.update(app.guid, { state: 'STARTED', version: randomUUID() }))!;
      });
      this.changed(app.guid);
      this.apiLog(app.guid, `Restarting app ${app.name}`);
      this.placeAll({ ...runnable, app: next }, rollingOrder(runnable.process.instances));
      return next;
    });
  }

  /** Changes instances, memory or disk of the web process and carries it to the instances. */
  async scale(appGuid: string, change: { instances?: number; memory_in_mb?: number; disk_in_mb?: number }): Promise<ProcessRecord> {
    return this.lock.run(appGuid, async () => {
      const app = await this.mustGetApp(appGuid);
      const before = await webProcess(this.d.store, appGuid);
      if (!before) throw errors.notFound('Process');
      const after = { ...before, ...definedOnly(change) };
      const plan = planProcessChange(app.state === 'STARTED', before, after);
      if (plan.kind !== 'none' && this.rollouts.has(appGuid)) throw errors.conflict('A rolling restart of this app is in progress; scale when it ends');
      // What the scale adds is read again under the quota lock: another controller may have
      // scaled or stopped the app since, and a stale `before` could undercount it.
      const adds = async (tx: Store) => {
        const current = (await webProcess(tx, appGuid)) ?? before;
        const started = (await tx.apps.get(appGuid))?.state === 'STARTED';
        return delta(contribution({ ...current, started }), contribution({ ...current, ...definedOnly(change), started }));
      };
      const updated = await this.quotas.guard(app.space_guid, adds, async (tx) => (await tx.processes.update(before.guid, definedOnly(change)))!);
      if (before.instances !== updated.instances) this.changed(appGuid);
      if (plan.kind === 'none') return updated;
      this.apiLog(appGuid, `Scaling app ${app.name}: ${before.instances}→${updated.instances} instances, ${updated.memory_in_mb} MB, ${updated.disk_in_mb} MB disk`);
      if (plan.kind === 'scale') {
        if (plan.plan.stop.length) this.d.bus.publish(subjects.deaStop, { app_id: appGuid, indices: plan.plan.stop });
        if (plan.plan.start.length) {
          const runnable = await loadRunnable(this.d.store, app, this.d.box);
          if (runnable) this.placeAll(runnable, plan.plan.start);
        }
        return updated;
      }
      // New limits: the instances are replaced under a new version.
      const runnable = await loadRunnable(this.d.store, app, this.d.box);
      this.d.bus.publish(subjects.deaStop, { app_id: appGuid });
      const next = (await this.d.store.apps.update(appGuid, { version: randomUUID() }))!;
      this.changed(appGuid);
      if (runnable) this.placeAll({ ...runnable, app: next, process: updated }, rollingOrder(updated.instances));
      return updated;
    });
  }

  /** The app's routes changed: running instances learn their new URIs without a restart. */
  async routesChanged(appGuid: string): Promise<void> {
    const app = await this.d.store.apps.get(appGuid);
    if (!app || app.state !== 'STARTED') return;
    this.d.bus.publish(subjects.deaUpdate, { app_id: appGuid, uris: await appUris(this.d.store, appGuid) });
  }

  /** Stops everything of an app that is being deleted; the caller deletes its rows. */
  async remove(appGuid: string, fn: () => Promise<void>): Promise<void> {
    await this.lock.run(appGuid, async () => {
      const rollout = this.rollouts.get(appGuid);
      if (rollout) rollout.cancelled = true;
      this.d.bus.publish(subjects.deaStop, { app_id: appGuid });
      await fn();
      this.changed(appGuid);
    });
  }

  // ---- health managers ------------------------------------------------------------------

  async handleHmRequest(req: HmRequest): Promise<void> {
    const app = await this.d.store.apps.get(req.app_id);
    const desired = await this.desired(app);
    if (req.op === 'START') {
      const decision = decideStart(desired, req);
      if (!decision.act) return this.refused(req, decision.reason);
      const runnable = app && (await loadRunnable(this.d.store, app, this.d.box));
      if (!runnable) return this.refused(req, 'the app cannot run (no staged droplet)');
      this.agreed(req, decision);
      this.placeAll(runnable, decision.indices ?? []);
      return;
    }
    // STOP by instance id needs the instances as the DEAs see them, to tell a duplicate
    // (safe to stop) from an instance the app still needs.
    let observed: DeaFindDropletReply[] = [];
    if (desired && desired.state === 'STARTED' && req.version === desired.version && req.instance_ids?.length) {
      observed = await this.find(req.app_id, {});
    }
    const decision = decideStop(desired, req, observed);
    if (!decision.act) return this.refused(req, decision.reason);
    this.agreed(req, decision);
    this.d.bus.publish(subjects.deaStop, {
      app_id: req.app_id,
      ...(decision.version ? { version: decision.version } : {}),
      ...(decision.indices ? { indices: decision.indices } : {}),
      ...(decision.instance_ids ? { instance_ids: decision.instance_ids } : {}),
    });
  }

  async desired(app: AppRecord | undefined): Promise<DesiredApp | undefined> {
    if (!app) return undefined;
    const process = await webProcess(this.d.store, app.guid);
    return {
      state: app.state,
      version: app.version,
      instances: process?.instances ?? 0,
      has_droplet: app.droplet_guid !== null,
      rolling: this.rollouts.has(app.guid),
    };
  }

  // ---- observation ----------------------------------------------------------------------

  /** Instances as the DEAs report them (dea.find.droplet), gathered for the find window. */
  async find(
    appGuid: string,
    filter: { version?: string; indices?: number[]; states?: Array<DeaFindDropletReply['state']>; include_stats?: boolean },
    opts: { windowMs?: number; max?: number } = {},
  ): Promise<DeaFindDropletReply[]> {
    return this.d.bus.requestMany(subjects.deaFindDroplet, { app_id: appGuid, ...filter }, replies.deaFindDroplet, {
      windowMs: opts.windowMs ?? this.d.config.placement.find_window_ms,
      ...(opts.max !== undefined ? { max: opts.max } : {}),
    });
  }

  /** Waits for the placements and rollouts in flight (drain). */
  async settle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  /** Cancels rollouts (stop). */
  cancelAll(): void {
    for (const r of this.rollouts.values()) r.cancelled = true;
  }

  // ---- internals ------------------------------------------------------------------------

  private placeAll(runnable: Runnable, indices: number[]): void {
    const version = runnable.app.version;
    for (const index of indices) {
      const key = `${runnable.app.guid}/${version}/${index}`;
      if (this.placing.has(key)) continue;
      this.placing.add(key);
      this.track(this.placeOne(runnable, index).finally(() => this.placing.delete(key)));
    }
  }

  private async placeOne(runnable: Runnable, index: number): Promise<boolean> {
    const { app } = runnable;
    const placed = await this.d.placer.place(
      runnable,
      { index, version: app.version, dropletUri: this.dropletUri(runnable.droplet.guid) },
      async () => {
        // Overtaken by a stop, restart, scale down or deletion meanwhile: send nothing.
        const now = await this.d.store.apps.get(app.guid);
        const process = now && (await webProcess(this.d.store, app.guid));
        return !!now && now.state === 'STARTED' && now.version === app.version && !!process && index < process.instances;
      },
    );
    if (placed === 'overtaken') return false;
    if (placed === 'no_dea') {
      this.counts.unplaced++;
      this.apiLog(app.guid, `No DEA could run instance ${index} of ${app.name}; it will be retried when the health manager asks`, 'err');
      return false;
    }
    this.counts.placed++;
    return true;
  }

  private beginRollout(runnable: Runnable, from: string): void {
    const rollout: Rollout = { from, to: runnable.app.version, cancelled: false };
    this.rollouts.set(runnable.app.guid, rollout);
    this.counts.rollouts++;
    this.track(
      this.roll(runnable, rollout).finally(() => {
        this.rollouts.delete(runnable.app.guid);
        // The HMs re-read the app once the rollout no longer owns its instances.
        this.changed(runnable.app.guid);
      }),
    );
  }

  private async roll(runnable: Runnable, rollout: Rollout): Promise<void> {
    const { app } = runnable;
    this.apiLog(app.guid, `Restarting app ${app.name}, one instance at a time`);
    const timeoutMs = this.d.config.rolling_instance_timeout_s * 1000;
    for (const index of rollingOrder(runnable.process.instances)) {
      if (rollout.cancelled) return;
      const placed = await this.placeOne(runnable, index);
      if (rollout.cancelled) return;
      if (!placed) {
        this.apiLog(app.guid, `Rolling restart stopped at instance ${index}: no DEA could run it`, 'err');
        return;
      }
      const running = await this.waitRunning(app.guid, rollout.to, index, timeoutMs, rollout);
      if (rollout.cancelled) return;
      if (!running) {
        this.apiLog(app.guid, `Rolling restart stopped: instance ${index} of the new version did not run within ${timeoutMs / 1000} s`, 'err');
        return;
      }
      this.d.bus.publish(subjects.deaStop, { app_id: app.guid, version: rollout.from, indices: [index] });
    }
    this.apiLog(app.guid, `Rolling restart of ${app.name} finished`);
  }

  private async waitRunning(appGuid: string, version: string, index: number, timeoutMs: number, rollout: Rollout): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !rollout.cancelled) {
      const found = await this.find(appGuid, { version, indices: [index], states: ['RUNNING'] }, { windowMs: 500, max: 1 });
      if (found.length > 0) return true;
    }
    return false;
  }

  private dropletUri(dropletGuid: string): string {
    return this.d.signer.sign('GET', blobPaths.dropletDownload(dropletGuid), this.d.config.signed_url_ttl_s);
  }

  private async mustGetApp(guid: string): Promise<AppRecord> {
    const app = await this.d.store.apps.get(guid);
    if (!app) throw errors.notFound('App');
    return app;
  }

  private changed(appGuid: string): void {
    this.d.bus.publish(subjects.dropletUpdated, { app_id: appGuid });
  }

  private agreed(req: HmRequest, decision: { indices?: number[]; instance_ids?: string[]; partial?: string }): void {
    this.counts.hm_agreed++;
    this.d.log.info({ app_id: req.app_id, op: req.op, reason: req.reason, indices: decision.indices, instance_ids: decision.instance_ids, note: decision.partial }, 'hm request agreed');
    this.track(recordHmRequest(this.d.store, req, decision));
  }

  private refused(req: HmRequest, why: string): void {
    this.counts.hm_refused++;
    this.d.log.info({ app_id: req.app_id, op: req.op, version: req.version, reason: req.reason, refused: why }, 'hm request refused');
  }

  /** Background work (placements, rollouts): logged when it fails, awaited by settle(). */
  private track(p: Promise<unknown>): void {
    const tracked: Promise<unknown> = p
      .catch((err: unknown) => this.d.log.error({ err: err instanceof Error ? err.stack : String(err) }, 'background work failed'))
      .finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }


  apiLog(appGuid: string, line: string, stream: LogLine['stream'] = 'out'): void {
    try {
      this.d.bus.publish(subjects.logs(appGuid), { app_id: appGuid, source: 'API', stream, timestamp: Date.now(), line });
    } catch (err) {
      this.d.log.warn({ app_id: appGuid, err: (err as Error).message }, 'publishing an API log line failed');
    }
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}


// The real state of the world, as the DEAs tell it: every instance heard of in a heartbeat
// (`dea.heartbeat`, a DEA's whole list each time) or an exit (`droplet.exited`), and the
// crashes of each index. It only records; the analysis judges.
import type { DeaHeartbeat, DropletExited, InstanceState } from '../bus/mod.ts';
import { isStableSince } from './backoff.ts';
import { crashKey, type BackoffPolicy, type CrashRecord, type ObservedInstance, type RealSnapshot } from './types.ts';

/** Instance ids remembered per crash record: enough to recognise a repeated exit message. */
const COUNTED_IDS_KEPT = 16;

const ACTIVE: ReadonlySet<InstanceState> = new Set(['STARTING', 'RUNNING', 'EVACUATING']);

export class RealState {
  private readonly instances = new Map<string, ObservedInstance>();
  /** What each DEA listed in its last heartbeat: an instance it stops listing is gone. */
  private readonly byDea = new Map<string, Set<string>>();
  private readonly crashes = new Map<string, CrashRecord>();
  private listeningSince: number;
  readonly counts = { heartbeats: 0, crashes: 0, exits: 0 };

  constructor(
    now: number,
    private readonly backoff: BackoffPolicy,
  ) {
    this.listeningSince = now;
  }

  /** After a gap in hearing (a NATS reconnect), silence proves nothing until a timeout has passed again. */
  relisten(now: number): void {
    this.listeningSince = now;
  }

  /** Records a DEA's heartbeat; returns the apps it mentions (so unknown ones can be looked up). */
  onHeartbeat(hb: DeaHeartbeat, now: number): Set<string> {
    this.counts.heartbeats++;
    const listed = new Set<string>();
    const apps = new Set<string>();
    for (const h of hb.instances) {
      listed.add(h.instance_id);
      apps.add(h.app_id);
      const known = this.instances.get(h.instance_id);
      // CRASHED is final: a heartbeat sent before the crash must not revive the instance.
      if (known?.state === 'CRASHED') {
        known.heard_at = now;
        known.dea_id = hb.dea_id;
        continue;
      }
      const i: ObservedInstance = known ?? {
        app_id: h.app_id,
        version: h.version,
        instance_id: h.instance_id,
        index: h.index,
        state: h.state,
        state_timestamp: h.state_timestamp,
        dea_id: hb.dea_id,
        first_heard_at: now,
        heard_at: now,
        active_heard_at: undefined,
        running_since: undefined,
        evacuating_since: undefined,
      };
      Object.assign(i, { app_id: h.app_id, version: h.version, index: h.index, state: h.state, state_timestamp: h.state_timestamp, dea_id: hb.dea_id, heard_at: now });
      this.noteState(i, now);
      this.instances.set(i.instance_id, i);
    }
    for (const id of this.byDea.get(hb.dea_id) ?? []) {
      if (!listed.has(id) && this.instances.get(id)?.dea_id === hb.dea_id) this.instances.delete(id);
    }
    this.byDea.set(hb.dea_id, listed);
    return apps;
  }

  /** Records an exit: a crash is counted once per instance; a stop or shutdown forgets the instance. */
  onExited(msg: DropletExited, now: number): void {
    this.counts.exits++;
    if (msg.reason === 'STOPPED' || msg.reason === 'DEA_SHUTDOWN') {
      // Gone without a successor: with no sign of life left, the analysis starts the index
      // again at once if it is still desired (and leaves it alone if the stop was wanted).
      this.instances.delete(msg.instance_id);
      return;
    }
    const i = this.instances.get(msg.instance_id) ?? {
      app_id: msg.app_id,
      version: msg.version,
      instance_id: msg.instance_id,
      index: msg.index,
      state: 'STARTING' as InstanceState,
      state_timestamp: now / 1000,
      dea_id: undefined,
      first_heard_at: now,
      heard_at: now,
      active_heard_at: undefined,
      running_since: undefined,
      evacuating_since: undefined,
    };
    i.heard_at = now;
    if (msg.reason === 'DEA_EVACUATION') {
      if (i.state === 'CRASHED') return;
      i.state = 'EVACUATING';
      i.state_timestamp = now / 1000;
      this.noteState(i, now);
      this.instances.set(i.instance_id, i);
      return;
    }
    // CRASHED. An instance that ran the reset period before this crash made its index
    // stable again: this is a first crash, whatever came before.
    const ranStably = i.running_since !== undefined && now - i.running_since >= this.backoff.reset_after_ms;
    if (i.state !== 'CRASHED') {
      i.state = 'CRASHED';
      i.state_timestamp = msg.crash_timestamp ?? now / 1000;
      i.running_since = undefined;
      i.evacuating_since = undefined;
    }
    this.instances.set(i.instance_id, i);
    const key = crashKey(msg.app_id, msg.version, msg.index);
    if (ranStably) this.crashes.delete(key);
    const record = this.crashes.get(key) ?? { app_id: msg.app_id, version: msg.version, index: msg.index, count: 0, first_crash_at: now, last_crash_at: now, instance_ids: [] };
    if (record.instance_ids.includes(msg.instance_id)) return;
    record.count++;
    record.last_crash_at = now;
    record.instance_ids = [...record.instance_ids, msg.instance_id].slice(-COUNTED_IDS_KEPT);
    this.crashes.set(key, record);
    this.counts.crashes++;
  }

  /**
   * Forgets what can no longer matter: instances unheard for `forgetAfterMs`, crash records of
   * an index that has been stable since, of a version no longer wanted, or old enough that
   * any back-off is over.
   */
  prune(now: number, forgetAfterMs: number, wanted: (appId: string, version: string) => boolean): void {
    const backoff = this.backoff;
    for (const [id, i] of this.instances) if (now - i.heard_at >= forgetAfterMs) this.instances.delete(id);
    const byIndex = new Map<string, ObservedInstance[]>();
    for (const i of this.instances.values()) {
      const k = `${i.app_id}/${i.index}`;
      byIndex.set(k, [...(byIndex.get(k) ?? []), i]);
    }
    for (const [key, r] of this.crashes) {
      const sameIndex = byIndex.get(`${r.app_id}/${r.index}`) ?? [];
      const over = now - r.last_crash_at > backoff.max_delay_ms + backoff.reset_after_ms;
      // A version not (yet) wanted may be one the HM has not re-read since a restart: its
      // crashes are kept a while in case it turns out to be the current one.
      const unwanted = !wanted(r.app_id, r.version) && now - r.last_crash_at >= forgetAfterMs;
      if (over || unwanted || isStableSince(r, sameIndex, now, backoff)) this.crashes.delete(key);
    }
  }

  snapshot(): RealSnapshot {
    return {
      instances: [...this.instances.values()].map((i) => ({ ...i })),
      crashes: new Map([...this.crashes].map(([k, r]) => [k, { ...r, instance_ids: [...r.instance_ids] }])),
      listening_since: this.listeningSince,
    };
  }

  private noteState(i: ObservedInstance, now: number): void {
    if (ACTIVE.has(i.state)) i.active_heard_at = now;
    if (i.state === 'RUNNING') i.running_since ??= now;
    else if (i.state !== 'EVACUATING') i.running_since = undefined;
    if (i.state === 'EVACUATING') i.evacuating_since ??= now;
    else i.evacuating_since = undefined;
  }
}

// An app's audit events, beside its other records, so clients can show what happened to it
// and why (GET /v3/audit_events): the crashes reported on `droplet.exited` (reason CRASHED)
// and the health managers' START and STOP requests this controller agreed to and carried
// out. Bounded per app: a flapping app must not fill the database.
import type { DropletExited, HmRequest } from '../bus/mod.ts';
import type { Store } from './db/mod.ts';
import { newGuid, now } from './ids.ts';

export const MAX_EVENTS_PER_APP = 500;

export const APP_EVENT_TYPES = {
  crash: 'audit.app.process.crash',
  hmStart: 'audit.app.process.hm_start',
  hmStop: 'audit.app.process.hm_stop',
} as const;

export async function recordCrash(store: Store, msg: DropletExited): Promise<void> {
  if (msg.reason !== 'CRASHED') return;
  await record(store, msg.app_id, APP_EVENT_TYPES.crash, 'dea', [
    { index: msg.index, instance: msg.instance_id, version: msg.version, reason: msg.reason, exit_status: msg.exit_status ?? null, exit_description: msg.exit_description ?? null },
  ]);
}

/**
 * A health manager's request as this controller carried it out: one event per index started,
 * per instance (or index) stopped, or one for a whole version stopped. `reason` is the HM's.
 */
export async function recordHmRequest(store: Store, req: HmRequest, applied: { indices?: number[]; instance_ids?: string[] }): Promise<void> {
  const base = { version: req.version, reason: req.reason };
  if (req.op === 'START') {
    await record(store, req.app_id, APP_EVENT_TYPES.hmStart, 'health_manager', (applied.indices ?? []).map((index) => ({ index, ...base })));
    return;
  }
  const data = applied.instance_ids
    ? applied.instance_ids.map((instance) => ({ instance, ...base }))
    : applied.indices
      ? applied.indices.map((index) => ({ index, ...base }))
      : [base];
  await record(store, req.app_id, APP_EVENT_TYPES.hmStop, 'health_manager', data);
}

async function record(store: Store, appGuid: string, type: string, actor: string, data: Array<Record<string, unknown>>): Promise<void> {
  if (data.length === 0) return;
  const app = await store.apps.get(appGuid);
  if (!app) return;
  for (const d of data) {
    const at = now();
    await store.appEvents.insert({ guid: newGuid(), app_guid: app.guid, type, actor, data: d, created_at: at, updated_at: at });
  }
  const excess = (await store.appEvents.count({ app_guid: app.guid })) - MAX_EVENTS_PER_APP;
  if (excess > 0) {
    const oldest = await store.appEvents.list({ app_guid: app.guid }, { orderBy: { column: 'created_at' }, limit: excess });
    await store.appEvents.delete({ guid: oldest.map((e) => e.guid) });
  }
}

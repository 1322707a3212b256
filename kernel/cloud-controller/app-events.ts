// The platform's own events about apps, recorded in the audit trail (audit.ts): the crashes
// reported on `droplet.exited` (reason CRASHED; actor: the DEA) and the health managers'
// START and STOP requests this controller agreed to and carried out (actor: the health
// manager).
import type { DropletExited, HmRequest } from '../bus/mod.ts';
import { AUDIT, auditor, SYSTEM_ACTORS, type Actor, type AuditType } from './audit.ts';
import type { Store } from './db/mod.ts';

export const APP_EVENT_TYPES = {
  crash: AUDIT.appCrash,
  hmStart: AUDIT.appHmStart,
  hmStop: AUDIT.appHmStop,
} as const;

export async function recordCrash(store: Store, msg: DropletExited): Promise<void> {
  if (msg.reason !== 'CRASHED') return;
  await record(store, msg.app_id, APP_EVENT_TYPES.crash, SYSTEM_ACTORS.dea, [
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
    await record(store, req.app_id, APP_EVENT_TYPES.hmStart, SYSTEM_ACTORS.healthManager, (applied.indices ?? []).map((index) => ({ index, ...base })));
    return;
  }
  const data = applied.instance_ids
    ? applied.instance_ids.map((instance) => ({ instance, ...base }))
    : applied.indices
      ? applied.indices.map((index) => ({ index, ...base }))
      : [base];
  await record(store, req.app_id, APP_EVENT_TYPES.hmStop, SYSTEM_ACTORS.healthManager, data);
}

async function record(store: Store, appGuid: string, type: AuditType, actor: Actor, data: Array<Record<string, unknown>>): Promise<void> {
  if (data.length === 0) return;
  const app = await store.apps.get(appGuid);
  if (!app) return;
  const audit = auditor(store);
  const target = await audit.app(app);
  for (const d of data) await audit.record({ type, actor, target, data: d });
}

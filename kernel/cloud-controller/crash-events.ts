// Crashes reported on `droplet.exited` (reason CRASHED), kept as the app's audit events so
// clients can show what died, when and why. Bounded per app: a flapping app must not fill the
// database.
import type { DropletExited } from '../bus/mod.ts';
import type { Store } from './db/mod.ts';
import { newGuid, now } from './ids.ts';

export const MAX_EVENTS_PER_APP = 500;

export async function recordCrash(store: Store, msg: DropletExited): Promise<void> {
  if (msg.reason !== 'CRASHED') return;
  const app = await store.apps.get(msg.app_id);
  if (!app) return;
  const at = now();
  await store.appEvents.insert({
    guid: newGuid(),
    app_guid: app.guid,
    type: 'audit.app.process.crash',
    actor: 'dea',
    data: { index: msg.index, instance: msg.instance_id, version: msg.version, reason: msg.reason, exit_status: msg.exit_status ?? null, exit_description: msg.exit_description ?? null },
    created_at: at,
    updated_at: at,
  });
  const excess = (await store.appEvents.count({ app_guid: app.guid })) - MAX_EVENTS_PER_APP;
  if (excess > 0) {
    const oldest = await store.appEvents.list({ app_guid: app.guid }, { orderBy: { column: 'created_at' }, limit: excess });
    await store.appEvents.delete({ guid: oldest.map((e) => e.guid) });
  }
}

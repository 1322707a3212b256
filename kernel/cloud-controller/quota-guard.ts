// Where quotas are enforced: a change that adds memory, instances, routes or service instances in a space runs
// through `guard(spaceGuid, change, apply)`, which reads the space's and its org's quotas and
// usage, refuses with 422 naming the quota (quotas.ts), and otherwise applies the change.
// The check and the change run in one transaction holding the org's lock in the database
// (Store.locked), so two changes in the org — on this controller or on another sharing the
// database — cannot both pass on the same usage. This controller's own requests for the org
// also queue in memory first, so that they do not each hold a connection while they wait.
import type { Store } from './db/mod.ts';
import { errors } from './errors.ts';
import { KeyedLock } from './locks.ts';
import { perStore } from './per-store.ts';
import { adds, checkQuotas, usageOf, type AppliedQuota, type Usage } from './quotas.ts';

export interface QuotaGuard {
  /**
   * Runs `apply` if `change` fits the space's and org's quotas; 422 otherwise, nothing applied.
   * `change` may be read under the lock (from the store it is given) when it depends on state
   * another controller may be changing. Both must use the store they are given.
   */
  guard<T>(spaceGuid: string, change: Usage | ((store: Store) => Promise<Usage>), apply: (store: Store) => Promise<T>): Promise<T>;
  /** What the spaces use now (started apps' memory and instances, routes, service instances). */
  usage(spaceGuids: string[]): Promise<Usage>;
}

/** The guard over this store; one per store, so every caller shares its lock. */
export const quotaGuard = perStore(makeGuard);

const increases = (change: Usage): boolean =>
  change.memory_in_mb > 0 || change.instances > 0 || change.routes > 0 || adds(change, 'service_instances') > 0;

async function usage(store: Store, spaceGuids: string[]): Promise<Usage> {
  const apps = await store.apps.list({ space_guid: spaceGuids });
  const started = new Set(apps.filter((a) => a.state === 'STARTED').map((a) => a.guid));
  const [processes, routes, instances] = await Promise.all([
    store.processes.list({ app_guid: [...started] }),
    store.routes.count({ space_guid: spaceGuids }),
    store.serviceInstances.count({ space_guid: spaceGuids }),
  ]);
  return usageOf(processes.map((p) => ({ started: true, instances: p.instances, memory_in_mb: p.memory_in_mb })), routes, instances);
}

async function applied(store: Store, spaceGuid: string): Promise<AppliedQuota[]> {
  const space = await store.spaces.get(spaceGuid);
  if (!space) return [];
  const org = await store.organizations.get(space.organization_guid);
  const out: AppliedQuota[] = [];
  const spaceQuota = space.quota_guid ? await store.spaceQuotas.get(space.quota_guid) : undefined;
  if (spaceQuota) out.push({ scope: 'space', name: spaceQuota.name, limits: spaceQuota, usage: await usage(store, [space.guid]) });
  const orgQuota = org?.quota_guid ? await store.organizationQuotas.get(org.quota_guid) : undefined;
  if (orgQuota) {
    const spaces = (await store.spaces.list({ organization_guid: space.organization_guid })).map((s) => s.guid);
    out.push({ scope: 'organization', name: orgQuota.name, limits: orgQuota, usage: await usage(store, spaces) });
  }
  return out;
}

function makeGuard(store: Store): QuotaGuard {
  const lock = new KeyedLock();
  return {
    usage: (spaceGuids) => usage(store, spaceGuids),
    async guard(spaceGuid, change, apply) {
      if (typeof change !== 'function' && !increases(change)) return apply(store);
      const org = (await store.spaces.get(spaceGuid))?.organization_guid ?? spaceGuid;
      return lock.run(org, () =>
        store.locked(`quota:${org}`, async (tx) => {
          const adding = typeof change === 'function' ? await change(tx) : change;
          if (increases(adding)) {
            const refusal = checkQuotas(await applied(tx, spaceGuid), adding);
            if (refusal) throw errors.quotaExceeded(refusal);
          }
          return apply(tx);
        }),
      );
    },
  };
}

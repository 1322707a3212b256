// Where quotas are enforced: a change that adds memory, instances, routes or service instances in a space runs
// through `guard(spaceGuid, change, apply)`, which reads the space's and its org's quotas and
// usage, refuses with 422 naming the quota (quotas.ts), and otherwise applies the change —
// the check and the change under one lock per org, so two changes in the org cannot both
// pass on the same usage. The lock is this controller's: controllers sharing a database can
// still race by one change (see API.md).
import type { Store } from './db/mod.ts';
import { errors } from './errors.ts';
import { KeyedLock } from './locks.ts';
import { perStore } from './per-store.ts';
import { adds, checkQuotas, usageOf, type AppliedQuota, type Usage } from './quotas.ts';

export interface QuotaGuard {
  /** Runs `apply` if `change` fits the space's and org's quotas; 422 otherwise, nothing applied. */
  guard<T>(spaceGuid: string, change: Usage, apply: () => Promise<T>): Promise<T>;
  /** What the spaces use now (started apps' memory and instances, routes, service instances). */
  usage(spaceGuids: string[]): Promise<Usage>;
}

/** The guard over this store; one per store, so every caller shares its lock. */
export const quotaGuard = perStore(makeGuard);

function makeGuard(store: Store): QuotaGuard {
  const lock = new KeyedLock();

  const usage = async (spaceGuids: string[]): Promise<Usage> => {
    const apps = await store.apps.list({ space_guid: spaceGuids });
    const started = new Set(apps.filter((a) => a.state === 'STARTED').map((a) => a.guid));
    const [processes, routes, instances] = await Promise.all([
      store.processes.list({ app_guid: [...started] }),
      store.routes.count({ space_guid: spaceGuids }),
      store.serviceInstances.count({ space_guid: spaceGuids }),
    ]);
    return usageOf(processes.map((p) => ({ started: true, instances: p.instances, memory_in_mb: p.memory_in_mb })), routes, instances);
  };

  const applied = async (spaceGuid: string): Promise<AppliedQuota[]> => {
    const space = await store.spaces.get(spaceGuid);
    if (!space) return [];
    const org = await store.organizations.get(space.organization_guid);
    const out: AppliedQuota[] = [];
    const spaceQuota = space.quota_guid ? await store.spaceQuotas.get(space.quota_guid) : undefined;
    if (spaceQuota) out.push({ scope: 'space', name: spaceQuota.name, limits: spaceQuota, usage: await usage([space.guid]) });
    const orgQuota = org?.quota_guid ? await store.organizationQuotas.get(org.quota_guid) : undefined;
    if (orgQuota) {
      const spaces = (await store.spaces.list({ organization_guid: space.organization_guid })).map((s) => s.guid);
      out.push({ scope: 'organization', name: orgQuota.name, limits: orgQuota, usage: await usage(spaces) });
    }
    return out;
  };

  return {
    usage,
    async guard(spaceGuid, change, apply) {
      if (change.memory_in_mb <= 0 && change.instances <= 0 && change.routes <= 0 && adds(change, 'service_instances') <= 0) return apply();
      const space = await store.spaces.get(spaceGuid);
      return lock.run(space?.organization_guid ?? spaceGuid, async () => {
        const refusal = checkQuotas(await applied(spaceGuid), change);
        if (refusal) throw errors.quotaExceeded(refusal);
        return apply();
      });
    },
  };
}

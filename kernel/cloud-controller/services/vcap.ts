// What an app sees of its bindings: the `services` of dea.<id>.start (the DEA renders them as
// VCAP_SERVICES) and the VCAP_SERVICES of GET /v3/apps/:guid/env, both from the app's current
// app bindings — so a binding reaches the app at its next start, as in Cloud Foundry. A binding
// whose asynchronous create has not succeeded has no credentials yet and is left out.
import type { ServiceCredentials } from '../../bus/mod.ts';
import type { Store } from '../db/mod.ts';
import type { CredentialBox } from './credential-box.ts';

/** CF's label for a user-provided instance. */
export const USER_PROVIDED = 'user-provided';

/** One entry per app binding: CF's VCAP_SERVICES fields (the DEA reads name, label, tags, plan, credentials). */
export async function appServices(store: Store, box: CredentialBox, appGuid: string): Promise<ServiceCredentials[]> {
  const bindings = (await store.serviceBindings.list({ app_guid: appGuid, type: 'app' })).filter((b) => b.operation_type !== 'create' || b.operation_state === 'succeeded');
  if (bindings.length === 0) return [];
  const instances = new Map((await store.serviceInstances.list({ guid: bindings.map((b) => b.instance_guid) })).map((i) => [i.guid, i]));
  const plans = new Map((await store.servicePlans.list({ guid: [...instances.values()].flatMap((i) => (i.plan_guid ? [i.plan_guid] : [])) })).map((p) => [p.guid, p]));
  const offerings = new Map((await store.serviceOfferings.list({ guid: [...new Set([...plans.values()].map((p) => p.offering_guid))] })).map((o) => [o.guid, o]));
  const out: ServiceCredentials[] = [];
  for (const b of bindings) {
    const instance = instances.get(b.instance_guid);
    if (!instance) continue;
    const plan = instance.plan_guid ? plans.get(instance.plan_guid) : undefined;
    const offering = plan && offerings.get(plan.offering_guid);
    out.push({
      name: b.name ?? instance.name,
      label: offering?.name ?? USER_PROVIDED,
      tags: [...(offering?.tags ?? []), ...instance.tags],
      ...(plan ? { plan: plan.name } : {}),
      credentials: box.open(b.credentials),
      instance_guid: instance.guid,
      instance_name: instance.name,
      binding_guid: b.guid,
      binding_name: b.name,
      syslog_drain_url: b.syslog_drain_url,
      volume_mounts: [],
    });
  }
  return out;
}

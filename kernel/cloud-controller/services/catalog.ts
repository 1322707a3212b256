// A broker's catalog (OSB `GET /v2/catalog`): validated once as it arrives — every problem
// named by its path — and mirrored into service offerings and plans. Offerings and plans keep
// their guids across fetches (matched by the broker's ids); those gone from the catalog are
// removed unless instances still use them (a plan in use stays, so its instances can be
// deprovisioned).
import { z } from 'zod';
import type { ServiceBrokerRecord, ServiceOfferingRecord, ServicePlanRecord, Store } from '../db/mod.ts';
import { newGuid, now } from '../ids.ts';

const plan = z
  .object({
    id: z.string().min(1),
    name: z.string().min(1),
    description: z.string(),
    free: z.boolean().default(true),
    bindable: z.boolean().optional(),
    metadata: z.record(z.unknown()).default({}),
  })
  .passthrough();

const offering = z
  .object({
    id: z.string().min(1),
    name: z.string().min(1).regex(/^[a-zA-Z0-9_.-]+$/, 'must be letters, digits, _, . and -'),
    description: z.string(),
    bindable: z.boolean(),
    plan_updateable: z.boolean().default(false),
    tags: z.array(z.string()).default([]),
    requires: z.array(z.string()).default([]),
    metadata: z.record(z.unknown()).default({}),
    plans: z.array(plan).min(1, 'an offering needs at least one plan'),
  })
  .passthrough();

export const catalogSchema = z
  .object({ services: z.array(offering) })
  .passthrough()
  .superRefine((c, ctx) => {
    const dup = (values: string[], path: (i: number) => Array<string | number>, what: string) => {
      const seen = new Set<string>();
      values.forEach((v, i) => {
        if (seen.has(v)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: path(i), message: `${what} ${v} appears twice` });
        seen.add(v);
      });
    };
    dup(c.services.map((s) => s.id), (i) => ['services', i, 'id'], 'the service id');
    dup(c.services.map((s) => s.name), (i) => ['services', i, 'name'], 'the service name');
    c.services.forEach((s, si) => {
      dup(s.plans.map((p) => p.id), (i) => ['services', si, 'plans', i, 'id'], 'the plan id');
      dup(s.plans.map((p) => p.name), (i) => ['services', si, 'plans', i, 'name'], 'the plan name');
    });
  });

export type Catalog = z.output<typeof catalogSchema>;

/** The catalog, or the sentence saying what is wrong with it. */
export function parseCatalog(body: unknown): { catalog: Catalog } | { problem: string } {
  const r = catalogSchema.safeParse(body);
  if (r.success) return { catalog: r.data };
  return { problem: `the catalog is invalid: ${r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}` };
}

/** Mirrors the catalog into the broker's offerings and plans, in one transaction. */
export async function syncCatalog(store: Store, broker: ServiceBrokerRecord, catalog: Catalog): Promise<void> {
  await store.transaction(async (tx) => {
    const at = now();
    const offerings = await tx.serviceOfferings.list({ broker_guid: broker.guid });
    const plans = await tx.servicePlans.list({ broker_guid: broker.guid });
    const keptPlans = new Set<string>();
    const keptOfferings = new Set<string>();
    for (const s of catalog.services) {
      const fields = { name: s.name, description: s.description, bindable: s.bindable, plan_updateable: s.plan_updateable, tags: s.tags, requires: s.requires, metadata: s.metadata };
      let o: ServiceOfferingRecord | undefined = offerings.find((x) => x.broker_id === s.id);
      if (o) await tx.serviceOfferings.update(o.guid, fields);
      else o = await tx.serviceOfferings.insert({ guid: newGuid(), broker_guid: broker.guid, broker_id: s.id, ...fields, created_at: at, updated_at: at });
      keptOfferings.add(o.guid);
      for (const p of s.plans) {
        const pf = { name: p.name, description: p.description, free: p.free, bindable: p.bindable ?? s.bindable, metadata: p.metadata };
        const existing: ServicePlanRecord | undefined = plans.find((x) => x.offering_guid === o.guid && x.broker_id === p.id);
        if (existing) await tx.servicePlans.update(existing.guid, pf);
        else await tx.servicePlans.insert({ guid: newGuid(), offering_guid: o.guid, broker_guid: broker.guid, broker_id: p.id, ...pf, created_at: at, updated_at: at });
        if (existing) keptPlans.add(existing.guid);
      }
    }
    const inUse = new Set((await tx.serviceInstances.list({ plan_guid: plans.map((p) => p.guid) })).map((i) => i.plan_guid));
    await tx.servicePlans.delete({ guid: plans.filter((p) => !keptPlans.has(p.guid) && !inUse.has(p.guid)).map((p) => p.guid) });
    const stillUsed = new Set((await tx.servicePlans.list({ broker_guid: broker.guid })).map((p) => p.offering_guid));
    await tx.serviceOfferings.delete({ guid: offerings.filter((o) => !keptOfferings.has(o.guid) && !stillUsed.has(o.guid)).map((o) => o.guid) });
  });
}


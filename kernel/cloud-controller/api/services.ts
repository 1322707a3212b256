// The marketplace: /v3/service_brokers (admins register any OSB broker by URL; gateways
// register themselves by announcing), /v3/service_offerings and /v3/service_plans (what the
// brokers' catalogs offer, visible to every user: plan visibility is not modelled).
import { z } from 'zod';
import { AUDIT, auditor, type Target } from '../audit.ts';
import type { ServiceBrokerRecord } from '../db/mod.ts';
import { readJson } from '../http/body.ts';
import { csv, listQuery } from '../http/query.ts';
import type { ApiServer, RequestContext } from '../http/server.ts';
import { presentBroker, presentOffering, presentPlan } from '../services/presenters.ts';
import { listOf, mustGet, noContent, ok } from './common.ts';
import type { Deps } from './deps.ts';

const brokerName = z.string().min(1).max(255);
const brokerUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must be an http:// or https:// URL');
const authentication = z
  .object({ type: z.literal('basic'), credentials: z.object({ username: z.string().min(1), password: z.string().min(1) }).strict() })
  .strict();
const createBroker = z.object({ name: brokerName, url: brokerUrl, authentication, relationships: z.object({}).strict().optional(), metadata: z.unknown().optional() }).strict();
const updateBroker = z.object({ name: brokerName.optional(), url: brokerUrl.optional(), authentication: authentication.optional(), metadata: z.unknown().optional() }).strict();

const brokerTarget = (b: ServiceBrokerRecord): Target => ({ guid: b.guid, type: 'service_broker', name: b.name, space_guid: null, organization_guid: null });

export function registerServices(server: ApiServer, d: Deps): void {
  const audit = auditor(d.store);

  // ---- brokers (admins) ----
  server.route('GET', '/v3/service_brokers', 'admin', (ctx) =>
    listOf(ctx, d.store.serviceBrokers, listQuery({ names: csv.optional(), guids: csv.optional() }, ['created_at', 'updated_at', 'name']), (q) => ({ name: q.names, guid: q.guids }), (b) =>
      presentBroker(b, ctx.baseUrl),
    ),
  );
  server.route('GET', '/v3/service_brokers/:guid', 'admin', async (ctx) => ok(presentBroker(await mustGet(d.store.serviceBrokers, ctx.params.guid!, 'Service broker'), ctx.baseUrl)));
  server.route('POST', '/v3/service_brokers', 'admin', async (ctx) => {
    const body = await readJson(ctx.req, createBroker);
    const broker = await d.services.brokers.register({ name: body.name, url: body.url, ...body.authentication.credentials });
    await audit(ctx, AUDIT.serviceBrokerCreate, brokerTarget(broker), { request: { name: broker.name, url: broker.url, authentication: { type: 'basic' } } });
    return ok(presentBroker(broker, ctx.baseUrl), 201);
  });
  server.route('PATCH', '/v3/service_brokers/:guid', 'admin', async (ctx) => {
    const body = await readJson(ctx.req, updateBroker);
    const broker = await mustGet(d.store.serviceBrokers, ctx.params.guid!, 'Service broker');
    const updated = await d.services.brokers.update(broker, {
      ...(body.name ? { name: body.name } : {}),
      ...(body.url ? { url: body.url } : {}),
      ...(body.authentication ? body.authentication.credentials : {}),
    });
    await audit(ctx, AUDIT.serviceBrokerUpdate, brokerTarget(updated), { request: { ...(body.name ? { name: body.name } : {}), ...(body.url ? { url: body.url } : {}), ...(body.authentication ? { authentication: { type: 'basic' } } : {}) } });
    return ok(presentBroker(updated, ctx.baseUrl));
  });
  server.route('DELETE', '/v3/service_brokers/:guid', 'admin', async (ctx) => {
    const broker = await mustGet(d.store.serviceBrokers, ctx.params.guid!, 'Service broker');
    await d.services.brokers.remove(broker);
    await audit(ctx, AUDIT.serviceBrokerDelete, brokerTarget(broker), {});
    return noContent;
  });

  // ---- offerings and plans (everyone) ----
  const presentOfferingOf = async (ctx: RequestContext, o: Parameters<typeof presentOffering>[0]) => presentOffering(o, await d.store.serviceBrokers.get(o.broker_guid), ctx.baseUrl);
  server.route('GET', '/v3/service_offerings', 'user', (ctx) =>
    listOf(
      ctx,
      d.store.serviceOfferings,
      listQuery({ names: csv.optional(), guids: csv.optional(), service_broker_guids: csv.optional(), service_broker_names: csv.optional() }, ['created_at', 'updated_at', 'name']),
      async (q) => ({
        name: q.names,
        guid: q.guids,
        broker_guid: q.service_broker_names ? await brokersNamed(d, q.service_broker_names, q.service_broker_guids) : q.service_broker_guids,
      }),
      (o) => presentOfferingOf(ctx, o),
    ),
  );
  server.route('GET', '/v3/service_offerings/:guid', 'user', async (ctx) => ok(await presentOfferingOf(ctx, await mustGet(d.store.serviceOfferings, ctx.params.guid!, 'Service offering'))));

  server.route('GET', '/v3/service_plans', 'user', (ctx) =>
    listOf(
      ctx,
      d.store.servicePlans,
      listQuery(
        { names: csv.optional(), guids: csv.optional(), service_offering_guids: csv.optional(), service_offering_names: csv.optional(), service_broker_guids: csv.optional(), service_broker_names: csv.optional() },
        ['created_at', 'updated_at', 'name'],
      ),
      async (q) => {
        const offerings = q.service_offering_names ? (await d.store.serviceOfferings.list({ name: q.service_offering_names })).map((o) => o.guid) : undefined;
        return {
          name: q.names,
          guid: q.guids,
          offering_guid: offerings ? (q.service_offering_guids ?? offerings).filter((g) => offerings.includes(g)) : q.service_offering_guids,
          broker_guid: q.service_broker_names ? await brokersNamed(d, q.service_broker_names, q.service_broker_guids) : q.service_broker_guids,
        };
      },
      (p) => presentPlan(p, ctx.baseUrl),
    ),
  );
  server.route('GET', '/v3/service_plans/:guid', 'user', async (ctx) => ok(presentPlan(await mustGet(d.store.servicePlans, ctx.params.guid!, 'Service plan'), ctx.baseUrl)));
}

/** Brokers' guids by name, narrowed by guids when both are given. */
async function brokersNamed(d: Deps, names: string[], guids: string[] | undefined): Promise<string[]> {
  const found = (await d.store.serviceBrokers.list({ name: names })).map((b) => b.guid);
  return guids ? found.filter((g) => guids.includes(g)) : found;
}

// /v3/service_instances: managed instances (provisioned at their plan's broker; an asynchronous
// broker answer makes the create a 202 whose progress the instance's last_operation shows) and
// user-provided ones (credentials the user gives, stored sealed). Names are unique per space;
// each instance counts toward the space's and org's `total_service_instances`. An instance
// with bindings or keys cannot be deleted (422 naming them). A managed instance's plan and
// parameters change at its broker (OSB PATCH; the offering must be plan_updateable to change
// plan); the new plan is recorded only once the broker says it is applied. A plan change does
// not change the instance count, so quotas have nothing to refuse.
import { z } from 'zod';
import { AUDIT, auditor, REDACTED, type Target } from '../audit.ts';
import { DbError, type ServiceInstanceRecord } from '../db/mod.ts';
import { errors } from '../errors.ts';
import { readJson } from '../http/body.ts';
import { csv, listQuery } from '../http/query.ts';
import type { ApiServer, RequestContext } from '../http/server.ts';
import { within } from '../access.ts';
import { quotaGuard } from '../quota-guard.ts';
import { NO_USAGE } from '../quotas.ts';
import { refusePlanChange } from '../services/operations.ts';
import { presentInstance } from '../services/presenters.ts';
import { listOf, newGuid, noContent, now, ok, toOne } from './common.ts';
import type { Deps } from './deps.ts';
import { scope } from './scope.ts';

const instanceName = z.string().min(1).max(255);
const tags = z.array(z.string().min(1).max(255)).max(50);
const credentials = z.record(z.unknown());
const parameters = z.record(z.unknown());
const routeServiceUrl = z.string().url().refine((u) => u.startsWith('https://'), 'must be an https:// URL');

const createManaged = z
  .object({
    type: z.literal('managed'),
    name: instanceName,
    relationships: z.object({ space: toOne, service_plan: toOne }).strict(),
    parameters: parameters.optional(),
    tags: tags.optional(),
    metadata: z.unknown().optional(),
  })
  .strict();
const createUserProvided = z
  .object({
    type: z.literal('user-provided'),
    name: instanceName,
    relationships: z.object({ space: toOne }).strict(),
    credentials: credentials.optional(),
    syslog_drain_url: z.string().url().optional(),
    route_service_url: routeServiceUrl.optional(),
    tags: tags.optional(),
    metadata: z.unknown().optional(),
  })
  .strict();
const createInstance = z.discriminatedUnion('type', [createManaged, createUserProvided]);
const updateInstance = z
  .object({
    name: instanceName.optional(),
    tags: tags.optional(),
    credentials: credentials.optional(),
    syslog_drain_url: z.string().url().optional(),
    route_service_url: routeServiceUrl.optional(),
    relationships: z.object({ service_plan: toOne }).strict().optional(),
    parameters: parameters.optional(),
    metadata: z.unknown().optional(),
  })
  .strict();

export const instanceTarget = (i: ServiceInstanceRecord, orgGuid: string | null): Target => ({ guid: i.guid, type: 'service_instance', name: i.name, space_guid: i.space_guid, organization_guid: orgGuid });

export function registerServiceInstances(server: ApiServer, d: Deps): void {
  const s = scope(d.store);
  const audit = auditor(d.store);
  const quotas = quotaGuard(d.store);
  const getInstance = (ctx: RequestContext, mode: 'read' | 'write') => s.inSpace(ctx, d.store.serviceInstances, ctx.params.guid!, 'Service instance', mode);
  const record = async (ctx: RequestContext, type: (typeof AUDIT)[keyof typeof AUDIT], i: ServiceInstanceRecord, data: Record<string, unknown>) =>
    audit(ctx, type, instanceTarget(i, (await d.store.spaces.get(i.space_guid))?.organization_guid ?? null), data);

  /** A managed instance's plan and parameters change at its broker; refusals are 422 sentences naming the instance. */
  const updateAtBroker = async (instance: ServiceInstanceRecord, planGuid: string | undefined, params: Record<string, unknown> | undefined): Promise<ServiceInstanceRecord> => {
    const cannot = (why: string) => errors.unprocessable(`Cannot update service instance ${instance.name}: ${why}`);
    if (instance.operation_state === 'in progress') throw cannot(`its ${instance.operation_type} is in progress`);
    const from = instance.plan_guid ? await d.services.operations.chain(instance.plan_guid) : undefined;
    if (!from) throw cannot('its service plan is no longer offered');
    const to = planGuid ? await d.services.operations.chain(planGuid) : from;
    if (!to) throw cannot('invalid service plan. Ensure that the service plan exists, is available, and you have access to it.');
    const refusal = refusePlanChange(from, to);
    if (refusal) throw cannot(refusal);
    const space = await d.store.spaces.get(instance.space_guid);
    return d.services.operations.update(instance, from, to, { organization_guid: space?.organization_guid ?? '', space_guid: instance.space_guid, instance_name: instance.name }, params);
  };

  server.route('GET', '/v3/service_instances', 'user', (ctx) =>
    listOf(
      ctx,
      d.store.serviceInstances,
      listQuery(
        { names: csv.optional(), guids: csv.optional(), space_guids: csv.optional(), organization_guids: csv.optional(), service_plan_guids: csv.optional(), type: z.enum(['managed', 'user-provided']).optional() },
        ['created_at', 'updated_at', 'name'],
      ),
      async (q) => {
        let spaces = q.space_guids;
        if (q.organization_guids) {
          const inOrgs = (await d.store.spaces.list({ organization_guid: q.organization_guids })).map((x) => x.guid);
          spaces = spaces ? spaces.filter((x) => inOrgs.includes(x)) : inOrgs;
        }
        return { name: q.names, guid: q.guids, plan_guid: q.service_plan_guids, type: q.type, space_guid: within(spaces, await s.spaceWhere(ctx)) };
      },
      (i) => presentInstance(i, ctx.baseUrl),
    ),
  );
  server.route('GET', '/v3/service_instances/:guid', 'user', async (ctx) => ok(presentInstance(await getInstance(ctx, 'read'), ctx.baseUrl)));

  server.route('GET', '/v3/service_instances/:guid/credentials', 'user', async (ctx) => {
    const instance = await getInstance(ctx, 'write');
    if (instance.type !== 'user-provided') throw errors.notFound('Service instance');
    return ok(instance.credentials ? d.services.box.open(instance.credentials) : {});
  });

  server.route('POST', '/v3/service_instances', 'user', async (ctx) => {
    const body = await readJson(ctx.req, createInstance);
    const space = await s.spaceToCreateIn(ctx, body.relationships.space.data.guid);
    const chain = body.type === 'managed' ? await d.services.operations.chain(body.relationships.service_plan.data.guid) : undefined;
    if (body.type === 'managed' && !chain) throw errors.unprocessable('Invalid service plan. Ensure that the service plan exists, is available, and you have access to it.');
    if (await d.store.serviceInstances.find({ space_guid: space.guid, name: body.name })) throw taken(body.name);
    const at = now();
    const instance: ServiceInstanceRecord = {
      guid: newGuid(),
      name: body.name,
      type: body.type,
      space_guid: space.guid,
      plan_guid: chain?.plan.guid ?? null,
      tags: body.tags ?? [],
      credentials: body.type === 'user-provided' ? d.services.box.seal(body.credentials ?? {}) : null,
      syslog_drain_url: body.type === 'user-provided' ? (body.syslog_drain_url ?? null) : null,
      route_service_url: body.type === 'user-provided' ? (body.route_service_url ?? null) : null,
      dashboard_url: null,
      operation_type: 'create',
      operation_state: body.type === 'managed' ? 'in progress' : 'succeeded',
      operation_description: null,
      broker_operation: null,
      pending_plan_guid: null,
      created_at: at,
      updated_at: at,
    };
    try {
      await quotas.guard(space.guid, { ...NO_USAGE, service_instances: 1 }, (tx) => tx.serviceInstances.insert(instance));
    } catch (err) {
      if (err instanceof DbError && err.code === 'unique_violation') throw taken(body.name);
      throw err;
    }
    let result = instance;
    if (body.type === 'managed' && chain) {
      try {
        result = await d.services.operations.provision(instance, chain, { organization_guid: space.organization_guid, space_guid: space.guid, instance_name: instance.name }, body.parameters);
      } catch (err) {
        // Refused or failed at the broker: nothing is kept, the name is free again.
        await d.store.serviceInstances.delete({ guid: instance.guid });
        throw err;
      }
    }
    await record(ctx, AUDIT.serviceInstanceCreate, result, {
      request: {
        type: body.type,
        name: body.name,
        space_guid: space.guid,
        ...(chain ? { service_plan_guid: chain.plan.guid } : {}),
        ...(body.type === 'user-provided' && body.credentials ? { credentials: REDACTED } : {}),
        ...(body.type === 'managed' && body.parameters ? { parameters: REDACTED } : {}),
      },
    });
    const reply = presentInstance(result, ctx.baseUrl);
    if (result.operation_state === 'in progress') return { status: 202, body: reply, headers: { location: reply.links.self.href } };
    return ok(reply, 201);
  });

  server.route('PATCH', '/v3/service_instances/:guid', 'user', async (ctx) => {
    const body = await readJson(ctx.req, updateInstance);
    const instance = await getInstance(ctx, 'write');
    if (instance.type === 'managed' && (body.credentials || body.syslog_drain_url || body.route_service_url)) {
      throw errors.unprocessable('credentials, syslog_drain_url and route_service_url can be changed only on a user-provided service instance');
    }
    if (instance.type === 'user-provided' && (body.relationships || body.parameters)) throw errors.unprocessable('service_plan and parameters can be changed only on a managed service instance');
    if (body.name && body.name !== instance.name && (await d.store.serviceInstances.find({ space_guid: instance.space_guid, name: body.name }))) throw taken(body.name);
    let atBroker = instance;
    if (body.relationships || body.parameters) atBroker = await updateAtBroker(instance, body.relationships?.service_plan.data.guid, body.parameters);
    let updated: ServiceInstanceRecord | undefined;
    try {
      updated = await d.store.serviceInstances.update(instance.guid, {
        ...(body.name ? { name: body.name } : {}),
        ...(body.tags ? { tags: body.tags } : {}),
        ...(body.credentials ? { credentials: d.services.box.seal(body.credentials) } : {}),
        ...(body.syslog_drain_url ? { syslog_drain_url: body.syslog_drain_url } : {}),
        ...(body.route_service_url ? { route_service_url: body.route_service_url } : {}),
      });
    } catch (err) {
      if (err instanceof DbError && err.code === 'unique_violation') throw taken(body.name ?? instance.name);
      throw err;
    }
    await record(ctx, AUDIT.serviceInstanceUpdate, updated!, {
      request: {
        ...(body.name ? { name: body.name } : {}),
        ...(body.tags ? { tags: body.tags } : {}),
        ...(body.credentials ? { credentials: REDACTED } : {}),
        ...(body.route_service_url ? { route_service_url: body.route_service_url } : {}),
        ...(body.relationships ? { service_plan_guid: body.relationships.service_plan.data.guid, previous_service_plan_guid: instance.plan_guid } : {}),
        ...(body.parameters ? { parameters: REDACTED } : {}),
      },
    });
    const reply = presentInstance(updated!, ctx.baseUrl);
    if (atBroker.operation_state === 'in progress') return { status: 202, body: reply, headers: { location: reply.links.self.href } };
    return ok(reply);
  });

  server.route('DELETE', '/v3/service_instances/:guid', 'user', async (ctx) => {
    const instance = await getInstance(ctx, 'write');
    const bindings = await d.store.serviceBindings.list({ instance_guid: instance.guid });
    if (bindings.length > 0) {
      const apps = new Map((await d.store.apps.list({ guid: bindings.flatMap((b) => (b.app_guid ? [b.app_guid] : [])) })).map((a) => [a.guid, a.name]));
      const named = bindings.map((b) => (b.type === 'app' ? `app ${apps.get(b.app_guid ?? '') ?? b.app_guid}` : `service key ${b.name}`));
      throw errors.unprocessable(`Cannot delete service instance ${instance.name}: it has bindings and keys: ${named.join(', ')}. Unbind and delete them first.`);
    }
    if (instance.operation_state === 'in progress') throw errors.unprocessable(`Cannot delete service instance ${instance.name}: its ${instance.operation_type} is in progress`);
    let outcome: 'done' | ServiceInstanceRecord = 'done';
    if (instance.type === 'managed' && instance.plan_guid) {
      const chain = await d.services.operations.chain(instance.plan_guid);
      if (chain) outcome = await d.services.operations.deprovision(instance, chain);
    }
    if (outcome === 'done') await d.store.serviceInstances.delete({ guid: instance.guid });
    await record(ctx, AUDIT.serviceInstanceDelete, instance, {});
    if (outcome !== 'done') return { status: 202, body: presentInstance(outcome, ctx.baseUrl), headers: { location: `${ctx.baseUrl}/v3/service_instances/${instance.guid}` } };
    return noContent;
  });
}

function taken(name: string) {
  return errors.uniqueness(`The service instance name is taken: ${name}`);
}

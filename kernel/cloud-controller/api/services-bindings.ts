// /v3/service_credential_bindings: app bindings (what the app gets in VCAP_SERVICES at its next
// start) and service keys (credentials for use outside an app). A managed instance's binding is
// made at its broker, a user-provided one copies the instance's credentials. A broker may make
// or remove a binding asynchronously (OSB 2.14): the API answers 202 with the binding `in
// progress`, and the controller polls its last operation (services/operations.ts). Credentials
// are stored sealed and shown only by `…/details`, which needs the space's developer (as the env).
import { z } from 'zod';
import { AUDIT, auditor } from '../audit.ts';
import { DbError, type ServiceBindingRecord, type ServiceInstanceRecord } from '../db/mod.ts';
import { errors } from '../errors.ts';
import { readJson } from '../http/body.ts';
import { csv, listQuery } from '../http/query.ts';
import type { ApiServer, RequestContext } from '../http/server.ts';
import { within } from '../access.ts';
import { presentBinding } from '../services/presenters.ts';
import { listOf, newGuid, noContent, now, ok, toOne } from './common.ts';
import type { Deps } from './deps.ts';
import { scope } from './scope.ts';
import { instanceTarget } from './services-instances.ts';

const bindingName = z.string().min(1).max(255);
const createBinding = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('app'),
      name: bindingName.optional(),
      relationships: z.object({ service_instance: toOne, app: toOne }).strict(),
      parameters: z.record(z.unknown()).optional(),
      metadata: z.unknown().optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('key'),
      name: bindingName,
      relationships: z.object({ service_instance: toOne }).strict(),
      parameters: z.record(z.unknown()).optional(),
      metadata: z.unknown().optional(),
    })
    .strict(),
]);

const INVALID_INSTANCE = 'The service instance could not be found: ensure that it exists and you have access to it.';

export function registerServiceBindings(server: ApiServer, d: Deps): void {
  const s = scope(d.store);
  const audit = auditor(d.store);
  const getBinding = (ctx: RequestContext, mode: 'read' | 'write') => s.inSpace(ctx, d.store.serviceBindings, ctx.params.guid!, 'Service credential binding', mode);
  const record = async (ctx: RequestContext, b: ServiceBindingRecord, instance: ServiceInstanceRecord, created: boolean) => {
    const org = (await d.store.spaces.get(instance.space_guid))?.organization_guid ?? null;
    const data = { binding_guid: b.guid, service_instance_guid: instance.guid, ...(b.app_guid ? { app_guid: b.app_guid } : {}), ...(b.name ? { name: b.name } : {}) };
    if (b.type === 'key') {
      await audit(ctx, created ? AUDIT.serviceKeyCreate : AUDIT.serviceKeyDelete, { ...instanceTarget(instance, org), guid: b.guid, type: 'service_key', name: b.name ?? '' }, data);
      return;
    }
    const app = b.app_guid ? await d.store.apps.get(b.app_guid) : undefined;
    const target = app ? { guid: app.guid, type: 'app', name: app.name, space_guid: app.space_guid, organization_guid: org } : instanceTarget(instance, org);
    await audit(ctx, created ? AUDIT.serviceBindingCreate : AUDIT.serviceBindingDelete, target, data);
  };

  server.route('GET', '/v3/service_credential_bindings', 'user', (ctx) =>
    listOf(
      ctx,
      d.store.serviceBindings,
      listQuery(
        { names: csv.optional(), guids: csv.optional(), service_instance_guids: csv.optional(), app_guids: csv.optional(), type: z.enum(['app', 'key']).optional() },
        ['created_at', 'updated_at', 'name'],
      ),
      async (q) => ({ name: q.names, guid: q.guids, instance_guid: q.service_instance_guids, app_guid: q.app_guids, type: q.type, space_guid: within(undefined, await s.spaceWhere(ctx)) }),
      (b) => presentBinding(b, ctx.baseUrl),
    ),
  );
  server.route('GET', '/v3/service_credential_bindings/:guid', 'user', async (ctx) => ok(presentBinding(await getBinding(ctx, 'read'), ctx.baseUrl)));
  server.route('GET', '/v3/service_credential_bindings/:guid/details', 'user', async (ctx) => {
    const b = await getBinding(ctx, 'write');
    if (b.operation_type === 'create' && b.operation_state !== 'succeeded') throw errors.unprocessable(`The binding has no credentials: its create is ${b.operation_state}${b.operation_description ? ` (${b.operation_description})` : ''}`);
    return ok({ credentials: d.services.box.open(b.credentials), ...(b.syslog_drain_url ? { syslog_drain_url: b.syslog_drain_url } : {}), volume_mounts: [] });
  });

  server.route('POST', '/v3/service_credential_bindings', 'user', async (ctx) => {
    const body = await readJson(ctx.req, createBinding);
    const instance = await s.inSpaceNamed(ctx, d.store.serviceInstances, body.relationships.service_instance.data.guid, INVALID_INSTANCE);
    const app = body.type === 'app' ? await s.appNamed(ctx, body.relationships.app.data.guid, 'Invalid app. Ensure that the app exists and you have access to it.') : undefined;
    if (app && app.space_guid !== instance.space_guid) throw errors.unprocessable('The service instance and the app are in different spaces.');
    if (instance.operation_state !== 'succeeded' || instance.operation_type === 'delete') {
      throw errors.unprocessable(`Service instance ${instance.name} is not ready to bind: ${instance.operation_type} ${instance.operation_state}`);
    }
    if (app && (await d.store.serviceBindings.find({ instance_guid: instance.guid, app_guid: app.guid, type: 'app' }))) {
      throw errors.uniqueness(`The app ${app.name} is already bound to the service instance ${instance.name}.`);
    }
    if (body.type === 'key' && (await d.store.serviceBindings.find({ instance_guid: instance.guid, name: body.name, type: 'key' }))) {
      throw errors.uniqueness(`The service key name is taken: ${body.name}`);
    }
    const guid = newGuid();
    let creds: Record<string, unknown> = {};
    let drain: string | null = null;
    let accepted: { operation?: string } | undefined;
    if (instance.type === 'user-provided') {
      if (body.parameters) throw errors.unprocessable('Binding parameters are not supported for user-provided service instances');
      creds = instance.credentials ? d.services.box.open(instance.credentials) : {};
      drain = instance.syslog_drain_url;
    } else {
      const chain = instance.plan_guid ? await d.services.operations.chain(instance.plan_guid) : undefined;
      if (!chain) throw errors.unprocessable(`Service instance ${instance.name} has no service plan any more`);
      if (!chain.plan.bindable) throw errors.unprocessable(`Service plan ${chain.plan.name} is not bindable.`);
      const space = await d.store.spaces.get(instance.space_guid);
      const answer = await d.services.operations.bind(instance, chain, guid, { organization_guid: space?.organization_guid ?? '', space_guid: instance.space_guid }, app?.guid, body.parameters);
      if (answer.async) accepted = answer;
      else {
        creds = answer.credentials;
        drain = answer.syslog_drain_url ?? null;
      }
    }
    const at = now();
    const binding: ServiceBindingRecord = {
      guid,
      type: body.type,
      name: body.name ?? null,
      instance_guid: instance.guid,
      app_guid: app?.guid ?? null,
      space_guid: instance.space_guid,
      credentials: d.services.box.seal(creds),
      syslog_drain_url: drain,
      operation_type: 'create',
      operation_state: accepted ? 'in progress' : 'succeeded',
      operation_description: null,
      broker_operation: accepted?.operation ?? null,
      created_at: at,
      updated_at: at,
    };
    try {
      await d.store.serviceBindings.insert(binding);
    } catch (err) {
      if (err instanceof DbError) await unbindQuietly(d, instance, binding);
      throw err;
    }
    await record(ctx, binding, instance, true);
    const reply = presentBinding(binding, ctx.baseUrl);
    if (!accepted) return ok(reply, 201);
    d.services.operations.pollBinding(binding);
    return { status: 202, body: reply, headers: { location: reply.links.self.href } };
  });

  server.route('DELETE', '/v3/service_credential_bindings/:guid', 'user', async (ctx) => {
    const binding = await getBinding(ctx, 'write');
    if (binding.operation_state === 'in progress') throw errors.unprocessable(`Cannot delete the binding: its ${binding.operation_type} is in progress`);
    const instance = await d.store.serviceInstances.get(binding.instance_guid);
    const outcome = instance ? await unbindAtBroker(d, instance, binding) : 'done';
    if (instance) await record(ctx, binding, instance, false);
    if (outcome === 'done') return noContent;
    const reply = presentBinding(outcome, ctx.baseUrl);
    return { status: 202, body: reply, headers: { location: reply.links.self.href } };
  });
}

/**
 * Unbinds at the broker (a managed instance's binding) and deletes the record: 'done', or the
 * binding `delete in progress` while the broker removes it asynchronously (the poll deletes it).
 */
async function unbindAtBroker(d: Deps, instance: ServiceInstanceRecord, binding: ServiceBindingRecord): Promise<'done' | ServiceBindingRecord> {
  if (binding.operation_type === 'create' && binding.operation_state === 'failed') {
    // Whatever a failed create left at the broker is removed if the broker lets us; the record goes either way.
    await unbindQuietly(d, instance, binding);
    await d.store.serviceBindings.delete({ guid: binding.guid });
    return 'done';
  }
  const chain = instance.type === 'managed' && instance.plan_guid ? await d.services.operations.chain(instance.plan_guid) : undefined;
  const outcome = chain ? await d.services.operations.unbind(instance, chain, binding) : 'done';
  if (outcome === 'done') await d.store.serviceBindings.delete({ guid: binding.guid });
  return outcome;
}

/** Undoes a broker binding the controller could not keep (orphan mitigation); a failure is only logged. */
async function unbindQuietly(d: Deps, instance: ServiceInstanceRecord, binding: ServiceBindingRecord): Promise<void> {
  if (instance.type !== 'managed' || !instance.plan_guid) return;
  const chain = await d.services.operations.chain(instance.plan_guid);
  if (!chain) return;
  await d.services.operations.unbind(instance, chain, binding).catch((err: unknown) => d.log.warn({ binding: binding.guid, err: (err as Error).message }, 'undoing a binding at the broker failed'));
}

/**
 * Unbinds (at the broker) and deletes every binding of an app: its deletion does this first. A
 * binding the broker removes asynchronously stays, `delete in progress`, until the poll sees it gone.
 */
export async function deleteAppBindings(d: Deps, appGuid: string): Promise<void> {
  for (const binding of await d.store.serviceBindings.list({ app_guid: appGuid })) {
    const instance = await d.store.serviceInstances.get(binding.instance_guid);
    if (!instance) await d.store.serviceBindings.delete({ guid: binding.guid });
    else if (binding.operation_state !== 'in progress') await unbindAtBroker(d, instance, binding);
  }
}

// /v3/organization_quotas and /v3/space_quotas (CF v3's shapes): named limits on total
// memory, instances, routes and service instances (null: unlimited), applied to orgs and to
// spaces of the quota's org. An org or a space has at most one; none means unlimited.
// Admins own org quotas; an org's managers own its space quotas. A user sees the quotas of
// the orgs it sees and of the spaces it reads (and an org manager every quota of its org).
// Enforcement is in quota-guard.ts, where apps start and scale and routes are made.
import { z } from 'zod';
import { managesOrg, seesOrg, within, type Access } from '../access.ts';
import { DbError, type OrganizationQuotaRecord, type QuotaLimits, type SpaceQuotaRecord, type Store } from '../db/mod.ts';
import { errors } from '../errors.ts';
import { readJson } from '../http/body.ts';
import { csv, listQuery } from '../http/query.ts';
import type { ApiServer, RequestContext } from '../http/server.ts';
import { presentOrganizationQuota, presentSpaceQuota } from '../presenters.ts';
import { guidRef, listOf, mustGet, newGuid, noContent, now, ok, toOne } from './common.ts';
import type { Deps } from './deps.ts';
import { scope } from './scope.ts';

const limit = z.number().int().min(0).max(2 ** 31 - 1).nullable().optional();
const limitFields = {
  apps: z.object({ total_memory_in_mb: limit, total_instances: limit }).strict().optional(),
  routes: z.object({ total_routes: limit }).strict().optional(),
  services: z.object({ total_service_instances: limit }).strict().optional(),
};
const name = z.string().min(1).max(250);
const toMany = z.object({ data: z.array(guidRef).max(1000) }).strict();

const createOrgQuota = z.object({ name, ...limitFields, relationships: z.object({ organizations: toMany }).strict().optional() }).strict();
const createSpaceQuota = z.object({ name, ...limitFields, relationships: z.object({ organization: toOne, spaces: toMany.optional() }).strict() }).strict();
const updateQuota = z.object({ name: name.optional(), ...limitFields }).strict();

type LimitsBody = { apps?: { total_memory_in_mb?: number | null; total_instances?: number | null }; routes?: { total_routes?: number | null }; services?: { total_service_instances?: number | null } };

/** The limits a body sets, over `current` (unlimited for a new quota). */
export function limitsOf(body: LimitsBody, current?: QuotaLimits): QuotaLimits {
  const pick = (v: number | null | undefined, old: number | null | undefined) => (v === undefined ? (old ?? null) : v);
  return {
    total_memory_in_mb: pick(body.apps?.total_memory_in_mb, current?.total_memory_in_mb),
    total_instances: pick(body.apps?.total_instances, current?.total_instances),
    total_routes: pick(body.routes?.total_routes, current?.total_routes),
    total_service_instances: pick(body.services?.total_service_instances, current?.total_service_instances),
  };
}

export function registerQuotas(server: ApiServer, d: Deps): void {
  const s = scope(d.store);

  const uniqueName = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof DbError && err.code === 'unique_violation') throw errors.uniqueness(`${what} already exists.`);
      throw err;
    }
  };

  /** Deletes a quota, or 422 (as CF) while it is applied to any org or space. */
  const deleteUnapplied = (guid: string, appliedTo: 'organizations' | 'spaces'): Promise<void> =>
    d.store.transaction(async (tx) => {
      const inUse = appliedTo === 'organizations' ? await tx.organizations.count({ quota_guid: guid }) : await tx.spaces.count({ quota_guid: guid });
      if (inUse > 0) throw errors.unprocessable(`This quota is applied to one or more ${appliedTo}. Remove this quota from all ${appliedTo} before deleting.`);
      await (appliedTo === 'organizations' ? tx.organizationQuotas : tx.spaceQuotas).delete({ guid });
    });

  // ---- organization quotas ----

  /** The visible orgs a quota applies to. */
  const orgsOf = async (access: Access, quotaGuid: string): Promise<string[]> =>
    (await d.store.organizations.list({ quota_guid: quotaGuid })).map((o) => o.guid).filter((g) => seesOrg(access, g));

  const presentOrgQuota = async (ctx: RequestContext, q: OrganizationQuotaRecord) => presentOrganizationQuota(q, await orgsOf(await s.access(ctx), q.guid), ctx.baseUrl);

  const orgQuotaFor = async (ctx: RequestContext): Promise<OrganizationQuotaRecord> => {
    const q = await mustGet(d.store.organizationQuotas, ctx.params.guid!, 'Organization quota');
    const access = await s.access(ctx);
    if (!access.admin && (await orgsOf(access, q.guid)).length === 0) throw errors.notFound('Organization quota');
    return q;
  };

  /** Sets the quota of each org (replacing the one it had); 422 naming orgs that do not exist. */
  const applyToOrgs = async (store: Store, quotaGuid: string, orgGuids: string[]): Promise<void> => {
    const found = new Set((await store.organizations.list({ guid: orgGuids })).map((o) => o.guid));
    const missing = orgGuids.filter((g) => !found.has(g));
    if (missing.length) throw errors.unprocessable(`Organizations with guids [${missing.join(', ')}] do not exist, or you do not have access to them.`);
    await store.organizations.updateWhere({ guid: orgGuids }, { quota_guid: quotaGuid });
  };

  server.route('GET', '/v3/organization_quotas', 'user', (ctx) =>
    listOf(
      ctx,
      d.store.organizationQuotas,
      listQuery({ names: csv.optional(), guids: csv.optional(), organization_guids: csv.optional() }, ['created_at', 'updated_at', 'name']),
      async (q) => {
        const access = await s.access(ctx);
        let allowed: string[] | undefined;
        if (!access.admin || q.organization_guids) {
          const orgs = await d.store.organizations.list({ guid: within(q.organization_guids, access.admin ? undefined : [...access.visibleOrgs]) });
          allowed = orgs.flatMap((o) => (o.quota_guid ? [o.quota_guid] : []));
        }
        return { name: q.names, guid: within(q.guids, allowed) };
      },
      (x) => presentOrgQuota(ctx, x),
    ),
  );

  server.route('GET', '/v3/organization_quotas/:guid', 'user', async (ctx) => ok(await presentOrgQuota(ctx, await orgQuotaFor(ctx))));

  server.route('POST', '/v3/organization_quotas', 'admin', async (ctx) => {
    const body = await readJson(ctx.req, createOrgQuota);
    const at = now();
    const quota: OrganizationQuotaRecord = { guid: newGuid(), name: body.name, ...limitsOf(body), created_at: at, updated_at: at };
    await d.store.transaction(async (tx) => {
      await uniqueName(`Organization Quota '${body.name}'`, () => tx.organizationQuotas.insert(quota));
      const orgs = body.relationships?.organizations.data.map((o) => o.guid) ?? [];
      if (orgs.length) await applyToOrgs(tx, quota.guid, orgs);
    });
    return ok(await presentOrgQuota(ctx, quota), 201);
  });

  server.route('PATCH', '/v3/organization_quotas/:guid', 'admin', async (ctx) => {
    const body = await readJson(ctx.req, updateQuota);
    const q = await mustGet(d.store.organizationQuotas, ctx.params.guid!, 'Organization quota');
    const updated = await uniqueName(`Organization Quota '${body.name}'`, () => d.store.organizationQuotas.update(q.guid, { ...(body.name ? { name: body.name } : {}), ...limitsOf(body, q) }));
    return ok(await presentOrgQuota(ctx, updated!));
  });

  server.route('DELETE', '/v3/organization_quotas/:guid', 'admin', async (ctx) => {
    await deleteUnapplied((await mustGet(d.store.organizationQuotas, ctx.params.guid!, 'Organization quota')).guid, 'organizations');
    return noContent;
  });

  server.route('POST', '/v3/organization_quotas/:guid/relationships/organizations', 'admin', async (ctx) => {
    const body = await readJson(ctx.req, toMany);
    const q = await mustGet(d.store.organizationQuotas, ctx.params.guid!, 'Organization quota');
    await applyToOrgs(d.store, q.guid, body.data.map((o) => o.guid));
    return ok({ data: (await orgsOf(await s.access(ctx), q.guid)).map((guid) => ({ guid })), links: { self: { href: `${ctx.baseUrl}/v3/organization_quotas/${q.guid}/relationships/organizations` } } });
  });

  // ---- space quotas ----

  /** The readable spaces a quota applies to. */
  const spacesOf = async (access: Access, quotaGuid: string): Promise<string[]> =>
    (await d.store.spaces.list({ quota_guid: quotaGuid })).map((x) => x.guid).filter((g) => access.admin || access.readableSpaces.has(g));

  const presentSpaceQuotaFor = async (ctx: RequestContext, q: SpaceQuotaRecord) => presentSpaceQuota(q, await spacesOf(await s.access(ctx), q.guid), ctx.baseUrl);

  /** A space quota the caller sees (404 otherwise) and, for `manage`, owns (403 otherwise). */
  const spaceQuotaFor = async (ctx: RequestContext, manage: boolean): Promise<SpaceQuotaRecord> => {
    const q = await mustGet(d.store.spaceQuotas, ctx.params.guid!, 'Space quota');
    const access = await s.access(ctx);
    const owns = managesOrg(access, q.organization_guid);
    if (!owns && (await spacesOf(access, q.guid)).length === 0) throw errors.notFound('Space quota');
    if (manage && !owns) throw errors.notAuthorized();
    return q;
  };

  /** Sets the quota of each space; 422 naming spaces that are not readable ones of the quota's org. */
  const applyToSpaces = async (ctx: RequestContext, store: Store, q: SpaceQuotaRecord, spaceGuids: string[]): Promise<void> => {
    const access = await s.access(ctx);
    const found = new Set((await store.spaces.list({ guid: spaceGuids, organization_guid: q.organization_guid })).map((x) => x.guid).filter((g) => access.admin || access.readableSpaces.has(g)));
    const missing = spaceGuids.filter((g) => !found.has(g));
    if (missing.length) throw errors.unprocessable(`Spaces with guids [${missing.join(', ')}] do not exist within the organization, or you do not have access to them.`);
    await store.spaces.updateWhere({ guid: spaceGuids }, { quota_guid: q.guid });
  };

  server.route('GET', '/v3/space_quotas', 'user', (ctx) =>
    listOf(
      ctx,
      d.store.spaceQuotas,
      listQuery({ names: csv.optional(), guids: csv.optional(), organization_guids: csv.optional(), space_guids: csv.optional() }, ['created_at', 'updated_at', 'name']),
      async (q) => {
        const access = await s.access(ctx);
        let allowed: string[] | undefined;
        if (!access.admin) {
          const [owned, applied] = await Promise.all([
            d.store.spaceQuotas.list({ organization_guid: [...access.managedOrgs] }),
            d.store.spaces.list({ guid: [...access.readableSpaces] }),
          ]);
          allowed = [...owned.map((x) => x.guid), ...applied.flatMap((x) => (x.quota_guid ? [x.quota_guid] : []))];
        }
        if (q.space_guids) {
          const named = (await d.store.spaces.list({ guid: q.space_guids })).flatMap((x) => (x.quota_guid ? [x.quota_guid] : []));
          allowed = within(named, allowed);
        }
        return { name: q.names, organization_guid: q.organization_guids, guid: within(q.guids, allowed) };
      },
      (x) => presentSpaceQuotaFor(ctx, x),
    ),
  );

  server.route('GET', '/v3/space_quotas/:guid', 'user', async (ctx) => ok(await presentSpaceQuotaFor(ctx, await spaceQuotaFor(ctx, false))));

  server.route('POST', '/v3/space_quotas', 'user', async (ctx) => {
    const body = await readJson(ctx.req, createSpaceQuota);
    const orgGuid = body.relationships.organization.data.guid;
    const access = await s.access(ctx);
    if (!(await d.store.organizations.get(orgGuid)) || !seesOrg(access, orgGuid)) throw errors.unprocessable('Invalid organization. Ensure the organization exists and you have access to it.');
    if (!managesOrg(access, orgGuid)) throw errors.notAuthorized();
    const at = now();
    const quota: SpaceQuotaRecord = { guid: newGuid(), name: body.name, organization_guid: orgGuid, ...limitsOf(body), created_at: at, updated_at: at };
    const spaces = body.relationships.spaces?.data.map((x) => x.guid) ?? [];
    await d.store.transaction(async (tx) => {
      await uniqueName(`Space Quota '${body.name}' in this organization`, () => tx.spaceQuotas.insert(quota));
      if (spaces.length) await applyToSpaces(ctx, tx, quota, spaces);
    });
    return ok(await presentSpaceQuotaFor(ctx, quota), 201);
  });

  server.route('PATCH', '/v3/space_quotas/:guid', 'user', async (ctx) => {
    const body = await readJson(ctx.req, updateQuota);
    const q = await spaceQuotaFor(ctx, true);
    const updated = await uniqueName(`Space Quota '${body.name}' in this organization`, () => d.store.spaceQuotas.update(q.guid, { ...(body.name ? { name: body.name } : {}), ...limitsOf(body, q) }));
    return ok(await presentSpaceQuotaFor(ctx, updated!));
  });

  server.route('DELETE', '/v3/space_quotas/:guid', 'user', async (ctx) => {
    await deleteUnapplied((await spaceQuotaFor(ctx, true)).guid, 'spaces');
    return noContent;
  });

  server.route('POST', '/v3/space_quotas/:guid/relationships/spaces', 'user', async (ctx) => {
    const body = await readJson(ctx.req, toMany);
    const q = await spaceQuotaFor(ctx, true);
    await applyToSpaces(ctx, d.store, q, body.data.map((x) => x.guid));
    return ok({ data: (await spacesOf(await s.access(ctx), q.guid)).map((guid) => ({ guid })), links: { self: { href: `${ctx.baseUrl}/v3/space_quotas/${q.guid}/relationships/spaces` } } });
  });

  server.route('DELETE', '/v3/space_quotas/:guid/relationships/spaces/:space_guid', 'user', async (ctx) => {
    const q = await spaceQuotaFor(ctx, true);
    const space = await d.store.spaces.find({ guid: ctx.params.space_guid!, quota_guid: q.guid });
    if (!space) throw errors.unprocessable(`Unable to remove quota from space with guid '${ctx.params.space_guid}'. Ensure the space quota is applied to this space.`);
    await d.store.spaces.update(space.guid, { quota_guid: null });
    return noContent;
  });
}

// /v3/organizations and /v3/spaces: the tenancy skeleton. Apps live in a space; a default
// organization and space exist from the first start. Users see the orgs they hold a role in
// (or in one of whose spaces they do) and the spaces they may read; admins create and delete
// orgs, an org's managers create and delete its spaces. Deleting an org or a space that still
// holds spaces, apps or routes is refused (422) as CF does; its roles, space quotas and private
// domains go with it, in the same transaction. Roles themselves are in roles.ts.
import { z } from 'zod';
import { managesOrg, seesOrg, visibleOrgList, within } from '../access.ts';
import { AUDIT, auditor, orgTarget, spaceTarget } from '../audit.ts';
import { DbError } from '../db/mod.ts';
import { errors } from '../errors.ts';
import { readJson } from '../http/body.ts';
import { csv, listQuery } from '../http/query.ts';
import type { ApiServer } from '../http/server.ts';
import { presentOrganization, presentSpace } from '../presenters.ts';
import { listOf, mustGet, newGuid, noContent, now, ok, toOne } from './common.ts';
import type { Deps } from './deps.ts';
import { registerRoles } from './roles.ts';
import { scope } from './scope.ts';

const name = z.string().min(1).max(255);
const createOrg = z.object({ name, metadata: z.unknown().optional() }).strict();
const createSpace = z.object({ name, relationships: z.object({ organization: toOne }).strict(), metadata: z.unknown().optional() }).strict();

export function registerOrganizations(server: ApiServer, d: Deps): void {
  const s = scope(d.store);
  const audit = auditor(d.store);

  server.route('GET', '/v3/organizations', 'user', (ctx) =>
    listOf(
      ctx,
      d.store.organizations,
      listQuery({ names: csv.optional(), guids: csv.optional() }, ['created_at', 'updated_at', 'name']),
      async (q) => ({ name: q.names, guid: within(q.guids, visibleOrgList(await s.access(ctx))) }),
      (o) => presentOrganization(o, ctx.baseUrl),
    ),
  );
  server.route('GET', '/v3/organizations/:guid', 'user', async (ctx) => {
    const org = await mustGet(d.store.organizations, ctx.params.guid!, 'Organization');
    if (!seesOrg(await s.access(ctx), org.guid)) throw errors.notFound('Organization');
    return ok(presentOrganization(org, ctx.baseUrl));
  });
  server.route('POST', '/v3/organizations', 'admin', async (ctx) => {
    const body = await readJson(ctx.req, createOrg);
    const at = now();
    const org = { guid: newGuid(), name: body.name, quota_guid: null, created_at: at, updated_at: at };
    try {
      await d.store.organizations.insert(org);
    } catch (err) {
      if (err instanceof DbError && err.code === 'unique_violation') throw errors.uniqueness(`Organization '${body.name}' already exists.`);
      throw err;
    }
    await audit(ctx, AUDIT.orgCreate, orgTarget(org), { request: { name: org.name } });
    return ok(presentOrganization(org, ctx.baseUrl), 201);
  });
  server.route('DELETE', '/v3/organizations/:guid', 'admin', async (ctx) => {
    const org = await mustGet(d.store.organizations, ctx.params.guid!, 'Organization');
    await d.store.transaction(async (tx) => {
      if ((await tx.spaces.count({ organization_guid: org.guid })) > 0) throw errors.unprocessable('Delete the spaces of this organization first.');
      await tx.roles.delete({ organization_guid: org.guid });
      await tx.spaceQuotas.delete({ organization_guid: org.guid });
      // CF deletes an org's private domains with it; their routes were in its spaces, gone already.
      await tx.domains.delete({ organization_guid: org.guid });
      await tx.organizations.delete({ guid: org.guid });
    });
    await audit(ctx, AUDIT.orgDelete, orgTarget(org), { recursive: true });
    return noContent;
  });

  server.route('GET', '/v3/spaces', 'user', (ctx) =>
    listOf(
      ctx,
      d.store.spaces,
      listQuery({ names: csv.optional(), guids: csv.optional(), organization_guids: csv.optional() }, ['created_at', 'updated_at', 'name']),
      async (q) => ({ name: q.names, guid: within(q.guids, await s.spaceWhere(ctx)), organization_guid: q.organization_guids }),
      (x) => presentSpace(x, ctx.baseUrl),
    ),
  );
  server.route('GET', '/v3/spaces/:guid', 'user', async (ctx) => ok(presentSpace(await s.space(ctx, ctx.params.guid!, 'read'), ctx.baseUrl)));
  server.route('POST', '/v3/spaces', 'user', async (ctx) => {
    const body = await readJson(ctx.req, createSpace);
    const orgGuid = body.relationships.organization.data.guid;
    const access = await s.access(ctx);
    if (!(await d.store.organizations.get(orgGuid)) || !seesOrg(access, orgGuid)) throw errors.unprocessable('Invalid organization. Ensure the organization exists and you have access to it.');
    if (!managesOrg(access, orgGuid)) throw errors.notAuthorized();
    const at = now();
    const space = { guid: newGuid(), name: body.name, organization_guid: orgGuid, quota_guid: null, created_at: at, updated_at: at };
    try {
      await d.store.spaces.insert(space);
    } catch (err) {
      if (err instanceof DbError && err.code === 'unique_violation') throw errors.uniqueness(`Space '${body.name}' already exists in this organization.`);
      throw err;
    }
    await audit(ctx, AUDIT.spaceCreate, spaceTarget(space), { request: { name: space.name, organization_guid: orgGuid } });
    return ok(presentSpace(space, ctx.baseUrl), 201);
  });
  server.route('DELETE', '/v3/spaces/:guid', 'user', async (ctx) => {
    const space = await s.space(ctx, ctx.params.guid!, 'read');
    if (!managesOrg(await s.access(ctx), space.organization_guid)) throw errors.notAuthorized();
    if (space.guid === d.defaultSpaceGuid) throw errors.unprocessable('The default space cannot be deleted.');
    await d.store.transaction(async (tx) => {
      const used = await Promise.all([tx.apps.count({ space_guid: space.guid }), tx.routes.count({ space_guid: space.guid }), tx.serviceInstances.count({ space_guid: space.guid })]);
      if (used.some((n) => n > 0)) {
        throw errors.unprocessable('Delete the apps, routes and service instances of this space first.');
      }
      await tx.roles.delete({ space_guid: space.guid });
      await tx.spaces.delete({ guid: space.guid });
    });
    await audit(ctx, AUDIT.spaceDelete, spaceTarget(space), { recursive: true });
    return noContent;
  });

  registerRoles(server, d);
}

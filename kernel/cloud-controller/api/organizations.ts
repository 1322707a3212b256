// /v3/organizations and /v3/spaces: the tenancy skeleton. Apps live in a space; a default
// organization and space exist from the first start. Roles and quotas come next; until
// then any user reads them and only admins create or delete them.
import { z } from 'zod';
import { DbError } from '../db/mod.ts';
import { errors } from '../errors.ts';
import { readJson } from '../http/body.ts';
import { csv, listQuery } from '../http/query.ts';
import type { ApiServer } from '../http/server.ts';
import { presentOrganization, presentSpace } from '../presenters.ts';
import { listOf, mustGet, newGuid, noContent, now, ok, toOne } from './common.ts';
import type { Deps } from './deps.ts';

const name = z.string().min(1).max(255);
const createOrg = z.object({ name, metadata: z.unknown().optional() }).strict();
const createSpace = z.object({ name, relationships: z.object({ organization: toOne }).strict(), metadata: z.unknown().optional() }).strict();

export function registerOrganizations(server: ApiServer, d: Deps): void {
  server.route('GET', '/v3/organizations', 'user', (ctx) =>
    listOf(ctx, d.store.organizations, listQuery({ names: csv.optional(), guids: csv.optional() }, ['created_at', 'updated_at', 'name']), (q) => ({ name: q.names, guid: q.guids }), (o) => presentOrganization(o, ctx.baseUrl)),
  );
  server.route('GET', '/v3/organizations/:guid', 'user', async (ctx) => ok(presentOrganization(await mustGet(d.store.organizations, ctx.params.guid!, 'Organization'), ctx.baseUrl)));
  server.route('POST', '/v3/organizations', 'admin', async (ctx) => {
    const body = await readJson(ctx.req, createOrg);
    const at = now();
    try {
      return ok(presentOrganization(await d.store.organizations.insert({ guid: newGuid(), name: body.name, created_at: at, updated_at: at }), ctx.baseUrl), 201);
    } catch (err) {
      if (err instanceof DbError && err.code === 'unique_violation') throw errors.uniqueness(`Organization '${body.name}' already exists.`);
      throw err;
    }
  });
  server.route('DELETE', '/v3/organizations/:guid', 'admin', async (ctx) => {
    const org = await mustGet(d.store.organizations, ctx.params.guid!, 'Organization');
    if ((await d.store.spaces.count({ organization_guid: org.guid })) > 0) throw errors.unprocessable('Delete the spaces of this organization first.');
    await d.store.organizations.delete({ guid: org.guid });
    return noContent;
  });

  server.route('GET', '/v3/spaces', 'user', (ctx) =>
    listOf(
      ctx,
      d.store.spaces,
      listQuery({ names: csv.optional(), guids: csv.optional(), organization_guids: csv.optional() }, ['created_at', 'updated_at', 'name']),
      (q) => ({ name: q.names, guid: q.guids, organization_guid: q.organization_guids }),
      (s) => presentSpace(s, ctx.baseUrl),
    ),
  );
  server.route('GET', '/v3/spaces/:guid', 'user', async (ctx) => ok(presentSpace(await mustGet(d.store.spaces, ctx.params.guid!, 'Space'), ctx.baseUrl)));
  server.route('POST', '/v3/spaces', 'admin', async (ctx) => {
    const body = await readJson(ctx.req, createSpace);
    const orgGuid = body.relationships.organization.data.guid;
    if (!(await d.store.organizations.get(orgGuid))) throw errors.unprocessable('Invalid organization. Ensure the organization exists.');
    const at = now();
    try {
      return ok(presentSpace(await d.store.spaces.insert({ guid: newGuid(), name: body.name, organization_guid: orgGuid, created_at: at, updated_at: at }), ctx.baseUrl), 201);
    } catch (err) {
      if (err instanceof DbError && err.code === 'unique_violation') throw errors.uniqueness(`Space '${body.name}' already exists in this organization.`);
      throw err;
    }
  });
  server.route('DELETE', '/v3/spaces/:guid', 'admin', async (ctx) => {
    const space = await mustGet(d.store.spaces, ctx.params.guid!, 'Space');
    if (space.guid === d.defaultSpaceGuid) throw errors.unprocessable('The default space cannot be deleted.');
    if ((await d.store.apps.count({ space_guid: space.guid })) > 0 || (await d.store.routes.count({ space_guid: space.guid })) > 0) {
      throw errors.unprocessable('Delete the apps and routes of this space first.');
    }
    await d.store.spaces.delete({ guid: space.guid });
    return noContent;
  });
}

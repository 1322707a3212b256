// /v3/roles: who holds which role in which org or space (CF v3's shapes). Admins give and take
// any role; an org's managers those in the org and its spaces; a space's managers those in the
// space. A space role needs an org role in the space's org first (422 otherwise, as CF), and
// that org role stays while space roles in the org remain. Users see the roles of the orgs
// and spaces they see. `include=user` adds the users (CF's `included.users`).
import { z } from 'zod';
import { isSpaceRole, managesRole, ROLE_TYPES, seesOrg, seesRole, within, type Access, type RoleType } from '../access.ts';
import { AUDIT, auditor, userTarget } from '../audit.ts';
import { DbError, type RoleRecord, type UserRecord } from '../db/mod.ts';
import { errors } from '../errors.ts';
import { readJson } from '../http/body.ts';
import { csv, listQuery } from '../http/query.ts';
import type { ApiServer, RequestContext } from '../http/server.ts';
import { presentRole, presentUser } from '../presenters.ts';
import { listOf, mustGet, newGuid, noContent, now, ok, toOne } from './common.ts';
import type { Deps } from './deps.ts';
import { scope } from './scope.ts';

const userRef = z.union([z.object({ guid: z.string().min(1).max(255) }).strict(), z.object({ username: z.string().min(1).max(255), origin: z.string().optional() }).strict()]);
const createRole = z
  .object({
    type: z.enum(ROLE_TYPES),
    relationships: z.object({ user: z.object({ data: userRef }).strict(), organization: toOne.optional(), space: toOne.optional() }).strict(),
  })
  .strict()
  .superRefine((b, ctx) => {
    const want = isSpaceRole(b.type) ? 'space' : 'organization';
    const other = want === 'space' ? 'organization' : 'space';
    if (!b.relationships[want]) ctx.addIssue({ code: 'custom', path: ['relationships', want], message: `Required for a ${b.type} role` });
    if (b.relationships[other]) ctx.addIssue({ code: 'custom', path: ['relationships', other], message: `Not allowed for a ${b.type} role` });
  });

const roleFilters = { guids: csv.optional(), types: csv.optional(), user_guids: csv.optional(), space_guids: csv.optional(), organization_guids: csv.optional(), include: z.literal('user').optional() };

export function registerRoles(server: ApiServer, d: Deps): void {
  const s = scope(d.store);
  const audit = auditor(d.store);

  /** The org a role belongs to: its own, or its space's. */
  const orgOf = async (role: { organization_guid: string | null; space_guid: string | null }): Promise<string> =>
    role.organization_guid ?? (await mustGet(d.store.spaces, role.space_guid!, 'Space')).organization_guid;

  /** A role the caller sees (404 otherwise) and, for `manage`, may give or take (403 otherwise). */
  const roleFor = async (ctx: RequestContext, manage: boolean): Promise<RoleRecord> => {
    const role = await mustGet(d.store.roles, ctx.params.guid!, 'Role');
    const access = await s.access(ctx);
    if (!seesRole(access, role)) throw errors.notFound('Role');
    if (manage && !managesRole(access, role, await orgOf(role))) throw errors.notAuthorized();
    return role;
  };

  server.route('GET', '/v3/roles', 'user', async (ctx) => {
    const reply = await listOf(
      ctx,
      d.store.roles,
      listQuery(roleFilters),
      async (q) => ({
        guid: await visibleRoles(ctx, q.guids),
        type: q.types as RoleType[] | undefined,
        user_guid: q.user_guids,
        space_guid: q.space_guids,
        organization_guid: q.organization_guids,
      }),
      (r) => presentRole(r, ctx.baseUrl),
    );
    if (ctx.query.get('include') !== 'user' || !('body' in reply)) return reply;
    const page = reply.body as { resources: Array<{ relationships: { user: { data: { guid: string } | null } } }> };
    const users = await d.store.users.list({ guid: [...new Set(page.resources.flatMap((r) => (r.relationships.user.data ? [r.relationships.user.data.guid] : [])))] });
    return ok({ ...page, included: { users: users.map((u) => presentUser(u, ctx.baseUrl)) } });
  });

  server.route('GET', '/v3/roles/:guid', 'user', async (ctx) => ok(presentRole(await roleFor(ctx, false), ctx.baseUrl)));

  server.route('POST', '/v3/roles', 'user', async (ctx) => {
    const body = await readJson(ctx.req, createRole);
    const access = await s.access(ctx);
    const { organization, space } = body.relationships;
    const target = space ? await spaceTarget(access, space.data.guid) : await orgTarget(access, organization!.data.guid);
    if (!managesRole(access, { space_guid: space?.data.guid ?? null }, target.orgGuid)) throw errors.notAuthorized();
    const ref = body.relationships.user.data;
    const user: UserRecord | undefined = 'guid' in ref ? await d.store.users.get(ref.guid) : await d.store.users.find({ username: ref.username });
    if (!user) throw errors.unprocessable('Invalid user. Ensure that the user exists and you have access to it.');
    if (space && (await d.store.roles.count({ user_guid: user.guid, organization_guid: target.orgGuid })) === 0) {
      throw errors.unprocessable("Users cannot be assigned roles in a space if they do not have a role in that space's organization.");
    }
    const at = now();
    const role: RoleRecord = {
      guid: newGuid(),
      type: body.type,
      user_guid: user.guid,
      organization_guid: space ? null : target.orgGuid,
      space_guid: space ? space.data.guid : null,
      created_at: at,
      updated_at: at,
    };
    try {
      await d.store.roles.insert(role);
    } catch (err) {
      if (err instanceof DbError && err.code === 'unique_violation') throw errors.uniqueness(`User '${user.username}' already has '${body.type}' role in ${target.label}.`);
      throw err;
    }
    await audit(ctx, AUDIT.roleCreate, userTarget(user, role, target.orgGuid), { role_guid: role.guid, type: role.type });
    return ok(presentRole(role, ctx.baseUrl), 201);
  });

  // CF answers 202 and a job; Ingot deletes at once.
  server.route('DELETE', '/v3/roles/:guid', 'user', async (ctx) => {
    const role = await roleFor(ctx, true);
    await d.store.transaction(async (tx) => {
      if (role.organization_guid !== null) {
        const otherOrgRoles = await tx.roles.count({ user_guid: role.user_guid, organization_guid: role.organization_guid });
        const spaces = (await tx.spaces.list({ organization_guid: role.organization_guid })).map((x) => x.guid);
        if (otherOrgRoles <= 1 && (await tx.roles.count({ user_guid: role.user_guid, space_guid: spaces })) > 0) {
          throw errors.unprocessable(`Cannot delete the ${role.type} role while the user has roles in spaces of that organization; delete those first.`);
        }
      }
      await tx.roles.delete({ guid: role.guid });
    });
    const user = await d.store.users.get(role.user_guid);
    await audit(ctx, AUDIT.roleDelete, userTarget(user ?? { guid: role.user_guid, username: '' }, role, await orgOf(role)), { role_guid: role.guid, type: role.type });
    return noContent;
  });

  /** A role's space: 422 unless the caller sees it. */
  async function spaceTarget(access: Access, guid: string): Promise<{ orgGuid: string; label: string }> {
    const space = await d.store.spaces.get(guid);
    if (!space || !(access.admin || access.readableSpaces.has(space.guid))) throw errors.unprocessable('Invalid space. Ensure that the space exists and you have access to it.');
    return { orgGuid: space.organization_guid, label: `space '${space.name}'` };
  }

  /** A role's org: 422 unless the caller sees it. */
  async function orgTarget(access: Access, guid: string): Promise<{ orgGuid: string; label: string }> {
    const org = await d.store.organizations.get(guid);
    if (!org || !seesOrg(access, org.guid)) throw errors.unprocessable('Invalid organization. Ensure that the organization exists and you have access to it.');
    return { orgGuid: org.guid, label: `organization '${org.name}'` };
  }

  /** The guids a list may show (undefined: all, for admins), within those asked for. */
  async function visibleRoles(ctx: RequestContext, asked: string[] | undefined): Promise<string[] | undefined> {
    const access = await s.access(ctx);
    if (access.admin) return asked;
    const [inOrgs, inSpaces] = await Promise.all([d.store.roles.list({ organization_guid: [...access.visibleOrgs] }), d.store.roles.list({ space_guid: [...access.readableSpaces] })]);
    return within(asked, [...inOrgs, ...inSpaces].map((r) => r.guid));
  }
}

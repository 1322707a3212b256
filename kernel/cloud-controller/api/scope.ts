// Tenancy, enforced in one place: the caller's Access (access.ts), computed once per request,
// and the lookups every user-facing handler goes through — a resource by guid for reading or
// writing (404 when its space is not readable, 403 when readable but not writable), the space
// or app a new resource goes into (422 when not readable, as CF), and the filters that narrow
// every list to readable spaces. Internal, signed and bulk endpoints never come here.
import { accessOf, check, readableSpaceList, type Access, type Mode } from '../access.ts';
import type { AppRecord, Repo, RouteRecord, SpaceRecord, Store } from '../db/mod.ts';
import { type ApiError, errors } from '../errors.ts';
import type { RequestContext } from '../http/server.ts';
import { perStore } from '../per-store.ts';
import { userOf } from './common.ts';

export type { Mode } from '../access.ts';

export interface Scope {
  /** The caller's access, computed at the first call of a request. */
  access(ctx: RequestContext): Promise<Access>;
  /** An app the caller may `mode`: 404 when absent or unreadable, 403 when read-only. */
  app(ctx: RequestContext, guid: string, mode: Mode): Promise<AppRecord>;
  /** A record of an app (package, build, droplet, process, event), checked by its app's space. */
  ofApp<R extends { guid: string; app_guid: string }>(ctx: RequestContext, repo: Repo<R>, guid: string, what: string, mode: Mode): Promise<R>;
  route(ctx: RequestContext, guid: string, mode: Mode): Promise<RouteRecord>;
  space(ctx: RequestContext, guid: string, mode: Mode): Promise<SpaceRecord>;
  /** The space a new app or route goes into: 422 when absent or unreadable, 403 when read-only. */
  spaceToCreateIn(ctx: RequestContext, guid: string): Promise<SpaceRecord>;
  /** An app named in a body (a package's, a destination's): 422 `invalid` when absent or unreadable, 403 when read-only. */
  appNamed(ctx: RequestContext, guid: string, invalid: string): Promise<AppRecord>;
  /** A record that lives in a space (service instance, binding): 404 when absent or unreadable, 403 when read-only. */
  inSpace<R extends { guid: string; space_guid: string }>(ctx: RequestContext, repo: Repo<R>, guid: string, what: string, mode: Mode): Promise<R>;
  /** Such a record named in a body: 422 `invalid` when absent or unreadable, 403 when read-only. */
  inSpaceNamed<R extends { guid: string; space_guid: string }>(ctx: RequestContext, repo: Repo<R>, guid: string, invalid: string): Promise<R>;
  /** Spaces a list may show; undefined for every space (admins). */
  spaceWhere(ctx: RequestContext): Promise<string[] | undefined>;
  /** Apps a list may show; undefined for every app (admins). */
  appWhere(ctx: RequestContext): Promise<string[] | undefined>;
}

/** The Scope over this store; one per store, so a request's access is computed once. */
export const scope = perStore(makeScope);

function makeScope(store: Store): Scope {
  const cache = new WeakMap<RequestContext, Promise<Access>>();

  const access = (ctx: RequestContext): Promise<Access> => {
    let a = cache.get(ctx);
    if (!a) cache.set(ctx, (a = load(store, ctx)));
    return a;
  };

  /** Throws `hidden` (or 403) unless the caller may `mode` in the space. */
  const guard = async (ctx: RequestContext, spaceGuid: string, mode: Mode, hidden: () => ApiError): Promise<void> => {
    const verdict = check(await access(ctx), spaceGuid, mode);
    if (verdict === 'hidden') throw hidden();
    if (verdict === 'forbidden') throw errors.notAuthorized();
  };

  const app = async (ctx: RequestContext, guid: string, mode: Mode, hidden: () => ApiError): Promise<AppRecord> => {
    const found = await store.apps.get(guid);
    if (!found) throw hidden();
    await guard(ctx, found.space_guid, mode, hidden);
    return found;
  };

  return {
    access,
    app: (ctx, guid, mode) => app(ctx, guid, mode, () => errors.notFound('App')),
    async ofApp(ctx, repo, guid, what, mode) {
      const record = await repo.get(guid);
      if (!record) throw errors.notFound(what);
      await app(ctx, record.app_guid, mode, () => errors.notFound(what));
      return record;
    },
    async route(ctx, guid, mode) {
      const route = await store.routes.get(guid);
      if (!route) throw errors.notFound('Route');
      await guard(ctx, route.space_guid, mode, () => errors.notFound('Route'));
      return route;
    },
    async space(ctx, guid, mode) {
      const space = await store.spaces.get(guid);
      if (!space) throw errors.notFound('Space');
      await guard(ctx, space.guid, mode, () => errors.notFound('Space'));
      return space;
    },
    async spaceToCreateIn(ctx, guid) {
      const invalid = () => errors.unprocessable('Invalid space. Ensure that the space exists and you have access to it.');
      const space = await store.spaces.get(guid);
      if (!space) throw invalid();
      await guard(ctx, space.guid, 'write', invalid);
      return space;
    },
    appNamed: (ctx, guid, invalid) => app(ctx, guid, 'write', () => errors.unprocessable(invalid)),
    async inSpace(ctx, repo, guid, what, mode) {
      const record = await repo.get(guid);
      if (!record) throw errors.notFound(what);
      await guard(ctx, record.space_guid, mode, () => errors.notFound(what));
      return record;
    },
    async inSpaceNamed(ctx, repo, guid, invalid) {
      const record = await repo.get(guid);
      if (!record) throw errors.unprocessable(invalid);
      await guard(ctx, record.space_guid, 'write', () => errors.unprocessable(invalid));
      return record;
    },
    async spaceWhere(ctx) {
      return readableSpaceList(await access(ctx));
    },
    async appWhere(ctx) {
      const spaces = readableSpaceList(await access(ctx));
      if (spaces === undefined) return undefined;
      return (await store.apps.list({ space_guid: spaces })).map((a) => a.guid);
    },
  };
}

async function load(store: Store, ctx: RequestContext): Promise<Access> {
  const user = userOf(ctx.principal);
  if (user.admin) return accessOf(user, [], []);
  const roles = await store.roles.list({ user_guid: user.guid });
  const managed = roles.flatMap((r) => (r.type === 'organization_manager' && r.organization_guid ? [r.organization_guid] : []));
  const named = roles.flatMap((r) => (r.space_guid ? [r.space_guid] : []));
  const [inManagedOrgs, withRoles] = await Promise.all([store.spaces.list({ organization_guid: managed }), store.spaces.list({ guid: named })]);
  return accessOf(user, roles, [...inManagedOrgs, ...withRoles]);
}

// /v3/domains and /v3/routes with their destinations (route mappings). A route is a host in
// a domain (and optionally a path); a host already taken in its domain is refused with 422
// CF-RouteHostTaken, and the system domain's platform hosts (api, …) are never given out.
// Mapping or unmapping a started app tells its instances at once (dea.update).
// A domain is shared (admins create and delete it, everyone routes in it) or private to an
// org (relationships.organization): its org's managers create and delete it, only members of
// the org see it, and its routes live only in the org's spaces.
import { z } from 'zod';
import { DbError, type DomainRecord, type RouteMappingRecord, type RouteRecord } from '../db/mod.ts';
import { errors } from '../errors.ts';
import { readJson } from '../http/body.ts';
import { csv, listQuery, parseQuery } from '../http/query.ts';
import type { ApiServer, RequestContext } from '../http/server.ts';
import { WEB } from '../lookups.ts';
import { presentDestination, presentDomain, presentRoute } from '../presenters.ts';
import { invalidHost, invalidPath, isReserved, overlappingDomain, routeUri, uriTooLong } from '../route-names.ts';
import { managesDomain, seesDomain, seesOrg, visibleDomainWhere, within } from '../access.ts';
import { AUDIT, auditor } from '../audit.ts';
import { quotaGuard } from '../quota-guard.ts';
import { NO_USAGE } from '../quotas.ts';
import { listOf, newGuid, noContent, now, ok, toOne } from './common.ts';
import type { Deps } from './deps.ts';
import { scope } from './scope.ts';

const domainName = z
  .string()
  .max(253)
  .regex(/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/, 'must be a lower-case DNS name with at least two labels');
const createDomain = z
  .object({
    name: domainName,
    internal: z.boolean().default(false),
    relationships: z.object({ organization: toOne }).strict().optional(),
    metadata: z.unknown().optional(),
  })
  .strict()
  .refine((b) => !(b.internal && b.relationships?.organization), { message: 'a private domain (relationships.organization) cannot be internal', path: ['internal'] });

const createRoute = z
  .object({
    host: z.string().max(63).default(''),
    path: z.string().max(128).default(''),
    relationships: z.object({ domain: toOne, space: toOne.optional() }).strict(),
    metadata: z.unknown().optional(),
  })
  .strict();

const destination = z
  .object({
    app: z.object({ guid: z.string().min(1), process: z.object({ type: z.string().min(1) }).strict().optional() }).strict(),
    weight: z.null().optional(),
    port: z.number().int().optional(),
    protocol: z.string().optional(),
  })
  .strict();
const destinationsBody = z.object({ destinations: z.array(destination).max(100) }).strict();

export function registerRoutes(server: ApiServer, d: Deps): void {
  const s = scope(d.store);
  const audit = auditor(d.store);
  const quotas = quotaGuard(d.store);

  // ---- domains ----
  /** A domain the caller sees: 404 for one that is absent or private to an org it is not in. */
  const visibleDomain = async (ctx: RequestContext, guid: string): Promise<DomainRecord> => {
    const domain = await d.store.domains.get(guid);
    if (!domain || !seesDomain(await s.access(ctx), domain)) throw errors.notFound('Domain');
    return domain;
  };

  server.route('GET', '/v3/domains', 'user', (ctx) =>
    listOf(
      ctx,
      d.store.domains,
      listQuery({ names: csv.optional(), guids: csv.optional(), organization_guids: csv.optional() }, ['created_at', 'updated_at', 'name']),
      async (q) => ({ name: q.names, guid: q.guids, organization_guid: q.organization_guids, ...visibleDomainWhere(await s.access(ctx)) }),
      (x) => presentDomain(x, ctx.baseUrl),
    ),
  );
  server.route('GET', '/v3/domains/:guid', 'user', async (ctx) => ok(presentDomain(await visibleDomain(ctx, ctx.params.guid!), ctx.baseUrl)));
  server.route('POST', '/v3/domains', 'user', async (ctx) => {
    const body = await readJson(ctx.req, createDomain);
    const orgGuid = body.relationships?.organization.data.guid ?? null;
    const access = await s.access(ctx);
    if (orgGuid !== null && (!(await d.store.organizations.get(orgGuid)) || !seesOrg(access, orgGuid))) {
      throw errors.unprocessable('Invalid organization. Ensure the organization exists and you have access to it.');
    }
    if (!managesDomain(access, { organization_guid: orgGuid })) throw errors.notAuthorized();
    const at = now();
    const domain: DomainRecord = { guid: newGuid(), name: body.name, internal: body.internal, organization_guid: orgGuid, created_at: at, updated_at: at };
    try {
      // Under a lock, so two controllers cannot each let in one half of an overlapping pair.
      await d.store.locked('domains', async (tx) => {
        const overlap = overlappingDomain(domain.name, orgGuid, await tx.domains.list());
        if (overlap) throw errors.unprocessable(`The domain name "${domain.name}" cannot be created because "${overlap.name}" is already reserved by another domain`);
        await tx.domains.insert(domain);
      });
    } catch (err) {
      if (err instanceof DbError && err.code === 'unique_violation') throw errors.uniqueness(`The domain name "${body.name}" is already in use`);
      throw err;
    }
    return ok(presentDomain(domain, ctx.baseUrl), 201);
  });
  server.route('DELETE', '/v3/domains/:guid', 'user', async (ctx) => {
    const domain = await visibleDomain(ctx, ctx.params.guid!);
    if (!managesDomain(await s.access(ctx), domain)) throw errors.notAuthorized();
    if (domain.name === d.domains.system || domain.name === d.domains.apps) throw errors.unprocessable(`${domain.name} is a domain of the platform's config and cannot be deleted.`);
    if ((await d.store.routes.count({ domain_guid: domain.guid })) > 0) throw errors.unprocessable('Delete the routes of this domain first.');
    await d.store.domains.delete({ guid: domain.guid });
    return noContent;
  });
  server.route('GET', '/v3/domains/:guid/route_reservations', 'user', async (ctx) => {
    const domain = await visibleDomain(ctx, ctx.params.guid!);
    const q = parseQuery(ctx.query, z.object({ host: z.string().default(''), path: z.string().default('') }).strict());
    const taken = (await d.store.routes.count({ domain_guid: domain.guid, host: q.host, path: q.path })) > 0 || isReserved(q.host, domain.name, d.domains.system, d.config.reserved_system_hosts);
    return ok({ matching_route: taken });
  });

  // ---- routes ----
  const routeFilters = { hosts: csv.optional(), paths: csv.optional(), domain_guids: csv.optional(), space_guids: csv.optional(), guids: csv.optional() };
  const routeWhere = (q: { hosts?: string[]; paths?: string[]; domain_guids?: string[]; space_guids?: string[]; guids?: string[] }) => ({
    host: q.hosts,
    path: q.paths,
    domain_guid: q.domain_guids,
    space_guid: q.space_guids,
    guid: q.guids,
  });
  server.route('GET', '/v3/routes', 'user', (ctx) =>
    listOf(
      ctx,
      d.store.routes,
      listQuery({ ...routeFilters, app_guids: csv.optional() }, ['created_at', 'updated_at', 'host']),
      async (q) => {
        const where = { ...routeWhere(q), space_guid: within(q.space_guids, await s.spaceWhere(ctx)) };
        if (!q.app_guids) return where;
        const mapped = [...new Set((await d.store.routeMappings.list({ app_guid: q.app_guids })).map((m) => m.route_guid))];
        return { ...where, guid: where.guid ? where.guid.filter((g) => mapped.includes(g)) : mapped };
      },
      (r) => presentRouteWithDetails(ctx, r),
    ),
  );
  server.route('GET', '/v3/apps/:guid/routes', 'user', async (ctx) => {
    await s.app(ctx, ctx.params.guid!, 'read');
    const mapped = [...new Set((await d.store.routeMappings.list({ app_guid: ctx.params.guid! })).map((m) => m.route_guid))];
    return listOf(ctx, d.store.routes, listQuery(routeFilters, ['created_at', 'updated_at', 'host']), (q) => ({ ...routeWhere(q), guid: q.guids ? q.guids.filter((g) => mapped.includes(g)) : mapped }), (r) => presentRouteWithDetails(ctx, r));
  });
  server.route('GET', '/v3/routes/:guid', 'user', async (ctx) => ok(await presentRouteWithDetails(ctx, await s.route(ctx, ctx.params.guid!, 'read'))));

  server.route('POST', '/v3/routes', 'user', async (ctx) => {
    const body = await readJson(ctx.req, createRoute);
    const domain = await d.store.domains.get(body.relationships.domain.data.guid);
    if (!domain || !seesDomain(await s.access(ctx), domain)) throw errors.unprocessable('Invalid domain. Ensure that the domain exists and you have access to it.');
    const spaceGuid = body.relationships.space?.data.guid ?? d.defaultSpaceGuid;
    const space = await s.spaceToCreateIn(ctx, spaceGuid);
    if (domain.organization_guid !== null && domain.organization_guid !== space.organization_guid) {
      const [owner, org] = await Promise.all([d.store.organizations.get(domain.organization_guid), d.store.organizations.get(space.organization_guid)]);
      throw errors.unprocessable(`Invalid domain. Domain '${domain.name}' is private to organization '${owner?.name ?? domain.organization_guid}' and not available in organization '${org?.name ?? space.organization_guid}'.`);
    }
    const problem = invalidHost(body.host) ?? invalidPath(body.path);
    if (problem) throw errors.unprocessable(problem);
    if (uriTooLong(body.host, domain.name)) throw errors.unprocessable('Host combined with domain name must be no more than 253 characters.');
    const uri = routeUri(body.host, domain.name, body.path);
    if (isReserved(body.host, domain.name, d.domains.system, d.config.reserved_system_hosts)) {
      throw errors.routeHostTaken(`The host '${body.host}' is reserved for the platform in domain ${domain.name}: ${uri} cannot be a route.`);
    }
    const at = now();
    const route: RouteRecord = { guid: newGuid(), host: body.host, path: body.path, domain_guid: domain.guid, space_guid: spaceGuid, created_at: at, updated_at: at };
    try {
      await quotas.guard(spaceGuid, { ...NO_USAGE, routes: 1 }, (tx) => tx.routes.insert(route));
    } catch (err) {
      if (err instanceof DbError && err.code === 'unique_violation') {
        throw errors.routeHostTaken(`Route ${uri} already exists: the host '${body.host}' is taken in domain ${domain.name}.`);
      }
      throw err;
    }
    await audit(ctx, AUDIT.routeCreate, await audit.route(route, uri), { request: { host: route.host, path: route.path, domain_guid: domain.guid } });
    return ok(presentRoute(route, domain, [], ctx.baseUrl), 201);
  });

  server.route('DELETE', '/v3/routes/:guid', 'user', async (ctx) => {
    const route = await s.route(ctx, ctx.params.guid!, 'write');
    const mappings = await d.store.routeMappings.list({ route_guid: route.guid });
    await d.store.transaction(async (tx) => {
      await tx.routeMappings.delete({ route_guid: route.guid });
      await tx.routes.delete({ guid: route.guid });
    });
    await notifyApps(d, mappings.map((m) => m.app_guid));
    await audit(ctx, AUDIT.routeDelete, await audit.route(route, await uriOf(route)), { recursive: true });
    return noContent;
  });

  // ---- destinations ----
  server.route('GET', '/v3/routes/:guid/destinations', 'user', async (ctx) => {
    const route = await s.route(ctx, ctx.params.guid!, 'read');
    return ok(await destinationsOf(ctx, route));
  });

  const mapApps = async (ctx: RequestContext, replace: boolean) => {
    const body = await readJson(ctx.req, destinationsBody);
    const route = await s.route(ctx, ctx.params.guid!, 'write');
    const wanted: Array<{ app_guid: string; process_type: string }> = [];
    for (const [i, dest] of body.destinations.entries()) {
      const app = await s.appNamed(ctx, dest.app.guid, `destinations[${i}].app.guid: App not found`);
      if (app.space_guid !== route.space_guid) throw errors.unprocessable(`destinations[${i}]: the app and the route must be in the same space`);
      const type = dest.app.process?.type ?? WEB;
      if (type !== WEB) throw errors.unprocessable(`destinations[${i}].app.process.type: only the web process can be routed to`);
      wanted.push({ app_guid: app.guid, process_type: type });
    }
    const before = await d.store.routeMappings.list({ route_guid: route.guid });
    const at = now();
    await d.store.transaction(async (tx) => {
      if (replace) await tx.routeMappings.delete({ route_guid: route.guid });
      const existing = replace ? [] : before;
      for (const w of wanted) {
        if (existing.some((m) => m.app_guid === w.app_guid && m.process_type === w.process_type)) continue;
        await tx.routeMappings.insert({ guid: newGuid(), route_guid: route.guid, app_guid: w.app_guid, process_type: w.process_type, created_at: at, updated_at: at });
      }
    });
    await notifyApps(d, [...before.map((m) => m.app_guid), ...wanted.map((w) => w.app_guid)]);
    const after = await d.store.routeMappings.list({ route_guid: route.guid });
    const has = (list: typeof before, m: (typeof before)[number]) => list.some((x) => x.app_guid === m.app_guid && x.process_type === m.process_type);
    for (const m of before.filter((m) => !has(after, m))) await auditMapping(ctx, AUDIT.appUnmapRoute, route, m);
    for (const m of after.filter((m) => !has(before, m))) await auditMapping(ctx, AUDIT.appMapRoute, route, m);
    return ok(await destinationsOf(ctx, route));
  };
  server.route('POST', '/v3/routes/:guid/destinations', 'user', (ctx) => mapApps(ctx, false));
  server.route('PATCH', '/v3/routes/:guid/destinations', 'user', (ctx) => mapApps(ctx, true));

  server.route('DELETE', '/v3/routes/:guid/destinations/:dest', 'user', async (ctx) => {
    const route = await s.route(ctx, ctx.params.guid!, 'write');
    const mapping = await d.store.routeMappings.find({ guid: ctx.params.dest!, route_guid: route.guid });
    if (!mapping) throw errors.notFound('Destination');
    await d.store.routeMappings.delete({ guid: mapping.guid });
    await notifyApps(d, [mapping.app_guid]);
    await auditMapping(ctx, AUDIT.appUnmapRoute, route, mapping);
    return noContent;
  });

  /** CF's map-route and unmap-route events: on the app, naming the route. */
  async function auditMapping(ctx: RequestContext, type: typeof AUDIT.appMapRoute | typeof AUDIT.appUnmapRoute, route: RouteRecord, m: RouteMappingRecord): Promise<void> {
    const app = await d.store.apps.get(m.app_guid);
    if (!app) return;
    await audit.onApp(ctx, type, app, { route_guid: route.guid, route: await uriOf(route), destination_guid: m.guid, process_type: m.process_type });
  }

  async function uriOf(route: RouteRecord): Promise<string> {
    return routeUri(route.host, (await d.store.domains.get(route.domain_guid))?.name ?? '', route.path);
  }

  async function presentRouteWithDetails(ctx: RequestContext, r: RouteRecord) {
    const [domain, mappings] = await Promise.all([d.store.domains.get(r.domain_guid), d.store.routeMappings.list({ route_guid: r.guid })]);
    return presentRoute(r, domain as DomainRecord | undefined, mappings, ctx.baseUrl);
  }

  async function destinationsOf(ctx: RequestContext, route: RouteRecord) {
    const mappings = await d.store.routeMappings.list({ route_guid: route.guid });
    return {
      destinations: mappings.map(presentDestination),
      links: { self: { href: `${ctx.baseUrl}/v3/routes/${route.guid}/destinations` }, route: { href: `${ctx.baseUrl}/v3/routes/${route.guid}` } },
    };
  }
}

async function notifyApps(d: Deps, appGuids: string[]): Promise<void> {
  for (const guid of new Set(appGuids)) await d.runner.routesChanged(guid);
}

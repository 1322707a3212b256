// The audit trail (GET /v3/audit_events): who did what to which resource, when, and in which
// space and org. Handlers record through `auditor(store)` — the actor is the request's
// principal; the crash and health-manager events (app-events.ts) name the DEA or the health
// manager. Secrets never enter it: environment variable values are replaced as CF does.
// Bounded twice: at most MAX_EVENTS_PER_TARGET per resource (a flapping app must not fill the
// database), and nothing older than RETENTION_DAYS (CF's default cutoff), pruned at most
// once per PRUNE_EVERY_MS by each controller as it records.
import type { ActorType, AppRecord, AuditEventRecord, OrganizationRecord, RoleRecord, RouteRecord, SpaceRecord, Store, UserRecord } from './db/mod.ts';
import type { Principal, RequestContext } from './http/server.ts';
import { newGuid } from './ids.ts';
import { perStore } from './per-store.ts';

export const MAX_EVENTS_PER_TARGET = 500;
export const RETENTION_DAYS = 31;
const PRUNE_EVERY_MS = 60 * 60 * 1000;

/** CF's marker for a secret in an audit event. */
export const REDACTED = '[PRIVATE DATA HIDDEN]';

/** Every type of event the controller records. */
export const AUDIT = {
  appCreate: 'audit.app.create',
  appUpdate: 'audit.app.update',
  appStart: 'audit.app.start',
  appStop: 'audit.app.stop',
  appRestart: 'audit.app.restart',
  appScale: 'audit.app.process.scale',
  appDelete: 'audit.app.delete-request',
  appUpload: 'audit.app.package.upload',
  appBuild: 'audit.app.build.create',
  appMapRoute: 'audit.app.map-route',
  appUnmapRoute: 'audit.app.unmap-route',
  appCrash: 'audit.app.process.crash',
  appHmStart: 'audit.app.process.hm_start',
  appHmStop: 'audit.app.process.hm_stop',
  routeCreate: 'audit.route.create',
  routeDelete: 'audit.route.delete-request',
  roleCreate: 'audit.role.create',
  roleDelete: 'audit.role.delete',
  spaceCreate: 'audit.space.create',
  spaceDelete: 'audit.space.delete-request',
  orgCreate: 'audit.organization.create',
  orgDelete: 'audit.organization.delete-request',
  serviceBrokerCreate: 'audit.service_broker.create',
  serviceBrokerUpdate: 'audit.service_broker.update',
  serviceBrokerDelete: 'audit.service_broker.delete',
  serviceInstanceCreate: 'audit.service_instance.create',
  serviceInstanceUpdate: 'audit.service_instance.update',
  serviceInstanceDelete: 'audit.service_instance.delete',
  serviceBindingCreate: 'audit.service_binding.create',
  serviceBindingDelete: 'audit.service_binding.delete',
  serviceKeyCreate: 'audit.service_key.create',
  serviceKeyDelete: 'audit.service_key.delete',
} as const;

export type AuditType = (typeof AUDIT)[keyof typeof AUDIT];

export interface Actor {
  guid: string;
  type: ActorType;
  name: string;
}

/** What an event is about, and where: an org-level event has no space. */
export interface Target {
  guid: string;
  type: string;
  name: string;
  space_guid: string | null;
  organization_guid: string | null;
}

/** The platform's own actors: the DEAs and the health managers. */
export const SYSTEM_ACTORS = {
  dea: { guid: 'dea', type: 'dea', name: 'dea' },
  healthManager: { guid: 'health_manager', type: 'health_manager', name: 'health_manager' },
} as const satisfies Record<string, Actor>;

export function actorOf(p: Principal): Actor {
  if (p.kind === 'user') return { guid: p.guid, type: 'user', name: p.username };
  return { guid: p.kind, type: 'system', name: p.kind };
}

/** The variables' names with their values hidden; a deletion (null) stays null. */
export function redactEnv(vars: Record<string, string | null>): Record<string, string | null> {
  return Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v === null ? null : REDACTED]));
}

// ---- targets ----------------------------------------------------------------------------

export const appTarget = (a: AppRecord, orgGuid: string | null): Target => ({ guid: a.guid, type: 'app', name: a.name, space_guid: a.space_guid, organization_guid: orgGuid });
export const routeTarget = (r: RouteRecord, uri: string, orgGuid: string | null): Target => ({ guid: r.guid, type: 'route', name: uri, space_guid: r.space_guid, organization_guid: orgGuid });
export const spaceTarget = (s: SpaceRecord): Target => ({ guid: s.guid, type: 'space', name: s.name, space_guid: s.guid, organization_guid: s.organization_guid });
export const orgTarget = (o: OrganizationRecord): Target => ({ guid: o.guid, type: 'organization', name: o.name, space_guid: null, organization_guid: o.guid });
export const userTarget = (u: Pick<UserRecord, 'guid' | 'username'>, role: Pick<RoleRecord, 'space_guid'>, orgGuid: string): Target => ({
  guid: u.guid,
  type: 'user',
  name: u.username,
  space_guid: role.space_guid,
  organization_guid: orgGuid,
});

// ---- recording --------------------------------------------------------------------------

export interface NewEvent {
  type: AuditType;
  actor: Actor;
  target: Target;
  data?: Record<string, unknown>;
}

export interface AuditLog {
  /** Records an event by the request's caller. */
  (ctx: RequestContext, type: AuditType, target: Target, data?: Record<string, unknown>): Promise<void>;
  /** Records an event by any actor (the platform's own). */
  record(event: NewEvent): Promise<void>;
  /** Records an event by the request's caller about an app. */
  onApp(ctx: RequestContext, type: AuditType, app: AppRecord, data?: Record<string, unknown>): Promise<void>;
  /** An app's target, its org looked up. */
  app(app: AppRecord): Promise<Target>;
  /** A route's target, its org looked up; `uri` is its host.domain/path. */
  route(route: RouteRecord, uri: string): Promise<Target>;
}

/** The audit log over this store; one per store (its clock and pruning are shared). */
export const auditor = perStore(makeAuditLog);

function makeAuditLog(store: Store): AuditLog {
  let lastAt = 0;
  let prunedAt = 0;
  const orgOfSpace = async (spaceGuid: string): Promise<string | null> => (await store.spaces.get(spaceGuid))?.organization_guid ?? null;

  /** Strictly increasing times: events recorded one after another list in that order. */
  const stamp = (): string => {
    lastAt = Math.max(Date.now(), lastAt + 1);
    return new Date(lastAt).toISOString();
  };

  const record = async (e: NewEvent): Promise<void> => {
    const at = stamp();
    const row: AuditEventRecord = {
      guid: newGuid(),
      type: e.type,
      actor_guid: e.actor.guid,
      actor_type: e.actor.type,
      actor_name: e.actor.name,
      target_guid: e.target.guid,
      target_type: e.target.type,
      target_name: e.target.name,
      space_guid: e.target.space_guid,
      organization_guid: e.target.organization_guid,
      data: e.data ?? {},
      created_at: at,
      updated_at: at,
    };
    await store.auditEvents.insert(row);
    await trim(e.target.guid);
  };

  const trim = async (targetGuid: string): Promise<void> => {
    const excess = (await store.auditEvents.count({ target_guid: targetGuid })) - MAX_EVENTS_PER_TARGET;
    if (excess > 0) {
      const oldest = await store.auditEvents.list({ target_guid: targetGuid }, { orderBy: { column: 'created_at' }, limit: excess });
      await store.auditEvents.delete({ guid: oldest.map((x) => x.guid) });
    }
    if (Date.now() - prunedAt < PRUNE_EVERY_MS) return;
    prunedAt = Date.now();
    await store.auditEvents.delete({ $lt: { created_at: new Date(Date.now() - RETENTION_DAYS * 86_400_000).toISOString() } });
  };

  const log = (async (ctx, type, target, data) => record({ type, actor: actorOf(ctx.principal), target, ...(data ? { data } : {}) })) as AuditLog;
  log.record = record;
  log.app = async (app) => appTarget(app, await orgOfSpace(app.space_guid));
  log.onApp = async (ctx, type, app, data) => log(ctx, type, await log.app(app), data);
  log.route = async (route, uri) => routeTarget(route, uri, await orgOfSpace(route.space_guid));
  return log;
}

// /v3/audit_events: the audit trail (audit.ts) in CF's shape, oldest first unless asked.
// A user sees the events of the spaces it reads, and the org-level ones (orgs, spaces, org
// roles) of the orgs it manages; admins see all.
import { z } from 'zod';
import type { Access } from '../access.ts';
import type { AuditEventRecord, Where } from '../db/mod.ts';
import { errors } from '../errors.ts';
import { csv, listQuery } from '../http/query.ts';
import type { ApiServer } from '../http/server.ts';
import { presentAuditEvent } from '../presenters.ts';
import { listOf, mustGet, ok } from './common.ts';
import type { Deps } from './deps.ts';
import { scope } from './scope.ts';

const timestamp = z
  .string()
  .refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO-8601 timestamp')
  .transform((s) => new Date(s).getTime());

const filters = {
  types: csv.optional(),
  target_guids: csv.optional(),
  space_guids: csv.optional(),
  organization_guids: csv.optional(),
  'created_ats[gt]': timestamp.optional(),
  'created_ats[lt]': timestamp.optional(),
};

/** The events a user may see; undefined for admins (all). */
export function visibleEvents(a: Access): Where<AuditEventRecord> | undefined {
  if (a.admin) return undefined;
  return { $or: [{ space_guid: [...a.readableSpaces] }, { organization_guid: [...a.managedOrgs] }] };
}

function sees(a: Access, e: AuditEventRecord): boolean {
  return a.admin || (e.space_guid !== null && a.readableSpaces.has(e.space_guid)) || (e.organization_guid !== null && a.managedOrgs.has(e.organization_guid));
}

export function registerAuditEvents(server: ApiServer, d: Deps): void {
  const s = scope(d.store);

  server.route('GET', '/v3/audit_events', 'user', (ctx) =>
    listOf(
      ctx,
      d.store.auditEvents,
      listQuery(filters),
      async (q) => {
        // Times are shown in whole seconds: "after 10:00:00Z" starts at 10:00:01.
        const gt = q['created_ats[gt]'];
        const lt = q['created_ats[lt]'];
        return {
          ...visibleEvents(await s.access(ctx)),
          type: q.types,
          target_guid: q.target_guids,
          space_guid: q.space_guids,
          organization_guid: q.organization_guids,
          $gt: { created_at: gt === undefined ? undefined : new Date(gt + 999).toISOString() },
          $lt: { created_at: lt === undefined ? undefined : new Date(lt).toISOString() },
        };
      },
      (e) => presentAuditEvent(e, ctx.baseUrl),
    ),
  );

  server.route('GET', '/v3/audit_events/:guid', 'user', async (ctx) => {
    const e = await mustGet(d.store.auditEvents, ctx.params.guid!, 'Audit event');
    if (!sees(await s.access(ctx), e)) throw errors.notFound('Audit event');
    return ok(presentAuditEvent(e, ctx.baseUrl));
  });
}

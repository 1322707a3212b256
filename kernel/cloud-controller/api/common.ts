// Helpers the API modules share: the caller, a resource by guid or 404, v3 lists, and the
// small body schemas CF repeats everywhere (relationships, metadata).
import { z } from 'zod';
import type { ListOptions, Repo, Where } from '../db/mod.ts';
import { errors } from '../errors.ts';
import { paged, window } from '../http/pagination.ts';
import { orderBy, parseQuery } from '../http/query.ts';
import type { Principal, Reply, RequestContext } from '../http/server.ts';

export { newGuid, now } from '../ids.ts';

export function ok(body: unknown, status = 200): Reply {
  return { status, body };
}

export const noContent: Reply = { status: 204 };

export function userOf(p: Principal): { guid: string; username: string; admin: boolean } {
  if (p.kind !== 'user') throw errors.notAuthenticated();
  return p;
}

export function requireAdminPrincipal(p: Principal): void {
  if (p.kind !== 'user' || !p.admin) throw errors.notAuthorized();
}

export async function mustGet<R extends { guid: string }>(repo: Repo<R>, guid: string, what: string): Promise<R> {
  const r = await repo.get(guid);
  if (!r) throw errors.notFound(what);
  return r;
}

/** Parses a list's query, pages through `repo`, and renders `{pagination, resources}`. */
export async function listOf<R extends { guid: string }, S extends z.ZodTypeAny>(
  ctx: RequestContext,
  repo: Repo<R>,
  schema: S,
  where: (q: z.output<S>) => Where<R> | Promise<Where<R>>,
  present: (r: R) => unknown | Promise<unknown>,
): Promise<Reply> {
  const q = parseQuery(ctx.query, schema) as z.output<S> & { page: number; per_page: number; order_by?: string };
  const filter = await where(q);
  const page = { page: q.page, perPage: q.per_page };
  const total = await repo.count(filter);
  const order = orderBy(q.order_by) as ListOptions<R>['orderBy'];
  const rows = await repo.list(filter, { ...window(page), ...(order ? { orderBy: order } : {}) });
  const resources = await Promise.all(rows.map(present));
  return ok(paged(new URL(`${ctx.baseUrl}${ctx.url.pathname}${ctx.url.search}`), total, page, resources));
}

export const guidRef = z.object({ guid: z.string().min(1).max(255) }).strict();
export const toOne = z.object({ data: guidRef }).strict();

export const metadata = z
  .object({
    labels: z.record(z.string().max(63), z.string().max(63).nullable()).optional(),
    annotations: z.record(z.string().max(1000), z.string().max(5000).nullable()).optional(),
  })
  .strict();

export const lifecycle = z
  .object({
    type: z.literal('buildpack'),
    data: z
      .object({
        buildpacks: z.array(z.string().min(1).max(4096)).max(20).optional(),
        stack: z.string().min(1).max(255).optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

/** Merges CF metadata: a null value removes a key. */
export function mergeMetadata(current: Record<string, string>, patch: Record<string, string | null> | undefined): Record<string, string> {
  if (!patch) return current;
  const out = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

// /v3/processes: an app's web process — instances, memory, disk, command, health check —
// scaled with actions/scale (started apps start or stop their highest indices at once; new
// limits replace the instances), and its live per-instance stats from the DEAs.
import { z } from 'zod';
import { replies, subjects, type DeaFindDropletReply, type HealthmanagerStatusReply, type InstanceState } from '../../bus/mod.ts';
import type { ProcessRecord } from '../db/mod.ts';
import { errors } from '../errors.ts';
import { readJson } from '../http/body.ts';
import { csv, listQuery } from '../http/query.ts';
import type { ApiServer, RequestContext } from '../http/server.ts';
import { presentProcess } from '../presenters.ts';
import { instanceStats } from '../stats.ts';
import { within } from '../access.ts';
import { AUDIT, auditor } from '../audit.ts';
import { listOf, mustGet, ok } from './common.ts';
import type { Deps } from './deps.ts';
import { scope, type Mode } from './scope.ts';

const MAX_INSTANCES = 1000;
const HM_STATUS_TIMEOUT_MS = 300;

const scaleBody = z
  .object({
    instances: z.number().int().min(0).max(MAX_INSTANCES).optional(),
    memory_in_mb: z.number().int().min(1).max(65536).optional(),
    disk_in_mb: z.number().int().min(1).max(1048576).optional(),
  })
  .strict();

const updateBody = z
  .object({
    command: z.string().min(1).max(4096).nullable().optional(),
    health_check: z
      .object({
        type: z.enum(['port', 'http', 'process']),
        data: z
          .object({
            timeout: z.number().int().min(1).max(3600).nullable().optional(),
            invocation_timeout: z.number().int().min(1).nullable().optional(),
            endpoint: z.string().regex(/^\//, 'must begin with /').max(1024).nullable().optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
    metadata: z.unknown().optional(),
  })
  .strict();

export function registerProcesses(server: ApiServer, d: Deps): void {
  const present = (ctx: RequestContext) => (p: ProcessRecord) => presentProcess(p, ctx.baseUrl);
  const s = scope(d.store);

  server.route('GET', '/v3/processes', 'user', (ctx) =>
    listOf(ctx, d.store.processes, listQuery({ guids: csv.optional(), app_guids: csv.optional(), types: csv.optional() }), async (q) => ({ guid: q.guids, app_guid: within(q.app_guids, await s.appWhere(ctx)), type: q.types }), present(ctx)),
  );
  server.route('GET', '/v3/apps/:guid/processes', 'user', async (ctx) => {
    await s.app(ctx, ctx.params.guid!, 'read');
    return listOf(ctx, d.store.processes, listQuery({ types: csv.optional() }), (q) => ({ app_guid: ctx.params.guid!, type: q.types }), present(ctx));
  });

  const byGuid = async (ctx: RequestContext, mode: Mode) => s.ofApp(ctx, d.store.processes, ctx.params.guid!, 'Process', mode);
  const byType = async (ctx: RequestContext, mode: Mode) => {
    await s.app(ctx, ctx.params.guid!, mode);
    const p = await d.store.processes.find({ app_guid: ctx.params.guid!, type: ctx.params.type! });
    if (!p) throw errors.notFound('Process');
    return p;
  };

  for (const [prefix, load] of [
    ['/v3/processes/:guid', byGuid],
    ['/v3/apps/:guid/processes/:type', byType],
  ] as const) {
    server.route('GET', prefix, 'user', async (ctx) => ok(presentProcess(await load(ctx, 'read'), ctx.baseUrl)));

    server.route('PATCH', prefix, 'user', async (ctx) => {
      const body = await readJson(ctx.req, updateBody);
      const p = await load(ctx, 'write');
      const hc = body.health_check;
      const updated = await d.store.processes.update(p.guid, {
        ...(body.command !== undefined ? { command: body.command } : {}),
        ...(hc
          ? {
              health_check_type: hc.type,
              health_check_endpoint: hc.type === 'http' ? (hc.data?.endpoint ?? p.health_check_endpoint ?? '/') : null,
              health_check_timeout: hc.data?.timeout !== undefined ? hc.data.timeout : p.health_check_timeout,
            }
          : {}),
      });
      return ok(presentProcess(updated!, ctx.baseUrl));
    });

    server.route('POST', `${prefix}/actions/scale`, 'user', async (ctx) => {
      const body = await readJson(ctx.req, scaleBody);
      const p = await load(ctx, 'write');
      const updated = await d.runner.scale(p.app_guid, body);
      const app = await mustGet(d.store.apps, p.app_guid, 'App');
      await auditor(d.store).onApp(ctx, AUDIT.appScale, app, { process_guid: p.guid, process_type: p.type, request: body });
      return ok(presentProcess(updated, ctx.baseUrl), 202);
    });

    server.route('GET', `${prefix}/stats`, 'user', async (ctx) => {
      const p = await load(ctx, 'read');
      const app = await mustGet(d.store.apps, p.app_guid, 'App');
      const running = app.state === 'STARTED' && p.instances > 0;
      const [replies, hm] = running ? await Promise.all([findInstances(d, app.guid, app.version, p.instances), healthOf(d, app.guid, app.version)]) : [[], undefined];
      const flapping = hm?.flapping.filter((f) => f.version === app.version) ?? [];
      return ok({ resources: instanceStats(p.type, p.instances, replies, p, new Date(), flapping) });
    });
  }
}

const LIVE: InstanceState[] = ['STARTING', 'RUNNING', 'EVACUATING', 'STOPPING'];

/**
 * The instances of each index: the live ones first, done as soon as as many have answered as
 * there are indices (the common case: no waiting out the window); then, only for indices still
 * without one, every instance within the window, crashed ones included. Asking for all at
 * once would let the crashed instances DEAs keep for a while fill the count.
 */
async function findInstances(d: Deps, appGuid: string, version: string, instances: number): Promise<DeaFindDropletReply[]> {
  const live = await d.runner.find(appGuid, { version, states: LIVE, include_stats: true }, { max: instances });
  const covered = new Set(live.map((r) => r.index));
  const missing = Array.from({ length: instances }, (_, i) => i).filter((i) => !covered.has(i));
  if (missing.length === 0) return live;
  // The whole window for those: a duplicate of another index may have taken a place of `max`.
  return [...live, ...(await d.runner.find(appGuid, { version, indices: missing, states: [...LIVE, 'CRASHED'], include_stats: true }))];
}

/** What a health manager knows of the app's crashes; nothing when none answers in time (the
 *  stats must not wait on a health manager that is down). */
async function healthOf(d: Deps, appGuid: string, version: string): Promise<HealthmanagerStatusReply | undefined> {
  try {
    return await d.bus.request(subjects.healthmanagerStatus, { app_id: appGuid, version }, replies.healthmanagerStatus, { timeoutMs: HM_STATUS_TIMEOUT_MS });
  } catch {
    return undefined;
  }
}

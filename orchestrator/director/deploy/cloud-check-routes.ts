// The API of cloud-check and recreate (BOSH's shapes): POST /deployments/:name/scans queues a
// `cck_scan` task; GET /deployments/:name/problems lists the open problems with the
// resolutions each offers; PUT /deployments/:name/problems {resolutions: {id: resolution}}
// queues `cck_apply`; POST /deployments/:name/recreate/:group[/:index] queues `recreate`. Each
// task takes the deployment's lock; a choice that does not fit is refused here, before any task.
import { z } from 'zod';
import { readJson } from '../../../kernel/cloud-controller/http/body.ts';
import { parseQuery } from '../../../kernel/cloud-controller/http/query.ts';
import type { ApiServer, RequestContext } from '../../../kernel/cloud-controller/http/server.ts';
import { RESOLUTION_PLANS, RESOLUTIONS, type ProblemType } from '../../health-monitor/analysis.ts';
import { deploymentLock, enqueueOrConflict, presentTask } from '../api.ts';
import { apiErrors } from '../errors.ts';
import type { DirectorStore } from '../store.ts';
import type { TaskRunner } from '../task-runner.ts';
import type { ProblemRecord } from '../types.ts';
import { offers } from './cloud-check.ts';
import { instanceLabel } from './instance-ops.ts';
import { targetOf } from './instance-ops-routes.ts';

export interface CloudCheckRouteDeps {
  store: DirectorStore;
  tasks: TaskRunner;
}

export function presentProblem(p: ProblemRecord): Record<string, unknown> {
  const data = p.data as { description?: string; instance?: string };
  return {
    id: p.id,
    type: p.type,
    description: data.description ?? p.type,
    instance: data.instance ?? null,
    resource_id: p.resource_id,
    data: p.data,
    resolutions: (RESOLUTIONS[p.type as ProblemType] ?? []).map((name) => ({ name, plan: RESOLUTION_PLANS[name] })),
    created_at: p.created_at,
  };
}

const ResolutionsBody = z.object({ resolutions: z.record(z.string().regex(/^\d+$/, 'a problem id is a number'), z.string().min(1)) }).strict();

function userOf(ctx: RequestContext): string {
  return ctx.principal.kind === 'user' ? ctx.principal.username : 'anonymous';
}

async function deploymentNamed(store: DirectorStore, ctx: RequestContext): Promise<string> {
  const name = ctx.params.name!;
  if (!(await store.deployment(name))) throw apiErrors.notFound(`Deployment ${name}`);
  return name;
}

export function registerCloudCheckRoutes(api: ApiServer, d: CloudCheckRouteDeps): void {
  api.route('POST', '/deployments/:name/scans', 'user', async (ctx) => {
    const name = await deploymentNamed(d.store, ctx);
    const task = await enqueueOrConflict(d.tasks, { type: 'cck_scan', description: `scan cloud of ${name}`, deployment: name, username: userOf(ctx), locks: [deploymentLock(name)] });
    return { status: 202, body: presentTask(task), headers: { Location: `/tasks/${task.id}` } };
  });

  api.route('GET', '/deployments/:name/problems', 'user', async (ctx) => {
    parseQuery(ctx.query, z.object({}).strict());
    const name = await deploymentNamed(d.store, ctx);
    return { status: 200, body: (await d.store.problems(name)).map(presentProblem) };
  });

  api.route('PUT', '/deployments/:name/problems', 'user', async (ctx) => {
    const name = await deploymentNamed(d.store, ctx);
    const body = await readJson(ctx.req, ResolutionsBody);
    const open = new Map((await d.store.problems(name)).map((p) => [String(p.id), p]));
    const wrong: string[] = [];
    for (const [id, resolution] of Object.entries(body.resolutions)) {
      const p = open.get(id);
      if (!p) wrong.push(`resolutions.${id}: problem ${id} is not an open problem of ${name} (scan again with cloud-check)`);
      else if (!offers(p, resolution)) wrong.push(`resolutions.${id}: ${resolution} is not a resolution of ${p.type} (it offers ${RESOLUTIONS[p.type as ProblemType]?.join(', ') ?? 'none'})`);
    }
    if (wrong.length) throw apiErrors.invalid(wrong.join('; '));
    if (Object.keys(body.resolutions).length === 0) throw apiErrors.invalid('resolutions: name at least one problem and its resolution');
    const task = await enqueueOrConflict(d.tasks, {
      type: 'cck_apply',
      description: `apply resolutions to problems of ${name}`,
      deployment: name,
      username: userOf(ctx),
      locks: [deploymentLock(name)],
      params: { resolutions: body.resolutions },
    });
    return { status: 202, body: presentTask(task), headers: { Location: `/tasks/${task.id}` } };
  });

  const recreate = async (ctx: RequestContext) => {
    const q = parseQuery(ctx.query, z.object({ skip_drain: z.enum(['true', 'false', '1', '0']).optional() }).strict());
    const { name, instances } = await targetOf(d.store, ctx);
    const { group, index } = ctx.params as { group: string; index?: string };
    const what = group === '*' ? 'all instances' : index === undefined ? group : instanceLabel(instances[0]!);
    const task = await enqueueOrConflict(d.tasks, {
      type: 'recreate',
      description: `recreate ${name} ${what}`,
      deployment: name,
      username: userOf(ctx),
      locks: [deploymentLock(name)],
      params: { instances: instances.map((i) => i.uuid), drain: !(q.skip_drain === 'true' || q.skip_drain === '1') },
    });
    return { status: 202, body: presentTask(task), headers: { Location: `/tasks/${task.id}` } };
  };
  api.route('POST', '/deployments/:name/recreate/:group', 'user', recreate);
  api.route('POST', '/deployments/:name/recreate/:group/:index', 'user', recreate);
}

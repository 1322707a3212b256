// The deploy API: POST /deployments queues a `deploy` task (202; 409 naming the lock holder);
// POST /deployments/:name/diff answers what that deploy would change, computed by the same
// plan, changing nothing. Bodies are the manifest YAML (ops files and -v applied by the client).
import { z } from 'zod';
import { readText } from '../../../kernel/cloud-controller/http/body.ts';
import { csv, parseQuery } from '../../../kernel/cloud-controller/http/query.ts';
import { parseMaxInFlight } from '../../manifest/mod.ts';
import type { ApiServer, RequestContext } from '../../../kernel/cloud-controller/http/server.ts';
import { deploymentLock, enqueueOrConflict, presentTask } from '../api.ts';
import { apiErrors } from '../errors.ts';
import type { TaskRunner } from '../task-runner.ts';
import type { AgentClient } from './agent-client.ts';
import { renderPlanDiff } from './diff.ts';
import { instanceRows } from './instances.ts';
import { planChanges } from './plan.ts';
import { DeployInvalidError, manifestName, prepareDeploy, type PrepareDeps } from './preparation.ts';

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** The per-deploy overrides (`ingot deploy --canaries N --max-in-flight N|N% --skip-drain[=g1,g2]`), BOSH's query names. */
const rollQuery = {
  canaries: z.string().regex(/^\d+$/, 'canaries must be a number of instances (0 or more)').transform(Number).optional(),
  max_in_flight: z.string().refine((v) => parseMaxInFlight(v) !== undefined, 'max_in_flight must be a number of instances (2) or a percentage ("25%")').optional(),
  /** `*` for every group, else a comma-separated list of group names. */
  skip_drain: csv.refine((l) => l.length > 0, 'skip_drain must be * or instance group names separated by commas').optional(),
};

async function manifestBody(ctx: RequestContext): Promise<{ text: string; name: string }> {
  const text = await readText(ctx.req, MAX_MANIFEST_BYTES);
  if (text.trim() === '') throw apiErrors.badRequest('body: send the deployment manifest (YAML) as the request body');
  try {
    return { text, name: manifestName(text) };
  } catch (err) {
    if (err instanceof DeployInvalidError) throw apiErrors.invalid(`The manifest is invalid: ${err.problems.join('; ')}`);
    throw err;
  }
}

/** How long an agent may take to say its state before it shows as unresponsive. */
export const STATE_TIMEOUT_MS = 3000;

export function registerDeployRoutes(api: ApiServer, d: PrepareDeps & { tasks: TaskRunner; agents: () => Promise<AgentClient> }): void {
  api.route('GET', '/deployments/:name/instances', 'user', async (ctx) => {
    const q = parseQuery(ctx.query, z.object({ state: flag.optional() }).strict());
    const name = ctx.params.name!;
    if (!(await d.store.deployment(name))) throw apiErrors.notFound(`Deployment ${name}`);
    const [instances, vms] = await Promise.all([d.store.instances(name), d.store.vms(name)]);
    if (!q.state) return { status: 200, body: instanceRows(instances, vms) };
    const states = await (await d.agents()).states(vms.map((vm) => vm.agent_id), STATE_TIMEOUT_MS);
    return { status: 200, body: instanceRows(instances, vms, states) };
  });

  api.route('POST', '/deployments', 'user', async (ctx) => {
    const q = parseQuery(ctx.query, z.object({ recreate: flag.optional(), dry_run: flag.optional(), ...rollQuery }).strict());
    const { text, name } = await manifestBody(ctx);
    const existing = await d.store.deployment(name);
    const task = await enqueueOrConflict(d.tasks, {
      type: 'deploy',
      description: `${q.dry_run ? 'dry run of ' : ''}${existing ? 'deploy' : 'create deployment'} ${name}`,
      deployment: name,
      username: ctx.principal.kind === 'user' ? ctx.principal.username : 'anonymous',
      locks: [deploymentLock(name)],
      params: {
        manifest: text,
        recreate: q.recreate ?? false,
        dry_run: q.dry_run ?? false,
        ...(q.canaries !== undefined ? { canaries: q.canaries } : {}),
        ...(q.max_in_flight !== undefined ? { max_in_flight: q.max_in_flight } : {}),
        skip_drain: q.skip_drain ?? [],
      },
    });
    return { status: 202, body: presentTask(task), headers: { Location: `/tasks/${task.id}` } };
  });

  api.route('POST', '/deployments/:name/diff', 'user', async (ctx) => {
    const { text, name } = await manifestBody(ctx);
    if (name !== ctx.params.name) throw apiErrors.badRequest(`name: the manifest deploys ${name}, not ${ctx.params.name}`);
    try {
      const prepared = await prepareDeploy(d, text, { persistVariables: false });
      return { status: 200, body: { diff: renderPlanDiff(prepared.plan), changed: planChanges(prepared.plan) } };
    } catch (err) {
      if (err instanceof DeployInvalidError) throw apiErrors.invalid(err.message);
      throw err;
    }
  });
}

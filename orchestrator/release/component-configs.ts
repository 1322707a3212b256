// Checks a rendered kernel job's config with the component's own schema, so a property that
// would make a component refuse its config is reported when the deploy is rendered, before
// any VM is touched, not by a process crashing on a canary. Which file is which component's
// config is read from the job's processes: `ingot component <name> --config <job dir>/<file>`.
import { ConfigError, parseConfig } from '../../kernel/component/mod.ts';
import { ccConfig } from '../../kernel/cloud-controller/config.ts';
import { deaConfig } from '../../kernel/dea/config.ts';
import { hmConfig } from '../../kernel/health-manager/config.ts';
import { routerConfig } from '../../kernel/router/config.ts';
import type { RenderedJob } from './renderer.ts';

const schemas = {
  router: routerConfig,
  'cloud-controller': ccConfig,
  dea: deaConfig,
  'health-manager': hmConfig,
} as const;

/** Every problem of every component config the job's processes start with; [] when all parse. */
export function checkComponentConfigs(job: RenderedJob, jobDir: string): string[] {
  let spec: { processes?: Array<{ args?: string[] }> };
  try {
    spec = JSON.parse(job.files['spec.json'] ?? '{}') as typeof spec;
  } catch {
    return [`job ${job.name}: spec.json is not JSON`];
  }
  const problems: string[] = [];
  for (const proc of spec.processes ?? []) {
    const args = proc.args ?? [];
    const at = args.indexOf('component');
    const name = at >= 0 ? args[at + 1] : undefined;
    const configAt = args.indexOf('--config');
    const file = configAt >= 0 ? args[configAt + 1] : undefined;
    if (name === undefined || file === undefined || !Object.hasOwn(schemas, name)) continue;
    const rel = file.startsWith(`${jobDir}/`) ? file.slice(jobDir.length + 1) : undefined;
    const text = rel === undefined ? undefined : job.files[rel];
    if (text === undefined) {
      problems.push(`job ${job.name}: process starts component ${name} with ${file}, which the job does not render`);
      continue;
    }
    try {
      parseConfig(text, rel!, schemas[name as keyof typeof schemas]);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems.map((p) => `job ${job.name}: ${p}`));
    }
  }
  return problems;
}

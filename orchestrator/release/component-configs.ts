// Checks a rendered kernel job's config with the component's own schema, so a property that
// would make a component refuse its config is reported when the deploy is rendered, before
// any VM is touched, not by a process crashing on a canary. Which file is which component's
// config is read from the job's processes (`ingot component <name> --config <job dir>/<file>`,
// the service nodes and gateways among them) and its errand (`ingot smoke-test --config …`).
import { blobstoreConfig } from '../../kernel/blobstore/config.ts';
import { ccdbConfig } from '../../kernel/ccdb/config.ts';
import { ConfigError, parseConfig } from '../../kernel/component/mod.ts';
import { ccConfig } from '../../kernel/cloud-controller/config.ts';
import { deaConfig } from '../../kernel/dea/config.ts';
import { hmConfig } from '../../kernel/health-manager/config.ts';
import { routerConfig } from '../../kernel/router/config.ts';
import { gatewayConfig } from '../../kernel/services/gateway/config.ts';
import { nodeConfig } from '../../kernel/services/node/config.ts';
import { smokeTestConfig } from '../../kernel/smoke-tests/config.ts';
import type { RenderedJob } from './renderer.ts';

const schemas = {
  router: routerConfig,
  'cloud-controller': ccConfig,
  ccdb: ccdbConfig,
  blobstore: blobstoreConfig,
  dea: deaConfig,
  'health-manager': hmConfig,
  // One schema for every service's node job (redis-node, postgresql-node, …): the label and
  // its backend's keys are checked by the schema itself.
  'service-node': nodeConfig,
  'service-gateway': gatewayConfig,
} as const;

/** The errands whose config is checked the same way, by the command they run. */
const errandSchemas = { 'smoke-test': smokeTestConfig } as const;

/** Every problem of every component config the job's processes start with; [] when all parse. */
export function checkComponentConfigs(job: RenderedJob, jobDir: string): string[] {
  let spec: { processes?: Array<{ args?: string[] }>; errand?: { args?: string[] } };
  try {
    spec = JSON.parse(job.files['spec.json'] ?? '{}') as typeof spec;
  } catch {
    return [`job ${job.name}: spec.json is not JSON`];
  }
  const problems: string[] = [];
  const check = (what: string, file: string | undefined, schema: (typeof schemas)[keyof typeof schemas] | (typeof errandSchemas)[keyof typeof errandSchemas]): void => {
    if (file === undefined) return;
    const rel = file.startsWith(`${jobDir}/`) ? file.slice(jobDir.length + 1) : undefined;
    const text = rel === undefined ? undefined : job.files[rel];
    if (text === undefined) {
      problems.push(`job ${job.name}: ${what} with ${file}, which the job does not render`);
      return;
    }
    try {
      parseConfig(text, rel!, schema);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems.map((p) => `job ${job.name}: ${p}`));
    }
  };
  for (const proc of spec.processes ?? []) {
    const args = proc.args ?? [];
    const at = args.indexOf('component');
    const name = at >= 0 ? args[at + 1] : undefined;
    if (name !== undefined && Object.hasOwn(schemas, name)) check(`process starts component ${name}`, configArg(args), schemas[name as keyof typeof schemas]);
  }
  const errandArgs = spec.errand?.args ?? [];
  const errand = errandArgs.find((a) => Object.hasOwn(errandSchemas, a));
  if (errand !== undefined) check(`errand runs ${errand}`, configArg(errandArgs), errandSchemas[errand as keyof typeof errandSchemas]);
  return problems;
}

/** The value of `--config` in a command line. */
function configArg(args: string[]): string | undefined {
  const at = args.indexOf('--config');
  return at >= 0 ? args[at + 1] : undefined;
}

// The one `ingot` CLI: app commands (kernel/client), platform commands (orchestrator/client)
// and the two that every process shares: `version` and `component`.
import yargs, { type Argv } from 'yargs';
import { ComponentError, ConfigError, runComponentProcess } from '../kernel/component/mod.ts';
import { INGOT_VERSION } from '../kernel/component/version.ts';
import { kernelComponents, type ComponentLoader } from '../kernel/components.ts';
import { registerAppCommands } from '../kernel/client/mod.ts';
import { smokeTestCommand } from '../kernel/smoke-tests/command.ts';
import { agentCommand } from '../orchestrator/agent/command.ts';
import { balancerCommand } from '../orchestrator/client/balancer-command.ts';
import { cpiCommand } from '../orchestrator/client/cpi-command.ts';
import { registerDeployCommands } from '../orchestrator/client/deploy-command.ts';
import { registerDirectorCommands } from '../orchestrator/client/director-commands.ts';
import { registerCatalogCommands } from '../orchestrator/client/catalog-commands.ts';
import { registerInstancesCommands } from '../orchestrator/client/instances-command.ts';
import { registerDeploymentVerbCommands, registerVmsCommand } from '../orchestrator/client/instance-ops-commands.ts';
import { directorServerCommand } from '../orchestrator/client/director-server-command.ts';
import { registerReleaseCommands } from '../orchestrator/client/release-commands.ts';
import { registerSshCommand } from '../orchestrator/client/ssh-command.ts';
import { registerErrandCommand } from '../orchestrator/client/errand-command.ts';
import { registerCloudCheckCommands, registerDeploymentEventsCommand } from '../orchestrator/client/cloud-check-command.ts';
import { UsageError } from './errors.ts';
import { deploymentVerb } from './verbs.ts';


export function buildCli(argv: string[], components: Record<string, ComponentLoader> = kernelComponents): Argv {
  const cli = yargs(argv)
    .scriptName('ingot')
    .usage('$0 <command> [options]')
    .command(
      'version',
      'Print the version of Ingot',
      (y) => y.option('json', { type: 'boolean', describe: 'Print JSON', default: false }),
      (args) => {
        const info = { version: INGOT_VERSION, node: process.version };
        console.log(args.json ? JSON.stringify(info) : `ingot ${info.version} (node ${info.node})`);
      },
    )
    .command(
      'component <name>',
      'Run a kernel component (how every kernel process starts)',
      (y) =>
        y
          .positional('name', { type: 'string', demandOption: true, describe: `One of: ${Object.keys(components).join(', ') || '(none)'}` })
          .option('config', { type: 'string', demandOption: true, describe: 'The component config file (YAML)' }),
      async (args) => {
        const load = components[args.name];
        if (!load) {
          throw new UsageError(`unknown component "${args.name}"; known: ${Object.keys(components).join(', ') || '(none)'}`);
        }
        await runComponentProcess(await load(), args.config);
      },
    )
    .command(cpiCommand)
    .command(agentCommand)
    .command(directorServerCommand)
    .command(balancerCommand)
    .command(smokeTestCommand);
  // `-d` with a verb both halves define picks the deployment's meaning (DESIGN.md §2).
  const apps = deploymentVerb(argv) === undefined ? registerAppCommands(cli) : registerDeploymentEventsCommand(registerDeploymentVerbCommands(cli));
  return [registerReleaseCommands, registerDirectorCommands, registerCatalogCommands, registerDeployCommands, registerInstancesCommands, registerVmsCommand, registerSshCommand, registerErrandCommand, registerCloudCheckCommands]
    .reduce((y, add) => add(y), apps)
    .demandCommand(1, 'name a command; see ingot --help')
    .strict()
    .help()
    .alias('help', 'h')
    .version(false)
    .wrap(Math.min(100, process.stdout.columns || 100))
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    });
}

/** Errors a user can act on print as one line; anything else is a bug and keeps its stack. */
export function describeFailure(err: unknown): { line: string; bug: boolean } {
  if (err instanceof UsageError || err instanceof ConfigError || err instanceof ComponentError) {
    return { line: err.message, bug: false };
  }
  if (err instanceof Error && (err as { code?: unknown }).code !== undefined) return { line: err.message, bug: false };
  return { line: err instanceof Error ? (err.stack ?? err.message) : String(err), bug: true };
}

export async function main(argv: string[], components?: Record<string, ComponentLoader>): Promise<void> {
  try {
    await buildCli(argv, components).parseAsync();
  } catch (err) {
    const { line } = describeFailure(err);
    process.stderr.write(`ingot: ${line}\n`);
    process.exit(1);
  }
}

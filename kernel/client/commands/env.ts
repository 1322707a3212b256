// `ingot env`, `set-env` and `unset-env`: an app's environment. Changes take effect at the
// next start, restart or restage, as in Cloud Foundry.
import type { Argv } from 'yargs';
import { ClientUsageError, step } from '../errors.ts';
import { findApp, openSpaceSession } from '../session.ts';
import { jsonOption, print, printJson } from './common.ts';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function checkEnvName(name: string): void {
  if (!ENV_NAME.test(name)) throw new ClientUsageError(`${name}: an environment variable name is letters, digits and _, not starting with a digit`);
  if (name.startsWith('VCAP_') || name === 'PORT') throw new ClientUsageError(`${name} is set by the platform`);
}

export function envCommands(y: Argv): Argv {
  return y
    .command(
      'env <name>',
      "Show an app's environment: the platform's variables and yours",
      (a) => a.positional('name', { type: 'string', demandOption: true }).option('json', jsonOption),
      async (args) => {
        const s = await openSpaceSession();
        const app = await findApp(s, args.name);
        const env = await s.client.env(app.guid);
        if (args.json) return printJson(env);
        const block = (o: Record<string, unknown> | undefined): string[] => Object.entries(o ?? {}).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v, null, 2)}`);
        const user = Object.entries(env.environment_variables).sort(([a], [b]) => a.localeCompare(b));
        print([
          'System-Provided:',
          ...block(env.system_env_json),
          ...block(env.application_env_json),
          '',
          'User-Provided:',
          ...(user.length ? user.map(([k, v]) => `${k}: ${v}`) : ['(none)']),
          '',
          'Running Environment Variable Groups:',
          ...(block(env.running_env_json).length ? block(env.running_env_json) : ['(none)']),
          '',
          'Staging Environment Variable Groups:',
          ...(block(env.staging_env_json).length ? block(env.staging_env_json) : ['(none)']),
        ]);
      },
    )
    .command(
      'set-env <name> <key> <value>',
      "Set an environment variable of an app (takes effect at the next restart)",
      (a) => a.positional('name', { type: 'string', demandOption: true }).positional('key', { type: 'string', demandOption: true }).positional('value', { type: 'string', demandOption: true }),
      async (args) => {
        checkEnvName(args.key);
        const s = await openSpaceSession();
        const app = await findApp(s, args.name);
        await step(`Setting ${args.key} of ${app.name}`, () => s.client.patchEnv(app.guid, { [args.key]: String(args.value) }));
        print([`Set ${args.key} of app ${app.name}.`, `TIP: use ingot restart ${app.name} (or restage) for the change to take effect.`]);
      },
    )
    .command(
      'unset-env <name> <key>',
      'Remove an environment variable of an app (takes effect at the next restart)',
      (a) => a.positional('name', { type: 'string', demandOption: true }).positional('key', { type: 'string', demandOption: true }),
      async (args) => {
        const s = await openSpaceSession();
        const app = await findApp(s, args.name);
        const env = await s.client.env(app.guid);
        if (!(args.key in env.environment_variables)) return print(`${args.key} was not set on app ${app.name}.`);
        await step(`Removing ${args.key} of ${app.name}`, () => s.client.patchEnv(app.guid, { [args.key]: null }));
        print([`Removed ${args.key} of app ${app.name}.`, `TIP: use ingot restart ${app.name} (or restage) for the change to take effect.`]);
      },
    );
}

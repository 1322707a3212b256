// `ingot deploy MANIFEST [-o OPS]… [-v k=v]… [-n] [--dry-run] [--recreate]`: BOSH's deploy.
// The manifest is prepared here (ops files, -v: deploy-manifest.ts), the director says what
// would change (shown before anything changes, secrets redacted), the user is asked (not with
// -n), then the deploy task is followed live to its end, one line per step.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { jsonOption, print } from '../../kernel/client/commands/common.ts';
import { ClientError, step } from '../../kernel/client/errors.ts';
import { parseVarFlags } from '../manifest/mod.ts';
import { confirm, followAndReport } from './director-commands.ts';
import { openDirector } from './director-session.ts';
import { prepareManifest } from './deploy-manifest.ts';

export function registerDeployCommands(y: Argv): Argv {
  return y.command(
    'deploy <manifest>',
    'Deploy a manifest: shows what changes, asks, then follows the deploy task',
    (a) =>
      a
        .positional('manifest', { type: 'string', demandOption: true, describe: 'The deployment manifest (YAML)' })
        .option('o', { alias: 'ops-file', type: 'string', array: true, default: [], describe: 'An ops file applied to the manifest (repeatable)' })
        .option('v', { alias: 'var', type: 'string', array: true, default: [], describe: 'A variable, name=value (repeatable)' })
        .option('n', { alias: 'non-interactive', type: 'boolean', default: false, describe: 'Do not ask before changing' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'Render and check everything, change nothing' })
        .option('recreate', { type: 'boolean', default: false, describe: 'Recreate every VM, changed or not' })
        .option('json', jsonOption),
    async (args) => {
      const manifest = { text: await readText(args.manifest), file: args.manifest };
      const ops = await Promise.all(args.o.map(async (file) => ({ text: await readText(file), file })));
      const prepared = prepareManifest(manifest, ops, parseVarFlags(args.v));
      const { client } = await openDirector();
      const diff = await step(`Comparing ${prepared.name} with what is deployed`, () => client.diff(prepared.name, prepared.yaml));
      if (!args.json) print(diff.changed ? ['', ...diff.diff, ''] : `Deployment ${prepared.name}: no changes.`);
      if (diff.changed && !args['dry-run']) await confirm(`Deploy ${prepared.name}?`, args.n);
      const task = await step(`Deploying ${prepared.name}`, () => client.deploy(prepared.yaml, { recreate: args.recreate, dryRun: args['dry-run'] }));
      if (args.json) return followAndReport(client, task.id, 'json');
      await followAndReport(client, task.id, 'log');
    },
  );
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(resolve(file), 'utf8');
  } catch (err) {
    throw new ClientError('bad_path', `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}


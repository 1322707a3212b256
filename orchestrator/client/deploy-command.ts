// `ingot deploy MANIFEST [-o OPS]… [-v k=v]… [-n] [--dry-run] [--recreate] [--canaries N]
// [--max-in-flight N|N%] [--skip-drain[=GROUP,…]]`: BOSH's deploy. The manifest is prepared here
// (ops files, -v: deploy-manifest.ts), the director says what would change (shown before
// anything changes, secrets redacted), the user is asked (not with -n), then the deploy task is
// followed live to its end, one line per step.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { jsonOption, print } from '../../kernel/client/commands/common.ts';
import { ClientError, ClientUsageError, step } from '../../kernel/client/errors.ts';
import { parseMaxInFlight, parseVarFlags } from '../manifest/mod.ts';
import { confirm, followAndReport } from './director-commands.ts';
import { openDirector } from './director-session.ts';
import { prepareManifest } from './deploy-manifest.ts';

export function registerDeployCommands(y: Argv): Argv {
  return y.command(
    // [manifest]: a bare `--skip-drain` before it takes it as its value (yargs has no optional
    // values); parseRollFlags gives it back, as BOSH attaches a value only with `=`.
    'deploy [manifest]',
    'Deploy a manifest: shows what changes, asks, then follows the deploy task',
    (a) =>
      a
        .positional('manifest', { type: 'string', describe: 'The deployment manifest (YAML)' })
        .option('o', { alias: 'ops-file', type: 'string', array: true, default: [], describe: 'An ops file applied to the manifest (repeatable)' })
        .option('v', { alias: 'var', type: 'string', array: true, default: [], describe: 'A variable, name=value (repeatable)' })
        .option('n', { alias: 'non-interactive', type: 'boolean', default: false, describe: 'Do not ask before changing' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'Render and check everything, change nothing' })
        .option('recreate', { type: 'boolean', default: false, describe: 'Recreate every VM, changed or not' })
        .option('canaries', { type: 'string', describe: "Canaries of every instance group for this deploy (overrides the manifest's update block)" })
        .option('max-in-flight', { type: 'string', describe: 'Instances updated at once in every group for this deploy: N or N% (overrides the manifest)' })
        .option('skip-drain', { type: 'string', describe: 'Stop instances without running their drain scripts: every group, or --skip-drain=GROUP,GROUP' })
        .option('json', jsonOption),
    async (args) => {
      let skipDrain: unknown = args['skip-drain'];
      let file = args.manifest;
      if (file === undefined && typeof skipDrain === 'string' && skipDrain !== '') [file, skipDrain] = [skipDrain, ''];
      if (file === undefined) throw new ClientUsageError('name the manifest: ingot deploy MANIFEST');
      const roll = parseRollFlags({ canaries: args.canaries, maxInFlight: args['max-in-flight'], skipDrain });
      const manifest = { text: await readText(file), file };
      const ops = await Promise.all(args.o.map(async (file) => ({ text: await readText(file), file })));
      const prepared = prepareManifest(manifest, ops, parseVarFlags(args.v));
      const { client } = await openDirector();
      const diff = await step(`Comparing ${prepared.name} with what is deployed`, () => client.diff(prepared.name, prepared.yaml));
      if (!args.json) print(diff.changed ? ['', ...diff.diff, ''] : `Deployment ${prepared.name}: no changes.`);
      if (diff.changed && !args['dry-run']) await confirm(`Deploy ${prepared.name}?`, args.n);
      const task = await step(`Deploying ${prepared.name}`, () => client.deploy(prepared.yaml, { recreate: args.recreate, dryRun: args['dry-run'], ...roll }));
      if (args.json) return followAndReport(client, task.id, 'json');
      await followAndReport(client, task.id, 'log');
    },
  );
}

/**
 * The rolling flags, checked before anything is sent. yargs gives a bare `--skip-drain` as ''
 * (every group: BOSH's `*`); a flag given twice arrives as an array and is refused.
 */
export function parseRollFlags(f: { canaries?: unknown; maxInFlight?: unknown; skipDrain?: unknown }): { canaries?: number; maxInFlight?: string; skipDrain?: string[] } {
  const out: { canaries?: number; maxInFlight?: string; skipDrain?: string[] } = {};
  const once = (name: string, v: unknown): string | undefined => {
    if (Array.isArray(v)) throw new ClientUsageError(`--${name} is given ${v.length} times: give it once`);
    return v === undefined ? undefined : String(v);
  };
  const canaries = once('canaries', f.canaries);
  if (canaries !== undefined) {
    if (!/^\d+$/.test(canaries.trim())) throw new ClientUsageError(`--canaries ${JSON.stringify(canaries)}: expected a number of instances (0 or more)`);
    out.canaries = Number(canaries);
  }
  const mif = once('max-in-flight', f.maxInFlight);
  if (mif !== undefined) {
    const parsed = parseMaxInFlight(mif);
    if (!parsed || ('percent' in parsed && (parsed.percent <= 0 || parsed.percent > 100))) throw new ClientUsageError(`--max-in-flight ${JSON.stringify(mif)}: expected a number of instances (2) or a percentage from 1% to 100% ("25%")`);
    out.maxInFlight = mif.trim();
  }
  const skip = once('skip-drain', f.skipDrain);
  if (skip !== undefined) {
    const groups = skip.split(',').map((g) => g.trim());
    if (skip.trim() === '' || skip.trim() === '*') out.skipDrain = ['*'];
    else if (groups.some((g) => !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(g))) throw new ClientUsageError(`--skip-drain=${skip}: expected instance group names separated by commas (or a bare --skip-drain for every group)`);
    else out.skipDrain = groups;
  }
  return out;
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(resolve(file), 'utf8');
  } catch (err) {
    throw new ClientError('bad_path', `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}


// The director commands that remove what was uploaded: `delete-release NAME[/VERSION]`,
// `delete-stemcell NAME/VERSION` and `clean-up [--all]` (BOSH's). Each asks first (`-n` goes
// ahead), as delete-deployment does; clean-up follows its task. Wired in cli/main.ts with
// `registerCatalogCommands(cli)`.
import type { Argv } from 'yargs';
import { jsonOption, print, printJson } from '../../kernel/client/commands/common.ts';
import { step } from '../../kernel/client/errors.ts';
import { releaseArg, stemcellArg } from './director-args.ts';
import { confirm, followAndReport } from './director-commands.ts';
import { openDirector } from './director-session.ts';
import type { Removed } from './director-types.ts';

const nonInteractive = { alias: 'non-interactive', type: 'boolean', default: false, describe: 'Do not ask before deleting' } as const;

function removedLine(kind: string, r: Removed): string {
  const blobs = `${r.blobs.length} ${r.blobs.length === 1 ? 'blob' : 'blobs'} no longer referenced`;
  return `Deleted ${kind}${r.deleted.length === 1 ? '' : 's'} ${r.deleted.join(', ')} and ${blobs} (task ${r.task_id}).`;
}

export function registerCatalogCommands(y: Argv): Argv {
  return y
    .command(
      'delete-release <release>',
      'Delete a release version (NAME/VERSION) or every version of one (NAME); refused while a deployment uses it',
      (a) =>
        a
          .positional('release', { type: 'string', demandOption: true, describe: 'NAME or NAME/VERSION' })
          .option('n', nonInteractive)
          .option('json', jsonOption),
      async (args) => {
        const r = releaseArg(args.release);
        const what = r.version === undefined ? `every version of release ${r.name}` : `release ${r.name}/${r.version}`;
        const { client } = await openDirector();
        await confirm(`Delete ${what}?`, args.n);
        const removed = await step(`Deleting ${what}`, () => client.deleteRelease(r.name, r.version));
        if (args.json) return printJson(removed);
        print(removedLine('release', removed));
      },
    )
    .command(
      'delete-stemcell <stemcell>',
      "Delete a stemcell (NAME/VERSION), the CPI's copy too; refused while a deployment uses it",
      (a) =>
        a
          .positional('stemcell', { type: 'string', demandOption: true, describe: 'NAME/VERSION' })
          .option('n', nonInteractive)
          .option('json', jsonOption),
      async (args) => {
        const s = stemcellArg(args.stemcell);
        const { client } = await openDirector();
        await confirm(`Delete stemcell ${s.name}/${s.version}?`, args.n);
        const removed = await step(`Deleting stemcell ${s.name}/${s.version}`, () => client.deleteStemcell(s.name, s.version));
        if (args.json) return printJson(removed);
        print(removedLine('stemcell', removed));
      },
    )
    .command(
      'clean-up',
      'Delete the releases and stemcells no deployment uses, but the two newest of each name (--all: every unused one); follows the task',
      (a) =>
        a
          .option('all', { type: 'boolean', default: false, describe: 'Delete every unused release and stemcell, keeping none' })
          .option('n', nonInteractive)
          .option('json', jsonOption),
      async (args) => {
        const { client } = await openDirector();
        await confirm(args.all ? 'Delete every release and stemcell no deployment uses?' : 'Delete the releases and stemcells no deployment uses, but the two newest of each?', args.n);
        const task = await step('Cleaning up', () => client.cleanup(args.all));
        await followAndReport(client, task.id, args.json ? 'json' : 'log');
        if (args.json) return;
        const done = await step(`Reading task ${task.id}`, () => client.task(task.id));
        if (done.result) print(done.result);
      },
    );
}

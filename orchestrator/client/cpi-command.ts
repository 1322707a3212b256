// `ingot cpi <name> --config FILE`: BOSH's external-CPI door. Reads one request on stdin and
// writes the response on stdout; for the lead to register in cli/main.ts with `.command(cpiCommand)`.

import type { CommandModule } from 'yargs';
import { readAll, runExternalCpi } from '../cpi/external.ts';
import { cpiNames } from '../cpi/registry.ts';

interface CpiArgs {
  name: string;
  config: string;
}

export const cpiCommand: CommandModule<object, CpiArgs> = {
  command: 'cpi <name>',
  describe: 'Answer one BOSH external-CPI request (JSON on stdin, response on stdout)',
  builder: (y) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: `One of: ${cpiNames().join(', ')}` })
      .option('config', { type: 'string', demandOption: true, describe: 'The CPI config file (YAML or JSON)' }),
  handler: async (args) => {
    process.stdout.write(`${await runExternalCpi(args.name, args.config, await readAll(process.stdin))}\n`);
  },
};

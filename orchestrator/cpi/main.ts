// Entry for `node --import tsx orchestrator/cpi/main.ts <name> --config FILE`: the same door as
// `ingot cpi`, without the CLI around it (tests and the director spawn it).

import { readAll, runExternalCpi } from './external.ts';

async function main(argv: string[]): Promise<number> {
  const name = argv[0];
  const i = argv.indexOf('--config');
  const config = i >= 0 ? argv[i + 1] : undefined;
  if (!name || !config) {
    process.stderr.write('usage: cpi <name> --config FILE  (request JSON on stdin)\n');
    return 2;
  }
  process.stdout.write(`${await runExternalCpi(name, config, await readAll(process.stdin))}\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));

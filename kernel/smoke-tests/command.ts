// `ingot smoke-test --config FILE`: what the smoke-tests errand runs (`ingot -d ingot
// run-errand smoke-tests`). One line per check; exit status 1 when any failed.
import type { CommandModule } from 'yargs';
import { loadConfig } from '../component/config.ts';
import { runSmokeTests } from './checks.ts';
import { smokeTestConfig } from './config.ts';

export const smokeTestCommand: CommandModule<object, { config: string }> = {
  command: 'smoke-test',
  describe: "Check that the platform's parts answer (the smoke-tests errand)",
  builder: (y) => y.option('config', { type: 'string', demandOption: true, describe: 'The smoke-tests config (YAML)' }),
  handler: async (args) => {
    const config = await loadConfig(args.config, smokeTestConfig);
    const results = await runSmokeTests(config, (r) => console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.ok ? ` (${r.detail})` : `: ${r.detail}`}`));
    const passed = results.filter((r) => r.ok).length;
    console.log(`${passed} of ${results.length} checks passed`);
    if (passed < results.length) process.exitCode = 1;
  },
};

// `ingot director-server --config FILE`: runs a director (orchestrator/director) in this
// process until SIGTERM, with orchestrator/release's reader checking uploaded releases. With
// the local CPI, the director listens on the local IaaS's bridge (its gateway is what VMs
// reach), so the host network is made first.
import type { CommandModule } from 'yargs';
import { loadConfigFile } from '../cpi/external.ts';
import { compileConfig } from '../cpi/local/config.ts';
import { ensureHostNetwork } from '../cpi/local/host-network.ts';
import { loadDirectorConfig } from '../director/config.ts';
import { startDirector } from '../director/main.ts';
import type { ReleaseDescription } from '../director/types.ts';
import { readRelease } from '../release/mod.ts';

interface DirectorServerArgs {
  config: string;
}

/** What the director records of an uploaded release, from the release's own checked manifest. */
export async function describeRelease(tarball: Buffer): Promise<ReleaseDescription> {
  const { manifest } = await readRelease(tarball, 'the uploaded release');
  return { name: manifest.name, version: manifest.version, jobs: manifest.jobs, packages: manifest.packages };
}

export const directorServerCommand: CommandModule<object, DirectorServerArgs> = {
  command: 'director-server',
  describe: 'Run a director (the orchestrator: deployments, VMs, releases) until SIGTERM',
  builder: (y) => y.option('config', { type: 'string', demandOption: true, describe: 'The director config file (YAML)' }),
  handler: async (args) => {
    const config = await loadDirectorConfig(args.config);
    if (config.cpi === 'local' && config.cpi_config !== undefined) {
      await ensureHostNetwork(compileConfig(await loadConfigFile(config.cpi_config), config.cpi_config));
    }
    const { url } = await startDirector(args.config, { validateRelease: describeRelease });
    process.stderr.write(`director listening on ${url}\n`);
  },
};

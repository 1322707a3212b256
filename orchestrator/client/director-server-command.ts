// `ingot director-server --config FILE`: runs a director (orchestrator/director) in this
// process until SIGTERM, with orchestrator/release's reader checking uploaded releases.
import type { CommandModule } from 'yargs';
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
    const { url } = await startDirector(args.config, { validateRelease: describeRelease });
    process.stderr.write(`director listening on ${url}\n`);
  },
};

// `ingot agent --settings FILE [--root DIR]`: runs the agent until SIGTERM/SIGINT, then stops
// its jobs and leaves the mbus.
import type { CommandModule } from 'yargs';
import { runAgent } from './main.ts';

interface AgentArgs {
  settings: string;
  root?: string | undefined;
}

export const agentCommand: CommandModule<object, AgentArgs> = {
  command: 'agent',
  describe: 'Run the orchestrator agent of a VM (answers the director on the mbus)',
  builder: (y) =>
    y
      .option('settings', { type: 'string', demandOption: true, describe: 'The settings file (/var/vcap/bosh/settings.json)' })
      .option('root', { type: 'string', describe: 'Override the root directory (default /var/vcap)' }),
  handler: async (args) => {
    await runAgent({ settings: args.settings, ...(args.root ? { root: args.root } : {}) });
  },
};

export default agentCommand;

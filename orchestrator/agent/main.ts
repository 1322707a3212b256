// Entry point: `node --import tsx orchestrator/agent/main.ts --settings FILE [--root DIR]`.
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Agent } from './agent.ts';
import { loadSettings } from './settings.ts';

export async function runAgent(opts: { settings: string; root?: string }): Promise<Agent> {
  const log = pino({ name: 'agent' });
  const agent = new Agent(loadSettings(opts.settings, opts.root ? { root: opts.root } : {}), log, opts.settings);
  const stop = (signal: string): void => {
    log.info({ signal }, 'stopping the agent');
    void agent.shutdown().finally(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  await agent.run();
  return agent;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { settings: { type: 'string' }, root: { type: 'string' } } });
  if (!values.settings) {
    process.stderr.write('ingot agent: --settings FILE is required\n');
    process.exit(2);
  }
  runAgent({ settings: values.settings, ...(values.root ? { root: values.root } : {}) }).catch((err: unknown) => {
    process.stderr.write(`ingot agent: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

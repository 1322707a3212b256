// `ingot balancer --config FILE`: runs the local IaaS's balancer (orchestrator/cpi/local/
// balancer.ts) in this process. SIGHUP re-reads the config (the backend list) without dropping
// connections; SIGTERM stops accepting and waits drain_timeout_s for open connections. For the
// lead to register in cli/main.ts with `.command(balancerCommand)`.

import type { CommandModule } from 'yargs';
import { createLogger } from '../../kernel/component/mod.ts';
import { Balancer } from '../cpi/local/balancer.ts';
import { loadBalancerConfig } from '../cpi/local/balancer-config.ts';

interface BalancerArgs {
  config: string;
}

export const balancerCommand: CommandModule<object, BalancerArgs> = {
  command: 'balancer',
  describe: 'Run the local balancer in front of the routers (SIGHUP re-reads the config) until SIGTERM',
  builder: (y) => y.option('config', { type: 'string', demandOption: true, describe: 'The balancer config file (YAML)' }),
  handler: async (args) => {
    await runBalancer(args.config);
  },
};

/** Runs until SIGTERM or SIGINT; a config problem at start throws the ConfigError (one line). */
export async function runBalancer(configFile: string): Promise<void> {
  const config = await loadBalancerConfig(configFile);
  const log = createLogger('balancer', 0);
  const balancer = new Balancer(config, log);
  await balancer.start();
  log.info({ port: balancer.port, status_port: balancer.statusPort, backends: config.backends.length }, 'balancer listening');

  let reloading = Promise.resolve();
  const onHup = (): void => {
    reloading = reloading.then(async () => {
      try {
        balancer.reload(await loadBalancerConfig(configFile));
      } catch (err) {
        // A bad rewrite keeps the backends we have: dropping them would cut the platform off.
        log.error({ error: (err as Error).message }, 'reloading the config failed; keeping the current backends');
      }
    });
  };
  process.on('SIGHUP', onHup);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  process.off('SIGHUP', onHup);
  log.info({ active: balancer.status().active }, 'stopping: no new connections, waiting for open ones');
  await balancer.close(config.drain_timeout_s * 1000);
  log.info('balancer stopped');
  // pino writes asynchronously; give it the turn it needs before the CLI returns.
  await new Promise((r) => setImmediate(r));
}

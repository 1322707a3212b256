// `ingot component dea`: the DEA process. SIGTERM stops every instance (DEA_SHUTDOWN) and
// removes the DEA's kernel objects; SIGUSR2 evacuates (DESIGN.md §3) and then exits; a DEA
// that dies any other way leaves its instances running for the next one to adopt.
import { resolve } from 'node:path';
import { defineComponent, ComponentError } from '../component/mod.ts';
import { ContainerHost, IsolationUnavailableError } from './container/mod.ts';
import { deaConfig, uidRangeOf } from './config.ts';
import { Dea } from './dea.ts';

export default defineComponent({
  type: 'dea',
  config: deaConfig,
  async start({ config, bus, log, host, uuid }) {
    let containers: ContainerHost;
    try {
      containers = await ContainerHost.create({
        prefix: config.prefix,
        dataDir: resolve(config.base_dir, 'containers'),
        isolation: config.isolation,
        network: {
          subnet: config.network.subnet,
          hostAddress: host,
          hostPorts: config.network.host_ports,
          containerPort: config.network.container_port,
          deny: config.network.deny,
          allow: config.network.allow,
        },
        uidRange: uidRangeOf(config),
        cgroupParent: config.cgroup_parent,
      });
    } catch (err) {
      if (err instanceof IsolationUnavailableError) {
        throw new ComponentError('isolation_unavailable', `${err.message} (set isolation: none in the DEA config for development only)`);
      }
      throw err;
    }
    if (config.isolation === 'none') log.warn('isolation: none — instances are not isolated; for development only');
    const dea = new Dea({ config, bus, log, containers, hostAddress: host, uuid });
    await dea.start();
    log.info({ dea_id: dea.id, isolation: config.isolation }, 'DEA ready');
    let evacuating = false;
    return {
      varz: () => dea.varz(),
      healthy: () => true,
      onSignal(signal) {
        if (signal !== 'SIGUSR2' || evacuating) return;
        evacuating = true;
        void dea.evacuate().then(() => process.kill(process.pid, 'SIGTERM'));
      },
      async drain() {
        await dea.shutdown();
        await containers.shutdown();
      },
      async stop() {
        await dea.detach();
      },
    };
  },
});

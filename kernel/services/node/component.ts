// `ingot component service-node --config FILE`: one node of one service (`label`). The
// framework (service-node.ts) is the same for every service; the backend that makes the
// units is chosen by the label. Its units' servers stop with the node (SIGTERM) and come
// back when it starts again: a node is a supervised job, and so are its servers.
import { dirname, resolve } from 'node:path';
import { defineComponent } from '../../component/mod.ts';
import { nodeConfig, nodeIdOf } from './config.ts';
import { ServiceNode } from './service-node.ts';
import { backends } from './backends.ts';

export default defineComponent({
  type: 'service-node',
  config: nodeConfig,
  async start({ config, bus, log, host, configFile }) {
    const load = backends[config.label]!; // the config admits only labels with a backend
    const nodeId = nodeIdOf(config);
    const baseDir = resolve(dirname(configFile), config.base_dir);
    let node: ServiceNode | undefined;
    const backend = (await load())({
      config,
      nodeId,
      host: config.host ?? host,
      baseDir,
      log,
      units: () => node?.units() ?? [],
    });
    node = new ServiceNode({ config, nodeId, baseDir, bus, log }, backend);
    try {
      await node.start();
    } catch (err) {
      await backend.stop();
      throw err;
    }
    const running = node;
    return {
      varz: () => running.varz(),
      stop: () => running.stop(),
    };
  },
});

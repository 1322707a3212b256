// `ingot component service-gateway --config FILE`: an Open Service Broker API server in
// front of the nodes of one service. It learns the nodes from `services.<label>.announce`
// (asking `services.<label>.discover` at start so it need not wait an interval), places new
// instances on the node with the most room for the plan, and announces itself on
// `services.gateway.announce` so controllers register it as a broker.
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { subjects } from '../../bus/mod.ts';
import { defineComponent, gauge, type Metric } from '../../component/mod.ts';
import { Broker } from './broker.ts';
import { catalogOf, gatewayConfig } from './config.ts';
import { BrokerServer } from './http.ts';

export default defineComponent({
  type: 'service-gateway',
  config: gatewayConfig,
  async start({ config, bus, log, host, configFile }) {
    const baseDir = resolve(dirname(configFile), config.base_dir);
    const broker = new Broker({ config, bus, log, baseDir });
    const unsubscribe = bus.subscribe(subjects.serviceNodeAnnounce(config.label), (msg) => broker.nodes.hear(msg, Date.now()));
    await mkdir(baseDir, { recursive: true, mode: 0o700 });
    await broker.load();
    const server = new BrokerServer({ host: config.broker.host, port: config.broker.port, user: config.broker.user, password: config.broker.password, catalog: catalogOf(config), broker, log });
    await server.listen();
    const url = config.broker.url ?? `http://${host}:${server.port}`;
    const name = config.name ?? config.label;

    const announce = (): void => {
      try {
        bus.publish(subjects.serviceGatewayAnnounce, { name, label: config.label, url });
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'announcing the gateway failed');
      }
    };
    const discover = (): void => bus.publish(subjects.serviceNodeDiscover(config.label), {});
    discover();
    announce();
    bus.onReconnected(() => {
      discover();
      announce();
    });
    const timer = setInterval(announce, config.announce_interval_s * 1000);
    log.info({ label: config.label, broker_port: server.port, url }, 'service gateway listening');

    return {
      varz: () => ({ label: config.label, name, url, broker_port: server.port, requests: server.requests(), ...broker.varz() }),
      metrics: (): Metric[] => [gauge('nodes', 'Service nodes heard within 3 of their intervals', broker.nodes.alive(Date.now()).length)],
      drain: () => broker.settle(),
      async stop() {
        clearInterval(timer);
        unsubscribe();
        await server.close();
      },
    };
  },
});

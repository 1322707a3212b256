// The four services as a platform runs them, for end-to-end tests: per service one node (its
// servers on the host's address, so apps in containers reach them) and one gateway that
// announces itself to the controller, with the small plans of the services' own suites (so
// limits are felt quickly): `default`, and `large` for update-service to move to.
// `planServices` picks the nodes' ports first — the DEAs' egress allow list must name them
// before the DEAs start — and `startServices` brings everything up in parallel; `stop()` ends
// whatever did start, even after a failed start, and kills any server a node left behind.
import { eventually } from './component-process.ts';
import type { NatsServer } from './nats-server.ts';
import { freePort } from './ports.ts';
import { pidsUnder, restartServiceNode, startServiceGateway, startServiceNode, type ServiceGatewaySpec } from './services-processes.ts';
import { RABBIT_PLANS, RABBIT_READY_MS } from './services-rabbitmq.ts';
import { BROKER, gatewayHears, PLANS as REDIS_PLANS, portRange, type RunningGateway, type RunningNode } from './services-redis.ts';
import { SQL_PLANS } from './services-sql.ts';

export type ServiceLabel = 'redis' | 'postgresql' | 'mysql' | 'rabbitmq';
export const SERVICE_LABELS: readonly ServiceLabel[] = ['redis', 'postgresql', 'mysql', 'rabbitmq'];

/** What the controller needs to trust every gateway here (by label), and quick polling. */
export function servicesControllerConfig(labels: readonly ServiceLabel[]): Record<string, unknown> {
  const credentials = Object.fromEntries(labels.map((l) => [l, { username: BROKER.user, password: BROKER.password }]));
  return { service_brokers: { credentials, poll_interval_s: 0.2, catalog_refresh_s: 2 } };
}

/** One service's node as it will start: its config keys and the ports apps reach on the host. */
export interface PlannedService {
  label: ServiceLabel;
  capacity: number;
  plans: Record<string, Record<string, number>>;
  extra: Record<string, unknown>;
  /** The ports of its servers that apps connect to (the DEAs' network.allow). */
  appPorts: number[];
  readyTimeoutMs: number;
  gateway: Omit<ServiceGatewaySpec, 'name'>;
}

/** A first start runs initdb, mariadb-install-db or boots RabbitMQ: allow for a slow machine. */
const READY_MS = { redis: 30_000, postgresql: 90_000, mysql: 90_000, rabbitmq: RABBIT_READY_MS } as const;

const GATEWAY: Record<ServiceLabel, Pick<ServiceGatewaySpec, 'description' | 'tags'>> = {
  redis: { description: 'Redis, one server per instance', tags: ['redis', 'key-value'] },
  postgresql: { description: 'PostgreSQL, a database per instance', tags: ['postgresql', 'relational'] },
  mysql: { description: 'MySQL, a database per instance', tags: ['mysql', 'relational'] },
  rabbitmq: { description: 'RabbitMQ, a vhost per instance', tags: ['rabbitmq', 'amqp'] },
};

/** Ports and configs of each service's node, on `host`; `capacity` per label (default 10). */
export async function planServices(labels: readonly ServiceLabel[], host: string, capacity: Partial<Record<ServiceLabel, number>> = {}): Promise<PlannedService[]> {
  const planned: PlannedService[] = [];
  for (const label of labels) {
    const cap = capacity[label] ?? 10;
    let plans: Record<string, Record<string, number>>;
    let extra: Record<string, unknown>;
    let appPorts: number[];
    if (label === 'redis') {
      // One redis-server (one port) per instance: as many ports as the capacity.
      const range = portRange(cap);
      plans = { default: REDIS_PLANS.default, large: REDIS_PLANS.large };
      extra = { port_range: range };
      appPorts = Array.from({ length: cap }, (_, i) => range.min + i);
    } else if (label === 'rabbitmq') {
      const [amqp, management, dist, epmd] = [await freePort(), await freePort(), await freePort(), await freePort()];
      plans = RABBIT_PLANS;
      extra = { rabbitmq: { amqp_port: amqp, management_port: management, dist_port: dist, epmd_port: epmd } };
      appPorts = [amqp, management];
    } else {
      const port = await freePort();
      plans = SQL_PLANS[label];
      extra = { [label]: { port, quota_interval_s: 0.5 } };
      appPorts = [port];
    }
    planned.push({ label, capacity: cap, plans, extra: { ...extra, host }, appPorts, readyTimeoutMs: READY_MS[label], gateway: { label, plans, ...GATEWAY[label] } });
  }
  return planned;
}

export interface RunningService {
  label: ServiceLabel;
  /** The node process now (replaced by restartNode). */
  node: RunningNode;
  /** The gateway started with the service. */
  gateway: RunningGateway;
  /** The broker name that gateway announces (`<label>-gw`). */
  brokerName: string;
  appPorts: number[];
}

export interface RunningServices {
  byLabel: Partial<Record<ServiceLabel, RunningService>>;
  /** Stops a service's node with `signal` and starts it again on the same config and data. */
  restartNode(label: ServiceLabel, signal?: NodeJS.Signals): Promise<RunningNode>;
  /** Another gateway of a started service, announcing the broker name `<label>-<name>`; stopped with the rest. */
  startGateway(label: ServiceLabel, name: string): Promise<RunningGateway>;
  stop(): Promise<void>;
}

/** Every server program a node runs (its command line names the node's base_dir). */
const SERVER_PROGRAMS = /(redis-server|\/postgres|mariadbd|beam\.smp|epmd)$/;

/** Starts every planned node and its gateway in parallel; returns when each gateway hears its node. */
export async function startServices(nats: NatsServer, planned: PlannedService[]): Promise<RunningServices> {
  const byLabel: Partial<Record<ServiceLabel, RunningService>> = {};
  const gateways: RunningGateway[] = [];
  const nodes: RunningNode[] = [];
  const plannedOf = (label: ServiceLabel): PlannedService => {
    const p = planned.find((x) => x.label === label);
    if (!p) throw new Error(`service ${label} is not part of this platform`);
    return p;
  };
  const running: RunningServices = {
    byLabel,
    async restartNode(label, signal = 'SIGTERM') {
      const s = byLabel[label];
      if (!s) throw new Error(`service ${label} is not running`);
      await s.node.proc.kill(signal);
      s.node = await restartServiceNode(s.node, plannedOf(label).readyTimeoutMs);
      nodes.push(s.node);
      await gatewayHears(s.gateway, [s.node.nodeId], 30_000);
      return s.node;
    },
    async startGateway(label, name) {
      const gateway = await startServiceGateway(nats, { ...plannedOf(label).gateway, name });
      gateways.push(gateway);
      await gatewayHears(gateway, [byLabel[label]!.node.nodeId], 30_000);
      return gateway;
    },
    async stop() {
      for (const g of gateways.splice(0)) await g.proc.kill('SIGTERM').catch(() => undefined);
      // In parallel: a RabbitMQ or PostgreSQL node takes a few seconds to stop its server.
      await Promise.all(nodes.map((n) => stopWithin(n, 30_000)));
      for (const n of nodes.splice(0)) {
        for (const pid of await pidsUnder(n.baseDir, SERVER_PROGRAMS)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
      }
    },
  };
  const started = await Promise.allSettled(
    planned.map(async (p) => {
      const node = await startServiceNode(nats, { label: p.label, nodeId: `${p.label}-node`, plans: p.plans, capacity: p.capacity, extra: p.extra, readyTimeoutMs: p.readyTimeoutMs });
      nodes.push(node);
      const gateway = await startServiceGateway(nats, { ...p.gateway, name: 'gw' });
      gateways.push(gateway);
      await gatewayHears(gateway, [node.nodeId], 30_000);
      byLabel[p.label] = { label: p.label, node, gateway, brokerName: `${p.label}-gw`, appPorts: p.appPorts };
    }),
  );
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await running.stop();
    throw failed.reason;
  }
  return running;
}

/** SIGTERM, then SIGKILL if the node has not exited within `ms`. */
async function stopWithin(node: RunningNode, ms: number): Promise<void> {
  const { proc } = node;
  if (proc.proc.exitCode !== null || proc.proc.signalCode !== null) return;
  proc.proc.kill('SIGTERM');
  await Promise.race([proc.exited, new Promise((r) => setTimeout(r, ms))]);
  await proc.kill('SIGKILL');
}

/** Waits until the controller lists a broker of each name (each gateway announced itself and its catalog was fetched). */
export async function brokersRegistered(list: () => Promise<string[]>, names: string[], timeoutMs = 30_000): Promise<void> {
  await eventually(async () => {
    const known = await list();
    return names.every((n) => known.includes(n));
  }, timeoutMs, `brokers ${names.join(', ')} registered`);
}

// Any service's node and gateway as real processes (`ingot component service-node|
// service-gateway`), from the label, its plans and the backend's own keys: what every
// service suite shares, so a new backend's helper only says what differs. A node's base_dir
// is a scratch directory, so its servers' command lines name it and scripts/sweep.sh
// catches whatever a dead run left.
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startComponentProcess, writeConfig, type StartedComponent } from './component-process.ts';
import type { NatsServer } from './nats-server.ts';
import { osbClient, type BrokerUnderTest } from './osb-conformance.ts';
import { freePort } from './ports.ts';
import { BROKER, nodeBaseDir, type RunningGateway, type RunningNode } from './services-redis.ts';
import { scratchDir } from './tmp.ts';

const STATUS = { user: 'ingot', password: 'status-secret' };

export interface ServiceNodeSpec {
  label: string;
  nodeId: string;
  plans: Record<string, Record<string, number>>;
  capacity?: number;
  /** Further keys of the node's config (the backend's own section). */
  extra?: Record<string, unknown>;
  readyTimeoutMs?: number;
}

export async function startServiceNode(nats: NatsServer, spec: ServiceNodeSpec): Promise<RunningNode> {
  const baseDir = nodeBaseDir(`${spec.label}-${spec.nodeId}`);
  const configFile = writeConfig(`node-${spec.nodeId}`, {
    nats: nats.componentConfig,
    label: spec.label,
    node_id: spec.nodeId,
    plans: spec.plans,
    // Room for a suite's shared world: its tests and the conformance suite's hold instances at once.
    capacity: spec.capacity ?? 30,
    base_dir: baseDir,
    host: '127.0.0.1',
    announce_interval_s: 0.5,
    ...spec.extra,
    status: { host: '127.0.0.1', port: 0, ...STATUS },
  });
  return { proc: await startNodeProcess(configFile, spec.readyTimeoutMs), nodeId: spec.nodeId, baseDir, configFile };
}

/** The same node again (same config, same base_dir): what a restarted VM job does. */
export async function restartServiceNode(node: RunningNode, readyTimeoutMs?: number): Promise<RunningNode> {
  return { ...node, proc: await startNodeProcess(node.configFile, readyTimeoutMs) };
}

function startNodeProcess(configFile: string, readyTimeoutMs = 60_000): Promise<StartedComponent> {
  return startComponentProcess('service-node', configFile, { readyTimeoutMs, statusPassword: STATUS.password });
}

export interface ServiceGatewaySpec {
  label: string;
  name: string;
  description: string;
  tags: string[];
  plans: Record<string, Record<string, number>>;
}

/**
 * A gateway offering every plan of the node (`ingot-<label>-<plan>`; the broker under test's
 * plan is `default`), plan changes allowed, on loopback; it announces that URL, so a
 * controller reaches it.
 */
export async function startServiceGateway(nats: NatsServer, spec: ServiceGatewaySpec): Promise<RunningGateway> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const serviceId = `ingot-${spec.label}-service`;
  const planId = planIdOf(spec.label, 'default');
  const configFile = writeConfig(`gateway-${spec.name}`, {
    nats: nats.componentConfig,
    label: spec.label,
    name: `${spec.label}-${spec.name}`,
    base_dir: join(scratchDir(`gateway-${spec.name}-state`), 'state'),
    broker: { host: '127.0.0.1', port, url, ...BROKER },
    announce_interval_s: 1,
    node_timeout_s: 30,
    service: { id: serviceId, description: spec.description, tags: spec.tags, plan_updateable: true },
    plans: Object.entries(spec.plans).map(([name, limits]) => ({ id: planIdOf(spec.label, name), name, description: describeLimits(limits), limits })),
    status: { host: '127.0.0.1', port: 0, ...STATUS },
  });
  const proc = await startComponentProcess('service-gateway', configFile, { readyTimeoutMs: 30_000, statusPassword: STATUS.password });
  const broker: BrokerUnderTest = { url, ...BROKER, serviceId, planId };
  return { proc, broker };
}

/** The OSB id of a plan of the gateways here. */
export function planIdOf(label: string, plan: string): string {
  return `ingot-${label}-${plan}`;
}

/** A plan's description from its limits (`memory_mb 16, max_clients 3`), as the catalog shows it. */
function describeLimits(limits: Record<string, number>): string {
  return Object.entries(limits).map(([k, v]) => `${k} ${v}`).join(', ');
}

/** Provisions an instance (201, or 200 when it exists); returns its id. */
export async function provisionInstance(gateway: RunningGateway, instanceId = randomUUID()): Promise<string> {
  const p = await osbClient(gateway.broker).provision(instanceId);
  if (p.status !== 201 && p.status !== 200) throw new Error(`provision answered ${p.status}: ${JSON.stringify(p.body)}`);
  return instanceId;
}

/** Moves an instance to another plan (OSB PATCH, synchronous here); throws unless 200. */
export async function updateInstance(gateway: RunningGateway, instanceId: string, planId: string): Promise<void> {
  const { broker } = gateway;
  const r = await osbClient(broker).update(instanceId, { service_id: broker.serviceId, plan_id: planId, previous_values: { plan_id: broker.planId } });
  if (r.status !== 200) throw new Error(`update to ${planId} answered ${r.status}: ${JSON.stringify(r.body)}`);
}

/** Binds an instance once; returns the binding's id and credentials. */
export async function bindInstance<C>(gateway: RunningGateway, instanceId: string, bindingId = randomUUID()): Promise<{ bindingId: string; creds: C }> {
  const b = await osbClient(gateway.broker).bind(instanceId, bindingId, randomUUID());
  if (b.status !== 201) throw new Error(`bind answered ${b.status}: ${JSON.stringify(b.body)}`);
  return { bindingId, creds: b.body.credentials as C };
}

/** The pids of processes whose program matches `program` and whose command line names `dir` (a node's base_dir). */
export async function pidsUnder(dir: string, program: RegExp): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0');
      if (program.test(cmd[0] ?? '') && cmd.some((a) => a.includes(dir + '/'))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

// A Redis service for tests: real service nodes and gateways as processes (`ingot component
// service-node|service-gateway`), their configs, and a way to talk to the redis-servers they
// make. Every node's base_dir is a scratch directory, so redis-servers' command lines name it
// and scripts/sweep.sh's sweep of the scratch root catches any a dead run left.
import { chmodSync, mkdirSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { redisCommand, RespClient, type RespValue } from '../../kernel/services/nodes/redis/resp.ts';
import { eventually, startComponentProcess, writeConfig, type StartedComponent } from './component-process.ts';
import type { NatsServer } from './nats-server.ts';
import { freePort } from './ports.ts';
import { scratchDir } from './tmp.ts';
import type { BrokerUnderTest } from './osb-conformance.ts';

export const SERVICE_ID = 'ingot-redis-service';
export const PLAN_ID = 'ingot-redis-default';
export const ASYNC_PLAN_ID = 'ingot-redis-async';
export const LARGE_PLAN_ID = 'ingot-redis-large';
export const BROKER = { user: 'broker', password: 'broker-secret' };
const STATUS = { user: 'ingot', password: 'status-secret' };

/** Small plans: 2 MB is enough to feel maxmemory quickly. */
export const PLANS = {
  default: { memory_mb: 2, max_clients: 20, capacity_units: 1 },
  async: { memory_mb: 2, max_clients: 20, capacity_units: 1 },
  /** What a plan change moves an instance to: other limits, so CONFIG GET shows the change. */
  large: { memory_mb: 4, max_clients: 30, capacity_units: 1 },
};

export interface NodeSpec {
  nodeId: string;
  capacity?: number;
  /** Kept across restarts of the same node. */
  baseDir?: string;
  portRange?: { min: number; max: number };
}

export interface RunningNode {
  proc: StartedComponent;
  nodeId: string;
  baseDir: string;
  configFile: string;
}

/** A scratch directory the `redis` user can traverse (servers run as it when tests run as root). */
export function nodeBaseDir(label: string): string {
  const dir = scratchDir(label);
  chmodSync(dir, 0o711);
  const base = join(dir, 'units');
  mkdirSync(base, { mode: 0o711 });
  return base;
}

let nextRange = 41000 + Math.floor(Math.random() * 4000);
/**
 * Ports for one node's servers. Above most test ports but not reserved: the node probes each
 * port before it uses it, so one taken by something else is skipped, not fatal.
 */
export function portRange(size: number): { min: number; max: number } {
  const min = nextRange;
  nextRange += size;
  return { min, max: min + size - 1 };
}

export async function startNode(nats: NatsServer, spec: NodeSpec): Promise<RunningNode> {
  const baseDir = spec.baseDir ?? nodeBaseDir(`redis-${spec.nodeId}`);
  const configFile = writeConfig(`node-${spec.nodeId}`, {
    nats: nats.componentConfig,
    label: 'redis',
    node_id: spec.nodeId,
    plans: PLANS,
    capacity: spec.capacity ?? 10,
    base_dir: baseDir,
    host: '127.0.0.1',
    port_range: spec.portRange ?? portRange(20),
    announce_interval_s: 0.5,
    status: { host: '127.0.0.1', port: 0, ...STATUS },
  });
  const proc = await startComponentProcess('service-node', configFile, { readyTimeoutMs: 30_000, statusPassword: STATUS.password });
  return { proc, nodeId: spec.nodeId, baseDir, configFile };
}

export async function restartNode(nats: NatsServer, node: RunningNode): Promise<RunningNode> {
  const proc = await startComponentProcess('service-node', node.configFile, { readyTimeoutMs: 30_000, statusPassword: STATUS.password });
  return { ...node, proc };
}

export interface RunningGateway {
  proc: StartedComponent;
  broker: BrokerUnderTest;
}

/** A Redis gateway on loopback that announces the URL it listens on (so a controller reaches it). */
export async function startGateway(nats: NatsServer, name: string): Promise<RunningGateway> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const configFile = writeConfig(`gateway-${name}`, {
    nats: nats.componentConfig,
    label: 'redis',
    name: `redis-${name}`,
    base_dir: join(scratchDir(`gateway-${name}-state`), 'state'),
    broker: { host: '127.0.0.1', port, url, ...BROKER },
    announce_interval_s: 1,
    node_timeout_s: 20,
    service: { id: SERVICE_ID, description: 'Redis, one server per instance', tags: ['redis', 'key-value'], plan_updateable: true },
    plans: [
      { id: PLAN_ID, name: 'default', description: '2 MB, 20 connections', limits: PLANS.default },
      { id: ASYNC_PLAN_ID, name: 'async', description: 'The same, provisioned asynchronously', async: true, limits: PLANS.async },
      { id: LARGE_PLAN_ID, name: 'large', description: '4 MB, 30 connections', limits: PLANS.large },
    ],
    status: { host: '127.0.0.1', port: 0, ...STATUS },
  });
  const proc = await startComponentProcess('service-gateway', configFile, { readyTimeoutMs: 30_000, statusPassword: STATUS.password });
  return { proc, broker: { url, ...BROKER, serviceId: SERVICE_ID, planId: PLAN_ID, asyncPlanId: ASYNC_PLAN_ID } };
}

export interface RedisCredentials {
  host: string;
  port: number;
  username: string;
  password: string;
  uri: string;
}

/** One command with a binding's credentials, on a fresh connection. */
export async function redisAs(creds: RedisCredentials, ...args: Array<string | number>): Promise<RespValue> {
  const client = await RespClient.connect({ host: creds.host, port: creds.port, username: creds.username, password: creds.password });
  try {
    return await client.command(...args);
  } finally {
    client.close();
  }
}

/** A setting of an instance's own redis-server (CONFIG GET), asked as the node's admin with what node.json keeps. */
export async function redisConfigOf(nodeBaseDir: string, instanceId: string, setting: string): Promise<string> {
  const state = JSON.parse(await readFile(join(nodeBaseDir, 'node.json'), 'utf8')) as { units: Record<string, { data: { port: number; admin_password: string } }> };
  const unit = state.units[instanceId];
  if (!unit) throw new Error(`node ${nodeBaseDir} holds no instance ${instanceId}`);
  const reply = await redisCommand({ host: '127.0.0.1', port: unit.data.port, password: unit.data.admin_password }, 'CONFIG', 'GET', setting);
  return String((reply as string[])[1]);
}

/** The pids of redis-servers whose command line names `dir` (a node's base_dir). */
export async function redisPidsUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0');
      if (cmd[0]?.endsWith('redis-server') && cmd.some((a) => a.startsWith(dir + '/'))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** A component's /varz. */
export async function varzOf(proc: StartedComponent): Promise<Record<string, unknown>> {
  const r = await fetch(proc.statusUrl('/varz'), { headers: { authorization: proc.auth } });
  return (await r.json()) as Record<string, unknown>;
}

/** Waits until the gateway has heard every one of these nodes. */
export async function gatewayHears(gateway: RunningGateway, nodeIds: string[], timeoutMs = 10_000): Promise<void> {
  await eventually(async () => {
    const nodes = ((await varzOf(gateway.proc)).nodes ?? []) as Array<{ node_id: string }>;
    return nodeIds.every((id) => nodes.some((n) => n.node_id === id));
  }, timeoutMs, `gateway hearing ${nodeIds.join(', ')}`);
}

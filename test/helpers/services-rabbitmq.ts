// A RabbitMQ service for tests: a node (owning one RabbitMQ server on free ports of its own,
// next to any system RabbitMQ) and a gateway; an app is played by the management HTTP API
// with a binding's own credentials (publish to the default exchange, get from a queue) and
// by services-amqp.ts for live AMQP connections.
import type { RabbitCredentials } from '../../kernel/services/nodes/rabbitmq/rabbitmq-conf.ts';
import type { NatsServer } from './nats-server.ts';
import { freePort } from './ports.ts';
import { pidsUnder, startServiceGateway, startServiceNode } from './services-processes.ts';
import { gatewayHears, type RunningGateway, type RunningNode } from './services-redis.ts';

/** Small limits, to feel them: 2 connections, 3 queues, 1 MB per queue; `large`, what a plan change moves to, twice each. */
export const RABBIT_PLANS = {
  default: { memory_mb: 1, max_clients: 2, max_queues: 3, capacity_units: 1 },
  large: { memory_mb: 2, max_clients: 4, max_queues: 6, capacity_units: 1 },
};

/** A first boot creates Mnesia and unpacks plugins: allow for a slow machine. */
export const RABBIT_READY_MS = 120_000;

export interface RabbitWorld {
  nats: NatsServer;
  node: RunningNode;
  gateway: RunningGateway;
}

export async function startRabbitWorld(nats: NatsServer, name: string): Promise<RabbitWorld> {
  const node = await startServiceNode(nats, {
    label: 'rabbitmq',
    nodeId: `${name}-node`,
    plans: RABBIT_PLANS,
    extra: { rabbitmq: { amqp_port: await freePort(), management_port: await freePort(), dist_port: await freePort(), epmd_port: await freePort() } },
    readyTimeoutMs: RABBIT_READY_MS,
  });
  const gateway = await startServiceGateway(nats, { label: 'rabbitmq', name, description: 'RabbitMQ, a vhost per instance', tags: ['rabbitmq', 'amqp'], plans: RABBIT_PLANS });
  await gatewayHears(gateway, [node.nodeId]);
  return { nats, node, gateway };
}

/** One management API request as the binding (its http_api_uri, as an app would use it). */
export async function apiAs(creds: Pick<RabbitCredentials, 'http_api_uri'>, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const url = new URL(creds.http_api_uri);
  const auth = Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64');
  url.username = '';
  url.password = '';
  const res = await fetch(new URL(path.replace(/^\//, ''), url), {
    method,
    headers: { authorization: `Basic ${auth}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

export type { RabbitCredentials };

const v = (creds: RabbitCredentials): string => encodeURIComponent(creds.vhost);

export function declareQueue(creds: RabbitCredentials, queue: string, vhost = creds.vhost) {
  return apiAs(creds, 'PUT', `queues/${encodeURIComponent(vhost)}/${encodeURIComponent(queue)}`, { durable: true, auto_delete: false });
}

/** A persistent message (delivery_mode 2) to the queue, through the default exchange. */
export function publish(creds: RabbitCredentials, queue: string, payload: string, vhost = creds.vhost) {
  return apiAs(creds, 'POST', `exchanges/${encodeURIComponent(vhost)}/amq.default/publish`, { properties: { delivery_mode: 2 }, routing_key: queue, payload, payload_encoding: 'string' });
}

/** Reads the queue's messages without taking them (requeued), so a later read sees them again. */
export function peek(creds: RabbitCredentials, queue: string, count = 10) {
  return apiAs(creds, 'POST', `queues/${v(creds)}/${encodeURIComponent(queue)}/get`, { count, ackmode: 'ack_requeue_true', encoding: 'auto' });
}

/** beam.smp and epmd processes whose command line names `dir` (a node's base_dir). */
export function rabbitPidsUnder(dir: string): Promise<number[]> {
  return pidsUnder(dir, /(beam\.smp|epmd)$/);
}

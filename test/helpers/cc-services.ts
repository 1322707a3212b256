// Services for controller tests: the real Redis service (a node and a gateway as processes,
// from services-redis.ts) with the controller config that trusts its broker credential, and a
// small third-party OSB broker in the test process — an HTTP server speaking OSB 2.17 (Basic
// auth, the version header, a plan provisioned asynchronously and polled through
// last_operation; bindings made and removed asynchronously when asked) — for registration by
// URL and asynchronous operations.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startController, type Controller } from './cc-controller.ts';
import { Journal, TestDea, TestStager } from './cc-peers.ts';
import { eventually } from './component-process.ts';
import { NatsServer } from './nats-server.ts';
import { BROKER, gatewayHears, redisPidsUnder, startGateway, startNode, type RunningGateway, type RunningNode } from './services-redis.ts';

/** Controller config: the Redis gateways' credential (by their label), quick polling. */
export const SERVICES_CC_CONFIG = {
  service_brokers: { credentials: { redis: { username: BROKER.user, password: BROKER.password } }, poll_interval_s: 0.2, catalog_refresh_s: 2 },
};

export interface RedisService {
  node: RunningNode;
  gateway: RunningGateway;
  /** The broker name the gateway announces. */
  brokerName: string;
  stop(): Promise<void>;
}

/** A Redis node and one gateway on the bus, the gateway hearing the node. */
export async function startRedisService(nats: NatsServer, name: string): Promise<RedisService> {
  const node = await startNode(nats, { nodeId: `${name}-node`, capacity: 10 });
  const gateway = await startGateway(nats, name).catch(async (err: unknown) => {
    await node.proc.kill('SIGTERM');
    throw err;
  });
  await gatewayHears(gateway, [node.nodeId]);
  return {
    node,
    gateway,
    brokerName: `redis-${name}`,
    async stop() {
      await gateway.proc.kill('SIGTERM');
      await node.proc.kill('SIGTERM');
      for (const pid of await redisPidsUnder(node.baseDir)) process.kill(pid, 'SIGKILL');
    },
  };
}

/** Everything a controller test of services runs against. */
export interface ServicesWorld {
  nats: NatsServer;
  journal: Journal;
  stager: TestStager;
  dea: TestDea;
  cc: Controller;
  redis: RedisService;
  tp: TestOsbBroker;
  stop(): Promise<void>;
}

/**
 * A nats-server, a test stager and DEA (one journal), a controller trusting the Redis
 * gateway's credential (on `options.dbUrl`, else a SQLite file of its own), a Redis node and
 * gateway — registered by the time this returns — and a third-party broker (not registered).
 */
export async function startServicesWorld(name: string, options: { dbUrl?: string } = {}): Promise<ServicesWorld> {
  const nats = await NatsServer.start();
  const parts: Partial<ServicesWorld> = { nats };
  const stop = async () => {
    await parts.cc?.kill();
    await parts.redis?.stop();
    await parts.tp?.close();
    await parts.dea?.close();
    await parts.stager?.close();
    await nats.stop();
  };
  try {
    parts.journal = new Journal();
    parts.stager = await TestStager.start(nats, parts.journal);
    parts.dea = await TestDea.start(nats, `dea-${name}`, parts.journal);
    parts.cc = await startController(nats, { ...SERVICES_CC_CONFIG, ...(options.dbUrl ? { db: { url: options.dbUrl } } : {}) });
    parts.redis = await startRedisService(nats, name);
    parts.tp = await TestOsbBroker.start();
    const { cc, redis } = parts;
    await eventually(async () => (await cc.admin.get(`/v3/service_brokers?names=${redis.brokerName}`)).body.resources.length === 1, 15_000, 'the gateway registered');
  } catch (err) {
    await stop();
    throw err;
  }
  return { ...(parts as Omit<ServicesWorld, 'stop'>), stop };
}

export const THIRD_PARTY = { user: 'tp-broker', password: 'tp-secret', serviceId: 'tp-service', syncPlanId: 'tp-sync', asyncPlanId: 'tp-async' };

interface TpInstance {
  plan_id: string;
  /** last_operation polls left before an asynchronous provision (or update) succeeds. */
  pollsLeft: number;
  state: 'in progress' | 'succeeded';
  /** The plan an asynchronous update moves it to, once it succeeds. */
  pending_plan_id?: string;
}

interface TpBinding {
  instance_id: string;
  credentials: Record<string, unknown>;
  /** An asynchronous bind or unbind: last_operation polls left, and how it ends. */
  operation?: { kind: 'bind' | 'unbind'; pollsLeft: number; fails: boolean };
}

/**
 * A third-party OSB broker: offering `tp-db` with plans `small` (synchronous) and `slow`
 * (asynchronous). Its catalog says `plan_updateable` as `planUpdateable` is at the fetch; an
 * update to `slow` is asynchronous, one with `parameters.fail` is refused (422). With
 * `asyncBindings`, binds and unbinds answer 202 and end after `bindingPolls` polls of the
 * binding's last_operation (a bind with `parameters.fail` ends failed); the credentials are then
 * fetched with GET (its catalog says bindings_retrievable).
 */
export class TestOsbBroker {
  readonly instances = new Map<string, TpInstance>();
  readonly bindings = new Map<string, TpBinding>();
  asyncBindings = false;
  /** Polls of a binding's last_operation before an asynchronous bind or unbind ends. */
  bindingPolls = 3;
  /** Polls of an instance's last_operation answered 410 first (a broker that does not know it yet). */
  unknownPolls = 0;
  readonly calls: string[] = [];
  /** Bodies of the PATCH requests, last last. */
  readonly updates: Array<Record<string, unknown>> = [];
  planUpdateable = false;
  private constructor(
    private readonly server: Server,
    readonly pollsBeforeDone: number,
  ) {}

  static async start(opts: { pollsBeforeDone?: number } = {}): Promise<TestOsbBroker> {
    let broker!: TestOsbBroker;
    const server = createServer((req, res) => void broker.handle(req, res));
    broker = new TestOsbBroker(server, opts.pollsBeforeDone ?? 3);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return broker;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {};
    const url = new URL(req.url ?? '/', 'http://broker');
    this.calls.push(`${req.method} ${url.pathname}`);
    if (!req.headers['x-broker-api-version']) return send(412, { error: 'PreconditionFailed', description: 'X-Broker-API-Version is required' });
    const expected = 'Basic ' + Buffer.from(`${THIRD_PARTY.user}:${THIRD_PARTY.password}`).toString('base64');
    if (req.headers.authorization !== expected) return send(401, { description: 'bad credentials' });
    const parts = url.pathname.split('/').filter(Boolean);
    if (req.method === 'GET' && url.pathname === '/v2/catalog') return send(200, { services: CATALOG.services.map((x) => ({ ...x, plan_updateable: this.planUpdateable })) });
    const [, kind, id, sub, bindingId] = parts;
    if (kind !== 'service_instances' || !id) return send(404, {});
    const instance = this.instances.get(id);
    if (!sub) {
      if (req.method === 'PUT') {
        if (instance) return send(200, {});
        const async = body.plan_id === THIRD_PARTY.asyncPlanId;
        if (async && url.searchParams.get('accepts_incomplete') !== 'true') return send(422, { error: 'AsyncRequired', description: 'this plan is asynchronous' });
        if (body.plan_id === 'refuse') return send(400, {});
        this.instances.set(id, { plan_id: String(body.plan_id), pollsLeft: async ? this.pollsBeforeDone : 0, state: async ? 'in progress' : 'succeeded' });
        return async ? send(202, { operation: `op-${id}` }) : send(201, { dashboard_url: `${this.url}/dashboard/${id}` });
      }
      if (req.method === 'PATCH') {
        this.updates.push(body);
        if (!instance) return send(400, { description: 'no such instance' });
        if ((body.parameters as Record<string, unknown> | undefined)?.fail) return send(422, { error: 'ImpossibleChange', description: 'the broker cannot make that change' });
        if (body.plan_id !== THIRD_PARTY.asyncPlanId) {
          if (body.plan_id) instance.plan_id = String(body.plan_id);
          return send(200, {});
        }
        Object.assign(instance, { state: 'in progress', pollsLeft: this.pollsBeforeDone, pending_plan_id: body.plan_id });
        return send(202, { operation: `update-${id}` });
      }
      if (req.method === 'DELETE') {
        if (!instance) return send(410, {});
        this.instances.delete(id);
        return send(200, {});
      }
    }
    if (sub === 'last_operation' && req.method === 'GET') {
      if (this.unknownPolls > 0) {
        this.unknownPolls--;
        return send(410, {});
      }
      if (!instance) return send(410, {});
      if (instance.state === 'in progress' && --instance.pollsLeft <= 0) {
        instance.state = 'succeeded';
        instance.plan_id = instance.pending_plan_id ?? instance.plan_id;
      }
      return send(200, { state: instance.state, description: instance.state === 'succeeded' ? 'ready' : `${instance.pollsLeft} polls to go` });
    }
    if (sub === 'service_bindings' && bindingId) {
      const binding = this.bindings.get(bindingId);
      const async = this.asyncBindings && url.searchParams.get('accepts_incomplete') === 'true';
      const op = (kind: 'bind' | 'unbind', fails = false) => ({ kind, pollsLeft: this.bindingPolls, fails });
      if (parts[5] === 'last_operation' && req.method === 'GET') {
        if (!binding?.operation) return send(binding ? 200 : 410, binding ? { state: 'succeeded' } : {});
        if (--binding.operation.pollsLeft > 0) return send(200, { state: 'in progress', description: `${binding.operation.pollsLeft} polls to go` });
        const { kind, fails } = binding.operation;
        delete binding.operation;
        if (kind === 'unbind') {
          this.bindings.delete(bindingId);
          return send(410, {});
        }
        if (fails) this.bindings.delete(bindingId);
        return send(200, fails ? { state: 'failed', description: 'the broker could not make the binding' } : { state: 'succeeded' });
      }
      if (parts.length > 5) return send(404, {});
      if (req.method === 'GET') return binding && !binding.operation ? send(200, { credentials: binding.credentials }) : send(404, {});
      if (req.method === 'PUT') {
        if (!instance) return send(400, { description: 'no such instance' });
        const credentials = { uri: `tp://${bindingId}:secret-${bindingId.slice(0, 8)}@tp.example.com/${id}`, username: bindingId, password: `secret-${bindingId.slice(0, 8)}` };
        const fails = Boolean((body.parameters as Record<string, unknown> | undefined)?.fail);
        this.bindings.set(bindingId, { instance_id: id, credentials, ...(async ? { operation: op('bind', fails) } : {}) });
        return async ? send(202, { operation: `bind-${bindingId}` }) : send(201, { credentials });
      }
      if (req.method === 'DELETE') {
        if (!binding) return send(410, {});
        if (!async) {
          this.bindings.delete(bindingId);
          return send(200, {});
        }
        binding.operation = op('unbind');
        return send(202, { operation: `unbind-${bindingId}` });
      }
    }
    return send(404, {});
  }
}

const CATALOG = {
  services: [
    {
      id: THIRD_PARTY.serviceId,
      name: 'tp-db',
      description: 'A third-party database',
      bindable: true,
      bindings_retrievable: true,
      tags: ['third-party'],
      plans: [
        { id: THIRD_PARTY.syncPlanId, name: 'small', description: 'Provisioned at once' },
        { id: THIRD_PARTY.asyncPlanId, name: 'slow', description: 'Provisioned asynchronously' },
      ],
    },
  ],
};

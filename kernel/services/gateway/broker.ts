// The broker's logic behind the OSB routes: which node takes a new instance, where an
// existing one lives, and what each answer is. Nodes are the truth about instances: each
// knows its own and answers `services.<label>.find`, and keeps the fingerprint of the request
// that made it. A gateway remembers what it learnt in `gateway.json` (which node, and its own
// asynchronous operations), so a restarted gateway loses nothing, and any gateway of the
// service can bind, unbind or deprovision an instance another one provisioned.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { BusError, replies, subjects, type Bus, type ServiceNodeOp, type ServiceNodeReply, type ServiceNodeRequest } from '../../bus/mod.ts';
import type { Logger } from '../../component/mod.ts';
import { fingerprint } from '../fingerprint.ts';
import { readJsonFile, SerialQueue, writeJsonFile } from '../json-file.ts';
import type { GatewayConfig, GatewayPlan } from './config.ts';
import { NodeTable, rankNodes } from './node-table.ts';
import { osbError, type BindBody, type OsbReply, type ProvisionBody, type UpdateBody } from './osb.ts';

const instanceEntry = z
  .object({
    node_id: z.string().optional(),
    plan_id: z.string(),
    fingerprint: z.string(),
    state: z.enum(['in progress', 'succeeded', 'failed']),
    operation: z.string().optional(),
    description: z.string().optional(),
    updated_at: z.string(),
  })
  .strict();
type InstanceEntry = z.infer<typeof instanceEntry>;

const gatewayState = z.object({ version: z.literal(1), instances: z.record(instanceEntry) }).strict();
type GatewayState = z.infer<typeof gatewayState>;

export interface BrokerOptions {
  config: GatewayConfig;
  bus: Bus;
  log: Logger;
  baseDir: string;
  clock?: () => number;
}

export class Broker {
  readonly nodes: NodeTable;
  private state: GatewayState = { version: 1, instances: {} };
  private readonly writes = new SerialQueue();
  private readonly background = new Set<Promise<void>>();
  private readonly clock: () => number;

  constructor(private readonly opts: BrokerOptions) {
    this.nodes = new NodeTable(opts.config.announce_interval_s * 1000);
    this.clock = opts.clock ?? Date.now;
  }

  get stateFile(): string {
    return join(this.opts.baseDir, 'gateway.json');
  }

  async load(): Promise<void> {
    this.state = await readJsonFile(this.stateFile, gatewayState, { version: 1, instances: {} });
    // Operations cut short by a restart are picked up again: the nodes are idempotent.
    for (const [id, entry] of Object.entries(this.state.instances)) {
      const plan = this.planById(entry.plan_id);
      if (entry.state === 'in progress' && plan) this.track(this.runProvision(id, entry, plan));
    }
  }

  /** Waits for background operations (drain). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.background]);
  }

  varz(): Record<string, unknown> {
    const now = this.clock();
    return {
      nodes: this.nodes.alive(now).map((n) => ({ node_id: n.node_id, available: n.available, plan_capacity: n.plan_capacity ?? null, heard_ms_ago: now - n.heard_at })),
      instances_known: Object.keys(this.state.instances).length,
      operations_in_progress: this.background.size,
    };
  }

  // ---- the OSB operations --------------------------------------------------------------

  async provision(id: string, body: ProvisionBody, acceptsIncomplete: boolean): Promise<OsbReply> {
    const plan = this.planOf(body.service_id, body.plan_id);
    if ('status' in plan) return plan;
    if (plan.async && !acceptsIncomplete) {
      return osbError(422, 'AsyncRequired', `plan ${plan.name} is provisioned asynchronously: send accepts_incomplete=true and poll last_operation`);
    }
    const fp = fingerprint({ service_id: body.service_id, plan_id: body.plan_id, organization_guid: body.organization_guid, space_guid: body.space_guid, parameters: body.parameters ?? {} });
    const known = await this.lookup(id);
    if (known) {
      if (known.fingerprint !== fp) return osbError(409, 'Conflict', `instance ${id} already exists with other details`);
      if (known.state === 'in progress') return { status: 202, body: { operation: known.operation } };
      if (known.state === 'succeeded') return { status: 200, body: {} };
      // A failed provision under the same id is tried again.
    }
    const entry: InstanceEntry = { plan_id: plan.id, fingerprint: fp, state: 'in progress', updated_at: new Date().toISOString() };
    if (plan.async) {
      entry.operation = `provision-${randomUUID()}`;
      await this.remember(id, entry);
      this.track(this.runProvision(id, entry, plan));
      return { status: 202, body: { operation: entry.operation } };
    }
    const outcome = await this.placeInstance(id, entry, plan);
    if (!outcome.ok) {
      await this.forget(id);
      return outcome.reply;
    }
    return { status: outcome.existed ? 200 : 201, body: {} };
  }

  async lastOperation(id: string): Promise<OsbReply> {
    const known = await this.lookup(id);
    if (!known) return osbError(410, 'Gone', `instance ${id} does not exist`);
    return { status: 200, body: { state: known.state, ...(known.description ? { description: known.description } : {}) } };
  }

  async deprovision(id: string): Promise<OsbReply> {
    const known = await this.lookup(id);
    if (!known) return { status: 410, body: {} };
    if (known.state === 'in progress') return osbError(422, 'ConcurrencyError', `instance ${id} is still being provisioned`);
    if (known.node_id === undefined) {
      await this.forget(id); // a failed provision: nothing on any node
      return { status: 200, body: {} };
    }
    const reply = await this.ask(known.node_id, 'unprovision', { instance_id: id });
    if (reply.ok || reply.code === 'not_found') {
      await this.forget(id);
      return reply.ok ? { status: 200, body: {} } : { status: 410, body: {} };
    }
    return this.failure('deprovisioning', id, reply);
  }

  /** A plan change (OSB PATCH), synchronous: the node holding the instance applies the new plan's limits. */
  async update(id: string, body: UpdateBody): Promise<OsbReply> {
    const { service } = this.opts.config;
    const plan = body.plan_id === undefined ? this.refuseService(body.service_id) : this.planOf(body.service_id, body.plan_id);
    if (plan && 'status' in plan) return plan;
    const known = await this.lookup(id);
    // OSB leaves an unknown instance's update unspecified; 404 like bind, as brokers do.
    if (!known?.node_id) return osbError(404, 'NotFound', `instance ${id} does not exist`);
    if (known.state === 'in progress') return osbError(422, 'ConcurrencyError', `instance ${id} is still being provisioned`);
    if (!plan || plan.id === known.plan_id) return { status: 200, body: {} };
    if (!service.plan_updateable) return osbError(422, 'PlanChangeNotSupported', `service ${service.name ?? this.opts.config.label} does not support changing an instance's plan`);
    const reply = await this.ask(known.node_id, 'update', { instance_id: id, plan: plan.name });
    if (reply.ok) {
      await this.remember(id, { ...known, plan_id: plan.id, updated_at: new Date().toISOString() });
      return { status: 200, body: {} };
    }
    if (reply.code === 'not_found') {
      await this.forget(id);
      return osbError(404, 'NotFound', `instance ${id} does not exist`);
    }
    // OSB: 422 for a change that is not supported or cannot be made in the instance's state.
    if (reply.code === 'no_capacity') return osbError(422, 'NoCapacity', `updating instance ${id}: ${reply.error ?? 'no capacity'}`);
    if (reply.code === 'invalid') return osbError(422, 'PlanChangeNotSupported', `updating instance ${id}: ${reply.error ?? 'the node refused'}`);
    return this.failure('updating', id, reply);
  }

  async bind(id: string, bindingId: string, body: BindBody): Promise<OsbReply> {
    const plan = this.planOf(body.service_id, body.plan_id);
    if ('status' in plan) return plan;
    const known = await this.lookup(id);
    if (!known?.node_id) return osbError(404, 'NotFound', `instance ${id} does not exist`);
    if (known.state === 'in progress') return osbError(422, 'ConcurrencyError', `instance ${id} is still being provisioned`);
    const fp = fingerprint({ service_id: body.service_id, plan_id: body.plan_id, app_guid: body.app_guid, bind_resource: body.bind_resource, parameters: body.parameters ?? {} });
    const reply = await this.ask(known.node_id, 'bind', { instance_id: id, binding_id: bindingId, fingerprint: fp });
    if (reply.ok) return { status: reply.existed ? 200 : 201, body: { credentials: reply.credentials ?? {} } };
    if (reply.code === 'conflict') return osbError(409, 'Conflict', `binding ${bindingId} already exists with other details`);
    if (reply.code === 'not_found') {
      await this.forget(id);
      return osbError(404, 'NotFound', `instance ${id} does not exist`);
    }
    return this.failure('binding', id, reply);
  }

  async unbind(id: string, bindingId: string): Promise<OsbReply> {
    const known = await this.lookup(id);
    if (!known?.node_id) return { status: 410, body: {} };
    const reply = await this.ask(known.node_id, 'unbind', { instance_id: id, binding_id: bindingId });
    if (reply.ok) return { status: 200, body: {} };
    if (reply.code === 'not_found') return { status: 410, body: {} };
    return this.failure('unbinding', id, reply);
  }

  // ---- placement -----------------------------------------------------------------------

  /** Provisions on the node with most room for the plan; a node that filled up meanwhile passes to the next. */
  private async placeInstance(id: string, entry: InstanceEntry, plan: GatewayPlan): Promise<{ ok: true; existed: boolean } | { ok: false; reply: OsbReply }> {
    const label = this.opts.config.label;
    const candidates = entry.node_id ? [entry.node_id] : rankNodes(this.nodes.alive(this.clock()), plan.name, this.clock()).map((n) => n.node_id);
    let last: ServiceNodeReply | undefined;
    for (const nodeId of candidates) {
      const reply = await this.ask(nodeId, 'provision', { instance_id: id, plan: plan.name, fingerprint: entry.fingerprint });
      if (reply.ok) {
        this.nodes.took(nodeId, plan.name);
        await this.remember(id, { ...entry, node_id: nodeId, state: 'succeeded', description: undefined, updated_at: new Date().toISOString() });
        return { ok: true, existed: reply.existed ?? false };
      }
      last = reply;
      if (reply.code === 'conflict') return { ok: false, reply: osbError(409, 'Conflict', `instance ${id} already exists with other details`) };
      if (reply.code !== 'no_capacity' && reply.code !== undefined) return { ok: false, reply: this.failure('provisioning', id, reply) };
      // no capacity, or no answer: the next node
    }
    const why = last?.error ? ` (last refusal: ${last.error})` : '';
    return { ok: false, reply: osbError(422, 'NoCapacity', `no node of service ${label} has capacity for plan ${plan.name}${why}`) };
  }

  private async runProvision(id: string, entry: InstanceEntry, plan: GatewayPlan): Promise<void> {
    const outcome = await this.placeInstance(id, entry, plan);
    if (outcome.ok) {
      this.opts.log.info({ instance_id: id, operation: entry.operation }, 'asynchronous provision succeeded');
      return;
    }
    const description = String(outcome.reply.body.description ?? 'provisioning failed');
    this.opts.log.warn({ instance_id: id, operation: entry.operation, description }, 'asynchronous provision failed');
    await this.remember(id, { ...entry, state: 'failed', description, updated_at: new Date().toISOString() });
  }

  private track(work: Promise<void>): void {
    const p = work.catch((err: unknown) => this.opts.log.error({ err: (err as Error).message }, 'background operation failed')).finally(() => this.background.delete(p));
    this.background.add(p);
  }

  // ---- where instances live ------------------------------------------------------------

  /** What this gateway knows of an instance; if nothing, what the node holding it says. */
  private async lookup(id: string): Promise<InstanceEntry | undefined> {
    const local = this.state.instances[id];
    if (local) return local;
    const found = await this.opts.bus.requestMany(subjects.serviceNodeFind(this.opts.config.label), { instance_id: id }, replies.serviceNodeFind, {
      windowMs: this.opts.config.find_window_ms,
      max: 1,
    });
    const hit = found[0];
    if (!hit) return undefined;
    const plan = this.opts.config.plans.find((p) => p.name === hit.plan);
    const entry: InstanceEntry = { node_id: hit.node_id, plan_id: plan?.id ?? hit.plan, fingerprint: hit.fingerprint ?? '', state: 'succeeded', updated_at: new Date().toISOString() };
    await this.remember(id, entry);
    return entry;
  }

  private remember(id: string, entry: InstanceEntry): Promise<void> {
    return this.writes.run(async () => {
      this.state.instances[id] = entry;
      await writeJsonFile(this.stateFile, this.state);
    });
  }

  private forget(id: string): Promise<void> {
    return this.writes.run(async () => {
      delete this.state.instances[id];
      await writeJsonFile(this.stateFile, this.state);
    });
  }

  /** One request to one node; no answer becomes a refusal without a code. */
  private async ask(nodeId: string, op: ServiceNodeOp, req: ServiceNodeRequest): Promise<ServiceNodeReply> {
    try {
      return await this.opts.bus.request(subjects.serviceNode(this.opts.config.label, op, nodeId), req, replies.serviceNode, { timeoutMs: this.opts.config.node_timeout_s * 1000 });
    } catch (err) {
      if (err instanceof BusError && err.code === 'no_responders') this.nodes.forget(nodeId);
      return { ok: false, error: `node ${nodeId} did not answer: ${(err as Error).message}` };
    }
  }

  private failure(doing: string, id: string, reply: ServiceNodeReply): OsbReply {
    const status = reply.code === 'invalid' ? 400 : reply.code === undefined ? 502 : 500;
    return osbError(status, status === 400 ? 'BadRequest' : 'ServiceBrokerError', `${doing} instance ${id}: ${reply.error ?? 'the node refused'}`);
  }

  private refuseService(serviceId: string): OsbReply | undefined {
    if (serviceId === this.opts.config.service.id) return undefined;
    return osbError(400, 'BadRequest', `service_id ${serviceId} is not a service of this broker (it offers ${this.opts.config.service.id})`);
  }

  private planOf(serviceId: string, planId: string): GatewayPlan | OsbReply {
    return this.refuseService(serviceId) ?? this.planById(planId) ?? osbError(400, 'BadRequest', `plan_id ${planId} is not a plan of service ${this.opts.config.service.id}`);
  }

  private planById(planId: string): GatewayPlan | undefined {
    return this.opts.config.plans.find((p) => p.id === planId);
  }
}

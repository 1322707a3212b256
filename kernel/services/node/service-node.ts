// The service node framework: one node of one service on the bus. It announces what it can
// still take, answers provision/bind/unbind/unprovision/update addressed to it, answers `find` for
// the instances it holds (so any gateway can locate any instance), and keeps its units in
// `<base_dir>/node.json` so a restarted node brings every unit back. Operations run one at a
// time: capacity, ports and the state file never race. The backend does the unit's work.
import { join } from 'node:path';
import { replies, subjects, type Bus, type ServiceNodeReply, type ServiceNodeRequest } from '../../bus/mod.ts';
import type { Logger } from '../../component/mod.ts';
import { ServiceError } from '../errors.ts';
import { UNIT_ID } from '../fingerprint.ts';
import { readJsonFile, SerialQueue, writeJsonFile } from '../json-file.ts';
import { capacityOf, refuseCapacity, type CapacityView } from './capacity.ts';
import type { NodeConfig, PlanLimits } from './config.ts';
import { nodeState, type NodeState, type ServiceBackend, type UnitRecord } from './types.ts';

type Op = 'provision' | 'bind' | 'unbind' | 'unprovision' | 'update';
const OPS: Op[] = ['provision', 'bind', 'unbind', 'unprovision', 'update'];

export interface ServiceNodeOptions {
  config: NodeConfig;
  nodeId: string;
  baseDir: string;
  bus: Bus;
  log: Logger;
}

export class ServiceNode {
  private state: NodeState = { version: 1, units: {} };
  private readonly queue = new SerialQueue();
  private readonly unsubscribe: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly counts: Record<Op, { ok: number; refused: number }> = Object.fromEntries(OPS.map((op) => [op, { ok: 0, refused: 0 }])) as Record<Op, { ok: number; refused: number }>;

  constructor(
    private readonly opts: ServiceNodeOptions,
    private readonly backend: ServiceBackend,
  ) {}

  get stateFile(): string {
    return join(this.opts.baseDir, 'node.json');
  }

  units(): Iterable<UnitRecord> {
    return Object.values(this.state.units);
  }

  capacity(): CapacityView {
    return capacityOf(this.opts.config.plans, this.opts.config.capacity, Object.values(this.state.units).map((u) => u.plan));
  }

  async start(): Promise<void> {
    const { bus, config, nodeId, log } = this.opts;
    this.state = await readJsonFile(this.stateFile, nodeState, { version: 1, units: {} });
    await this.backend.restore(Object.values(this.state.units));
    for (const op of OPS) {
      this.unsubscribe.push(
        // The promise goes back to the bus, which logs a failure to answer instead of crashing.
        bus.subscribe(subjects.serviceNode(config.label, op, nodeId), (msg, ctx) =>
          this.answer(op, msg).then((reply) => {
            if (ctx.reply) bus.respond(ctx.reply, replies.serviceNode, reply);
          }),
        ),
      );
    }
    this.unsubscribe.push(
      bus.subscribe(subjects.serviceNodeDiscover(config.label), () => this.announce()),
      bus.subscribe(subjects.serviceNodeFind(config.label), (msg, ctx) => {
        const unit = this.state.units[msg.instance_id];
        if (!unit || !ctx.reply) return;
        bus.respond(ctx.reply, replies.serviceNodeFind, { node_id: nodeId, instance_id: unit.instance_id, plan: unit.plan, fingerprint: unit.fingerprint });
      }),
    );
    bus.onReconnected(() => this.announce());
    this.announce();
    this.timer = setInterval(() => this.announce(), config.announce_interval_s * 1000);
    log.info({ node_id: nodeId, label: config.label, units: Object.keys(this.state.units).length, ...this.capacity() }, 'service node ready');
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const u of this.unsubscribe.splice(0)) u();
    // Operations in flight finish first, so the state file matches what the backend did.
    await this.queue.run(async () => undefined);
    await this.backend.stop();
  }

  announce(): void {
    const { bus, config, nodeId, log } = this.opts;
    const view = this.capacity();
    try {
      bus.publish(subjects.serviceNodeAnnounce(config.label), {
        node_id: nodeId,
        plans: Object.keys(config.plans),
        available_capacity: view.available,
        plan_capacity: view.per_plan,
        interval_s: config.announce_interval_s,
      });
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'announcing the node failed');
    }
  }

  varz(): Record<string, unknown> {
    return {
      node_id: this.opts.nodeId,
      label: this.opts.config.label,
      capacity: { total: this.opts.config.capacity, ...this.capacity() },
      units: Object.values(this.state.units).map((u) => ({ instance_id: u.instance_id, plan: u.plan, bindings: Object.keys(u.bindings).length })),
      operations: this.counts,
      ...this.backend.varz?.(),
    };
  }

  /** One request, one reply: a refusal is a sentence with a code, never a crash. */
  private async answer(op: Op, req: ServiceNodeRequest): Promise<ServiceNodeReply> {
    const { nodeId, log } = this.opts;
    try {
      const reply = await this.queue.run(() => this[op](req));
      this.counts[op].ok++;
      log.info({ op, instance_id: req.instance_id, binding_id: req.binding_id, existed: reply.existed ?? false }, `${op} done`);
      return { ...reply, ok: true, node_id: nodeId };
    } catch (err) {
      this.counts[op].refused++;
      const code = err instanceof ServiceError ? err.code : 'failed';
      const error = err instanceof ServiceError ? err.message : `${gerund[op]} ${req.instance_id} failed: ${(err as Error).message}`;
      (code === 'failed' ? log.error : log.warn).call(log, { op, instance_id: req.instance_id, binding_id: req.binding_id, code, err: error }, `${op} refused`);
      return { ok: false, code, error, node_id: nodeId };
    }
  }

  private async provision(req: ServiceNodeRequest): Promise<Omit<ServiceNodeReply, 'ok'>> {
    const { nodeId } = this.opts;
    const id = checkId('instance_id', req.instance_id);
    const existing = this.state.units[id];
    if (existing) {
      if (existing.fingerprint !== req.fingerprint || existing.plan !== req.plan) {
        throw new ServiceError('conflict', `instance ${id} already exists on node ${nodeId} with other details`);
      }
      return { existed: true, credentials: {} };
    }
    const planName = req.plan ?? 'default';
    const plan = this.plan(planName);
    const refusal = refuseCapacity(nodeId, planName, plan, this.capacity());
    if (refusal) throw new ServiceError('no_capacity', refusal);
    const data = await this.backend.provision(id, plan);
    this.state.units[id] = { instance_id: id, plan: planName, fingerprint: req.fingerprint, created_at: new Date().toISOString(), data, bindings: {} };
    await this.save();
    this.announce();
    return { credentials: {} };
  }

  private async bind(req: ServiceNodeRequest): Promise<Omit<ServiceNodeReply, 'ok'>> {
    const unit = this.unit(req.instance_id);
    const bindingId = checkId('binding_id', req.binding_id);
    const existing = unit.bindings[bindingId];
    if (existing) {
      if (existing.fingerprint !== req.fingerprint) throw new ServiceError('conflict', `binding ${bindingId} already exists with other details`);
      return { existed: true, credentials: existing.credentials };
    }
    const credentials = await this.backend.bind(unit, bindingId);
    unit.bindings[bindingId] = { fingerprint: req.fingerprint, credentials, created_at: new Date().toISOString() };
    await this.save();
    return { credentials };
  }

  private async unbind(req: ServiceNodeRequest): Promise<Omit<ServiceNodeReply, 'ok'>> {
    const unit = this.unit(req.instance_id);
    const bindingId = checkId('binding_id', req.binding_id);
    if (!unit.bindings[bindingId]) throw new ServiceError('not_found', `instance ${unit.instance_id} has no binding ${bindingId}`);
    await this.backend.unbind(unit, bindingId);
    delete unit.bindings[bindingId];
    await this.save();
    return {};
  }

  private async unprovision(req: ServiceNodeRequest): Promise<Omit<ServiceNodeReply, 'ok'>> {
    const unit = this.unit(req.instance_id);
    await this.backend.unprovision(unit);
    delete this.state.units[unit.instance_id];
    await this.save();
    this.announce();
    return {};
  }

  /** A plan change: the backend applies the new plan's limits to the running unit, then the node records it. */
  private async update(req: ServiceNodeRequest): Promise<Omit<ServiceNodeReply, 'ok'>> {
    const { config, nodeId } = this.opts;
    const unit = this.unit(req.instance_id);
    const planName = req.plan ?? unit.plan;
    if (planName === unit.plan) return { existed: true };
    const plan = this.plan(planName);
    if (!this.backend.update) throw new ServiceError('invalid', `the ${config.label} node cannot change an instance's plan`);
    const refusal = refuseCapacity(nodeId, planName, plan, capacityOf(config.plans, config.capacity, Object.values(this.state.units).filter((u) => u !== unit).map((u) => u.plan)));
    if (refusal) throw new ServiceError('no_capacity', refusal);
    await this.backend.update(unit, plan);
    unit.plan = planName;
    await this.save();
    this.announce();
    return {};
  }

  private plan(name: string): PlanLimits {
    const { config, nodeId } = this.opts;
    const plan = config.plans[name];
    if (!plan) throw new ServiceError('invalid', `node ${nodeId} has no plan ${name} (it offers ${Object.keys(config.plans).join(', ')})`);
    return plan;
  }

  private unit(instanceId: string): UnitRecord {
    const unit = this.state.units[instanceId];
    if (!unit) throw new ServiceError('not_found', `node ${this.opts.nodeId} holds no instance ${instanceId}`);
    return unit;
  }

  private save(): Promise<void> {
    return writeJsonFile(this.stateFile, this.state);
  }
}

const gerund: Record<Op, string> = { provision: 'Provisioning', bind: 'Binding', unbind: 'Unbinding', unprovision: 'Unprovisioning', update: 'Updating' };

function checkId(key: string, value: string | undefined): string {
  if (value === undefined) throw new ServiceError('invalid', `${key} is required`);
  if (!UNIT_ID.test(value)) throw new ServiceError('invalid', `${key} "${value.slice(0, 140)}" must be letters, digits, ".", "-" or "_" (at most 128)`);
  return value;
}

// What the controller does at a broker on behalf of service instances and bindings: provision
// (asynchronous when the broker answers 202, then polled in the background until it succeeds
// or fails), update (a plan or parameters change, polled the same way), deprovision, bind and
// unbind (either may be asynchronous too: a binding's credentials are fetched once its
// operation succeeded). The database says which operation is in progress, so a restarted
// controller resumes polling what it left (an asynchronous update's new plan waits in
// `pending_plan_guid`). Broker errors become API errors:
// a refusal the user can act on (4xx) is a 422 with the broker's description; a broker that
// cannot be reached or answers nonsense is a 502.
import type { Logger } from 'pino';
import type { CcConfig } from '../config.ts';
import type { ServiceBindingRecord, ServiceBrokerRecord, ServiceInstanceRecord, ServiceOfferingRecord, ServicePlanRecord, Store } from '../db/mod.ts';
import { type ApiError, errors } from '../errors.ts';
import { BrokerError, type Bound, type BrokerClient, type LastOperation, type OsbContext, type Removed } from './broker-client.ts';
import type { CredentialBox } from './credential-box.ts';
import type { BrokerRegistry } from './brokers.ts';

/** A managed instance's plan, offering and broker: what every broker call needs. */
export interface PlanChain {
  plan: ServicePlanRecord;
  offering: ServiceOfferingRecord;
  broker: ServiceBrokerRecord;
}

export function brokerFailure(err: unknown): ApiError | unknown {
  if (!(err instanceof BrokerError)) return err;
  return err.code === 'rejected' ? errors.unprocessable(err.message) : errors.brokerBadResponse(err.message);
}

/** Why an instance of `from` cannot move to plan `to` (a sentence), or undefined when it can. */
export function refusePlanChange(from: PlanChain, to: PlanChain): string | undefined {
  if (to.offering.guid !== from.offering.guid) return `plan ${to.plan.name} is a plan of service offering ${to.offering.name}, not of ${from.offering.name}`;
  if (to.plan.guid !== from.plan.guid && !from.offering.plan_updateable) return `service offering ${from.offering.name} does not support changing plans (its broker says plan_updateable: false)`;
  return undefined;
}

export class ServiceOperations {
  private readonly polling = new Set<string>();
  private readonly background = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(private readonly d: { store: Store; config: CcConfig; log: Logger; brokers: BrokerRegistry; box: CredentialBox }) {}

  async chain(planGuid: string): Promise<PlanChain | undefined> {
    const plan = await this.d.store.servicePlans.get(planGuid);
    const offering = plan && (await this.d.store.serviceOfferings.get(plan.offering_guid));
    const broker = plan && (await this.d.store.serviceBrokers.get(plan.broker_guid));
    return plan && offering && broker ? { plan, offering, broker } : undefined;
  }

  private ids(c: PlanChain) {
    return { service_id: c.offering.broker_id, plan_id: c.plan.broker_id };
  }

  private client(c: PlanChain): BrokerClient {
    return this.d.brokers.client(c.broker);
  }

  /** Provisions a stored instance (state `create in progress`); the record as it is after the broker answered. */
  async provision(instance: ServiceInstanceRecord, c: PlanChain, context: OsbContext, parameters?: Record<string, unknown>): Promise<ServiceInstanceRecord> {
    let answer;
    try {
      answer = await this.client(c).provision(instance.guid, { ...this.ids(c), context, ...(parameters ? { parameters } : {}) });
    } catch (err) {
      throw brokerFailure(err);
    }
    const dashboard = answer.dashboard_url ?? null;
    if (!answer.async) {
      return (await this.d.store.serviceInstances.update(instance.guid, { operation_state: 'succeeded', operation_description: null, dashboard_url: dashboard }))!;
    }
    const updated = (await this.d.store.serviceInstances.update(instance.guid, { broker_operation: answer.operation ?? null, dashboard_url: dashboard }))!;
    this.poll(updated);
    return updated;
  }

  /**
   * Updates at the broker (plan `to`, parameters): the record with the new plan when the broker
   * answered at once, or `update in progress` (still the old plan) while it is polled. A refusal
   * throws and leaves the record as it was.
   */
  async update(instance: ServiceInstanceRecord, from: PlanChain, to: PlanChain, context: OsbContext, parameters?: Record<string, unknown>): Promise<ServiceInstanceRecord> {
    let answer;
    try {
      answer = await this.client(from).update(instance.guid, {
        service_id: from.offering.broker_id,
        ...(to.plan.guid !== from.plan.guid ? { plan_id: to.plan.broker_id } : {}),
        context,
        ...(parameters ? { parameters } : {}),
        previous_values: this.ids(from),
      });
    } catch (err) {
      throw brokerFailure(err);
    }
    const store = this.d.store.serviceInstances;
    const dashboard = answer.dashboard_url ? { dashboard_url: answer.dashboard_url } : {};
    if (!answer.async) {
      return (await store.update(instance.guid, { plan_guid: to.plan.guid, operation_type: 'update', operation_state: 'succeeded', operation_description: null, ...dashboard }))!;
    }
    const updated = (await store.update(instance.guid, {
      operation_type: 'update',
      operation_state: 'in progress',
      operation_description: null,
      broker_operation: answer.operation ?? null,
      pending_plan_guid: to.plan.guid,
      ...dashboard,
    }))!;
    this.poll(updated);
    return updated;
  }

  /** Deprovisions at the broker: 'done' (the record may go) or the record now `delete in progress`. */
  async deprovision(instance: ServiceInstanceRecord, c: PlanChain): Promise<'done' | ServiceInstanceRecord> {
    let answer;
    try {
      answer = await this.client(c).deprovision(instance.guid, this.ids(c));
    } catch (err) {
      throw brokerFailure(err);
    }
    if (answer === 'done' || answer === 'gone') return 'done';
    const updated = (await this.d.store.serviceInstances.update(instance.guid, {
      operation_type: 'delete',
      operation_state: 'in progress',
      operation_description: null,
      broker_operation: answer.operation ?? null,
    }))!;
    this.poll(updated);
    return updated;
  }

  /** Binds at the broker: its credentials when made at once, or accepted (to poll with `pollBinding`). */
  async bind(instance: ServiceInstanceRecord, c: PlanChain, bindingGuid: string, context: OsbContext, appGuid?: string, parameters?: Record<string, unknown>): Promise<Bound> {
    try {
      return await this.client(c).bind(instance.guid, bindingGuid, { ...this.ids(c), context, ...(appGuid ? { app_guid: appGuid } : {}), ...(parameters ? { parameters } : {}) });
    } catch (err) {
      throw brokerFailure(err);
    }
  }

  /**
   * Unbinds at the broker: 'done' (the record may go) or the record now `delete in progress`,
   * polled until the broker says it is gone.
   */
  async unbind(instance: ServiceInstanceRecord, c: PlanChain, binding: ServiceBindingRecord): Promise<'done' | ServiceBindingRecord> {
    let answer: Removed;
    try {
      answer = await this.client(c).unbind(instance.guid, binding.guid, this.ids(c));
    } catch (err) {
      throw brokerFailure(err);
    }
    if (answer === 'done' || answer === 'gone') return 'done';
    const updated = await this.d.store.serviceBindings.update(binding.guid, {
      operation_type: 'delete',
      operation_state: 'in progress',
      operation_description: null,
      broker_operation: answer.operation ?? null,
    });
    // No record (a binding being undone before it was kept): nothing here to wait for.
    if (!updated) return 'done';
    this.pollBinding(updated);
    return updated;
  }

  /** Resumes polling every operation left in progress (at start). */
  async resume(): Promise<number> {
    const instances = await this.d.store.serviceInstances.list({ type: 'managed', operation_state: 'in progress' });
    for (const i of instances) this.poll(i);
    const bindings = await this.d.store.serviceBindings.list({ operation_state: 'in progress' });
    for (const b of bindings) this.pollBinding(b);
    return instances.length + bindings.length;
  }

  /** Polls an instance's last_operation in the background until the operation ends. */
  poll(instance: ServiceInstanceRecord): void {
    this.inBackground(`instance ${instance.guid}`, () => this.pollUntilDone(instance));
  }

  /** Polls a binding's last_operation in the background until the operation ends. */
  pollBinding(binding: ServiceBindingRecord): void {
    this.inBackground(`binding ${binding.guid}`, () => this.pollBindingUntilDone(binding));
  }

  private inBackground(key: string, fn: () => Promise<void>): void {
    if (this.polling.has(key)) return;
    this.polling.add(key);
    const p = fn()
      .catch((err: unknown) => this.d.log.error({ polling: key, err: (err as Error).message }, 'polling a service operation failed'))
      .finally(() => {
        this.polling.delete(key);
        this.background.delete(p);
      });
    this.background.add(p);
  }

  /**
   * Asks `ask` every poll interval while the record (re-read each time) is still in progress,
   * until the broker says the operation ended (then `ended`) or the operation timeout passes
   * (then `fail`); a broker that cannot be asked is asked again.
   */
  private async untilEnded<R extends { guid: string; operation_state: string; updated_at: string }>(
    start: R,
    load: () => Promise<R | undefined>,
    ask: (now: R) => Promise<LastOperation>,
    fail: (now: R, description: string) => Promise<unknown>,
    ended: (now: R, last: Exclude<LastOperation, { state: 'in progress' }>) => Promise<void>,
  ): Promise<void> {
    const cfg = this.d.config.service_brokers;
    const deadline = Date.parse(start.updated_at) + cfg.operation_timeout_s * 1000;
    while (!this.stopped) {
      await new Promise((r) => setTimeout(r, cfg.poll_interval_s * 1000));
      if (this.stopped) return;
      const now = await load();
      if (!now || now.operation_state !== 'in progress') return;
      if (Date.now() > deadline) {
        await fail(now, `the broker did not finish within ${cfg.operation_timeout_s} s`);
        return;
      }
      let last: LastOperation;
      try {
        last = await ask(now);
      } catch (err) {
        this.d.log.warn({ guid: now.guid, err: (err as Error).message }, 'polling last_operation failed; trying again');
        continue;
      }
      if (last.state === 'in progress') continue;
      await ended(now, last);
      return;
    }
  }

  private async pollUntilDone(start: ServiceInstanceRecord): Promise<void> {
    const c = start.plan_guid ? await this.chain(start.plan_guid) : undefined;
    const store = this.d.store.serviceInstances;
    if (!c) {
      await store.update(start.guid, { operation_state: 'failed', operation_description: 'its service plan is gone' });
      return;
    }
    await this.untilEnded(
      start,
      () => store.get(start.guid),
      async (now) => goneOnlyForDeletes(now.operation_type, await this.client(c).lastOperation(now.guid, { ...this.ids(c), operation: now.broker_operation })),
      (now, description) => store.update(now.guid, { operation_state: 'failed', operation_description: description }),
      async (now, last) => {
        if (now.operation_type === 'delete' && (last.state === 'succeeded' || last.state === 'gone')) {
          await store.delete({ guid: now.guid });
          this.d.log.info({ instance: now.guid }, 'asynchronous deprovision succeeded');
          return;
        }
        const state = last.state === 'gone' ? 'failed' : last.state;
        const description = last.state === 'gone' ? 'the broker no longer knows this instance' : (last.description ?? null);
        // An update's new plan is the instance's only once the broker says it succeeded.
        const plan = now.operation_type === 'update' && state === 'succeeded' && now.pending_plan_guid ? { plan_guid: now.pending_plan_guid } : {};
        await store.update(now.guid, { operation_state: state, operation_description: description, broker_operation: null, pending_plan_guid: null, ...plan });
        this.d.log.info({ instance: now.guid, operation: now.operation_type, state }, 'asynchronous service operation ended');
      },
    );
  }

  /**
   * A binding's operation: a create that succeeded fetches the binding's credentials (sealed into
   * the record); a delete that succeeded (or that the broker no longer knows: 410) removes the record.
   */
  private async pollBindingUntilDone(start: ServiceBindingRecord): Promise<void> {
    const store = this.d.store.serviceBindings;
    const instance = await this.d.store.serviceInstances.get(start.instance_guid);
    const c = instance?.plan_guid ? await this.chain(instance.plan_guid) : undefined;
    if (!instance || !c) {
      await store.update(start.guid, { operation_state: 'failed', operation_description: 'its service instance or plan is gone' });
      return;
    }
    await this.untilEnded(
      start,
      () => store.get(start.guid),
      async (now) => goneOnlyForDeletes(now.operation_type, await this.client(c).bindingLastOperation(instance.guid, now.guid, { ...this.ids(c), operation: now.broker_operation })),
      (now, description) => store.update(now.guid, { operation_state: 'failed', operation_description: description }),
      async (now, last) => {
        if (now.operation_type === 'delete' && (last.state === 'succeeded' || last.state === 'gone')) {
          await store.delete({ guid: now.guid });
          this.d.log.info({ binding: now.guid }, 'asynchronous unbind succeeded');
          return;
        }
        if (last.state !== 'succeeded') {
          const description = last.state === 'gone' ? 'the broker no longer knows this binding' : (last.description ?? null);
          await store.update(now.guid, { operation_state: 'failed', operation_description: description, broker_operation: null });
          return;
        }
        let made;
        try {
          made = await this.client(c).fetchBinding(instance.guid, now.guid, this.ids(c));
        } catch (err) {
          await store.update(now.guid, { operation_state: 'failed', operation_description: (err as Error).message, broker_operation: null });
          return;
        }
        await store.update(now.guid, {
          credentials: this.d.box.seal(made.credentials),
          syslog_drain_url: made.syslog_drain_url ?? null,
          operation_state: 'succeeded',
          operation_description: null,
          broker_operation: null,
        });
        this.d.log.info({ binding: now.guid }, 'asynchronous bind succeeded');
      },
    );
  }

  /** Stops polling (the controller stops; another one, or the next start, resumes). */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.background]);
  }
}

/**
 * OSB: a 410 from last_operation means "gone" only while a delete is polled; polling a create or
 * an update, it is an invalid answer to keep polling through (until the operation timeout). One
 * that comes of it: a gateway that did not accept the operation, asked before the node holds
 * the instance, does not know it yet.
 */
function goneOnlyForDeletes(operation: string, last: LastOperation): LastOperation {
  return last.state === 'gone' && operation !== 'delete' ? { state: 'in progress', description: 'the broker does not know it yet (HTTP 410)' } : last;
}

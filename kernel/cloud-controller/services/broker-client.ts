// An Open Service Broker API 2.17 client: what the controller asks any broker (a gateway or a
// third party registered by URL). Every request carries Basic auth and X-Broker-API-Version;
// asynchronous operations are accepted (accepts_incomplete=true) and polled. A broker's answer
// is parsed here, once; errors are BrokerError sentences with the broker's own description,
// never its credentials.
import { z } from 'zod';

export const OSB_VERSION = '2.17';

export interface BrokerEndpoint {
  name: string;
  url: string;
  username: string;
  password: string;
}

/** Why a broker call failed: `unreachable`, `rejected` (a 4xx the user can act on), `failed` (5xx, bad answer). */
export class BrokerError extends Error {
  override name = 'BrokerError';
  constructor(
    readonly code: 'unreachable' | 'rejected' | 'failed',
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const errorBody = z.object({ error: z.string().optional(), description: z.string().optional() }).passthrough();
const asyncAnswer = z.object({ operation: z.string().optional(), dashboard_url: z.string().optional() }).passthrough();
const bindAnswer = z.object({ credentials: z.record(z.unknown()).default({}), syslog_drain_url: z.string().optional() }).passthrough();
const lastOperation = z.object({ state: z.enum(['in progress', 'succeeded', 'failed']), description: z.string().optional() }).passthrough();

export type Provisioned = { async: false; dashboard_url?: string } | { async: true; operation?: string; dashboard_url?: string };
export type LastOperation = z.output<typeof lastOperation> | { state: 'gone' };
export type Removed = 'done' | 'gone' | { async: true; operation?: string };
export type BindAnswer = z.output<typeof bindAnswer>;
/** A binding made at once (its credentials), or accepted to be polled (OSB 2.14 asynchronous bindings). */
export type Bound = ({ async: false } & BindAnswer) | { async: true; operation?: string };

export interface OsbContext {
  organization_guid: string;
  space_guid: string;
  instance_name?: string;
}

const bindingPath = (id: string, bindingId: string) => `/v2/service_instances/${id}/service_bindings/${bindingId}`;

export class BrokerClient {
  constructor(
    private readonly broker: BrokerEndpoint,
    private readonly timeoutMs: number,
  ) {}

  async catalog(): Promise<unknown> {
    const r = await this.call('GET', '/v2/catalog', 'Fetching the catalog');
    if (r.status !== 200) throw this.refusal('Fetching the catalog', r);
    return r.body;
  }

  async provision(id: string, req: { service_id: string; plan_id: string; context: OsbContext; parameters?: Record<string, unknown> }): Promise<Provisioned> {
    const doing = 'Provisioning';
    const body = { service_id: req.service_id, plan_id: req.plan_id, organization_guid: req.context.organization_guid, space_guid: req.context.space_guid, context: { platform: 'ingot', ...req.context }, ...(req.parameters ? { parameters: req.parameters } : {}) };
    const r = await this.call('PUT', `/v2/service_instances/${id}?accepts_incomplete=true`, doing, body);
    return this.accepted(doing, r);
  }

  /** A plan or parameters change (OSB PATCH); `previous_values` tells the broker what the instance was. */
  async update(
    id: string,
    req: { service_id: string; plan_id?: string; context: OsbContext; parameters?: Record<string, unknown>; previous_values: { service_id: string; plan_id: string } },
  ): Promise<Provisioned> {
    const doing = 'Updating';
    const body = { service_id: req.service_id, ...(req.plan_id ? { plan_id: req.plan_id } : {}), context: { platform: 'ingot', ...req.context }, ...(req.parameters ? { parameters: req.parameters } : {}), previous_values: req.previous_values };
    const r = await this.call('PATCH', `/v2/service_instances/${id}?accepts_incomplete=true`, doing, body);
    return this.accepted(doing, r);
  }

  async lastOperation(id: string, q: { service_id: string; plan_id: string; operation?: string | null }): Promise<LastOperation> {
    const doing = 'Polling the last operation';
    const r = await this.call('GET', `/v2/service_instances/${id}/last_operation?${this.query({ service_id: q.service_id, plan_id: q.plan_id, operation: q.operation ?? undefined })}`, doing);
    if (r.status === 410) return { state: 'gone' };
    if (r.status !== 200) throw this.refusal(doing, r);
    return this.parse(lastOperation, r.body, doing);
  }

  async deprovision(id: string, q: { service_id: string; plan_id: string }): Promise<Removed> {
    const doing = 'Deprovisioning';
    return this.removed(doing, await this.call('DELETE', `/v2/service_instances/${id}?${this.query({ ...q, accepts_incomplete: 'true' })}`, doing));
  }

  async bind(
    id: string,
    bindingId: string,
    req: { service_id: string; plan_id: string; app_guid?: string; context: OsbContext; parameters?: Record<string, unknown> },
  ): Promise<Bound> {
    const doing = 'Binding';
    const body = {
      service_id: req.service_id,
      plan_id: req.plan_id,
      ...(req.app_guid ? { app_guid: req.app_guid } : {}),
      bind_resource: req.app_guid ? { app_guid: req.app_guid } : { credential_client_id: bindingId },
      context: { platform: 'ingot', ...req.context },
      ...(req.parameters ? { parameters: req.parameters } : {}),
    };
    const r = await this.call('PUT', `${bindingPath(id, bindingId)}?accepts_incomplete=true`, doing, body);
    if (r.status === 200 || r.status === 201) return { async: false, ...this.parse(bindAnswer, r.body, doing) };
    if (r.status === 202) return { async: true, ...this.parse(asyncAnswer, r.body, doing) };
    throw this.refusal(doing, r);
  }

  /** An asynchronous binding's credentials, once its last operation succeeded (OSB: bindings_retrievable). */
  async fetchBinding(id: string, bindingId: string, q: { service_id: string; plan_id: string }): Promise<BindAnswer> {
    const doing = 'Fetching the binding';
    const r = await this.call('GET', `${bindingPath(id, bindingId)}?${this.query(q)}`, doing);
    if (r.status !== 200) throw this.refusal(doing, r);
    return this.parse(bindAnswer, r.body, doing);
  }

  async bindingLastOperation(id: string, bindingId: string, q: { service_id: string; plan_id: string; operation?: string | null }): Promise<LastOperation> {
    const doing = 'Polling the binding’s last operation';
    const r = await this.call('GET', `${bindingPath(id, bindingId)}/last_operation?${this.query({ service_id: q.service_id, plan_id: q.plan_id, operation: q.operation ?? undefined })}`, doing);
    if (r.status === 410) return { state: 'gone' };
    if (r.status !== 200) throw this.refusal(doing, r);
    return this.parse(lastOperation, r.body, doing);
  }

  async unbind(id: string, bindingId: string, q: { service_id: string; plan_id: string }): Promise<Removed> {
    const doing = 'Unbinding';
    return this.removed(doing, await this.call('DELETE', `${bindingPath(id, bindingId)}?${this.query({ ...q, accepts_incomplete: 'true' })}`, doing));
  }

  // ---- internals ------------------------------------------------------------------------

  private query(q: Record<string, string | undefined>): string {
    return new URLSearchParams(Object.entries(q).filter((e): e is [string, string] => e[1] !== undefined)).toString();
  }

  private async call(method: string, path: string, doing: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const url = `${this.broker.url.replace(/\/+$/, '')}${path}`;
    const auth = Buffer.from(`${this.broker.username}:${this.broker.password}`).toString('base64');
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Basic ${auth}`, 'x-broker-api-version': OSB_VERSION, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const why = (err as Error).name === 'TimeoutError' ? `no answer within ${Math.round(this.timeoutMs / 1000)} s` : ((err as Error & { cause?: Error }).cause?.message ?? (err as Error).message);
      throw new BrokerError('unreachable', `${doing} at service broker ${this.broker.name}: ${why}`, undefined, { cause: err });
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      if (res.ok) throw new BrokerError('failed', `${doing} at service broker ${this.broker.name}: the answer is not JSON`, res.status);
      parsed = {};
    }
    return { status: res.status, body: parsed };
  }

  /** 200/201: done; 202: accepted, to poll; anything else a refusal. */
  private accepted(doing: string, r: { status: number; body: unknown }): Provisioned {
    if (r.status === 200 || r.status === 201) return { async: false, ...this.parse(asyncAnswer, r.body, doing) };
    if (r.status === 202) return { async: true, ...this.parse(asyncAnswer, r.body, doing) };
    throw this.refusal(doing, r);
  }

  /** A delete's answer: 200 done, 410 gone already, 202 accepted (to poll); anything else a refusal. */
  private removed(doing: string, r: { status: number; body: unknown }): Removed {
    if (r.status === 200) return 'done';
    if (r.status === 410) return 'gone';
    if (r.status === 202) return { async: true, ...this.parse(asyncAnswer, r.body, doing) };
    throw this.refusal(doing, r);
  }

  private parse<S extends z.ZodTypeAny>(schema: S, body: unknown, doing: string): z.output<S> {
    const r = schema.safeParse(body);
    if (r.success) return r.data;
    throw new BrokerError('failed', `${doing} at service broker ${this.broker.name}: an unexpected answer (${r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')})`);
  }

  private refusal(doing: string, r: { status: number; body: unknown }): BrokerError {
    const e = errorBody.safeParse(r.body);
    const said = e.success ? [e.data.error, e.data.description].filter(Boolean).join(': ') : '';
    const what = `${doing} at service broker ${this.broker.name}: HTTP ${r.status}${said ? ` ${said}` : ''}`;
    return new BrokerError(r.status >= 400 && r.status < 500 && r.status !== 401 && r.status !== 412 ? 'rejected' : 'failed', what, r.status);
  }
}

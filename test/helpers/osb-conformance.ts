// An Open Service Broker API conformance suite, checking a broker the way the community's
// osb-checker does: the version header (412), Basic auth (401), the catalog's shape,
// idempotent provision (201, 200 for the same request, 409 for another), 422 AsyncRequired
// for an asynchronous plan without accepts_incomplete, last_operation polling, bind
// 201/200/409, unbind 200/410, deprovision 200/410, update (PATCH) 200 to another plan when
// the catalog says plan_updateable and 422 when it does not, 400 without service_id. It drives the broker only over HTTP, so
// it runs against any broker: register it in a test file with a getter for the broker.
import type { TestFn } from 'ava';
import { randomUUID } from 'node:crypto';

export interface BrokerUnderTest {
  url: string;
  user: string;
  password: string;
  serviceId: string;
  planId: string;
  /** A plan the broker provisions asynchronously, when it has one. */
  asyncPlanId?: string;
}

export interface OsbResponse {
  status: number;
  body: Record<string, unknown>;
}

export const API_VERSION = '2.17';

/** One OSB request: auth and version header unless told otherwise, JSON both ways. */
export async function osbRequest(
  broker: Pick<BrokerUnderTest, 'url' | 'user' | 'password'>,
  method: string,
  path: string,
  opts: { body?: unknown; version?: string | null; auth?: { user: string; password: string } | null } = {},
): Promise<OsbResponse> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const auth = opts.auth === undefined ? { user: broker.user, password: broker.password } : opts.auth;
  if (auth) headers.Authorization = 'Basic ' + Buffer.from(`${auth.user}:${auth.password}`).toString('base64');
  const version = opts.version === undefined ? API_VERSION : opts.version;
  if (version !== null) headers['X-Broker-API-Version'] = version;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(broker.url.replace(/\/$/, '') + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = { unparsed: text };
  }
  return { status: res.status, body };
}

/** The requests a platform sends, for one broker, on behalf of one org and space (random unless given). */
export function osbClient(b: BrokerUnderTest, scope: { org: string; space: string } = { org: randomUUID(), space: randomUUID() }) {
  const { org, space } = scope;
  return {
    provision: (id: string, o: { planId?: string; parameters?: Record<string, unknown>; acceptsIncomplete?: boolean } = {}) =>
      osbRequest(b, 'PUT', `/v2/service_instances/${id}${o.acceptsIncomplete ? '?accepts_incomplete=true' : ''}`, {
        body: { service_id: b.serviceId, plan_id: o.planId ?? b.planId, organization_guid: org, space_guid: space, parameters: o.parameters ?? {} },
      }),
    lastOperation: (id: string, operation?: unknown) =>
      osbRequest(b, 'GET', `/v2/service_instances/${id}/last_operation${typeof operation === 'string' ? `?operation=${encodeURIComponent(operation)}` : ''}`),
    deprovision: (id: string, planId = b.planId) => osbRequest(b, 'DELETE', `/v2/service_instances/${id}?service_id=${b.serviceId}&plan_id=${planId}`),
    bind: (id: string, bindingId: string, appGuid: string, planId = b.planId) =>
      osbRequest(b, 'PUT', `/v2/service_instances/${id}/service_bindings/${bindingId}`, { body: { service_id: b.serviceId, plan_id: planId, app_guid: appGuid, bind_resource: { app_guid: appGuid } } }),
    unbind: (id: string, bindingId: string, planId = b.planId) =>
      osbRequest(b, 'DELETE', `/v2/service_instances/${id}/service_bindings/${bindingId}?service_id=${b.serviceId}&plan_id=${planId}`),
    update: (id: string, body: { service_id?: string; plan_id?: string; parameters?: Record<string, unknown>; previous_values?: Record<string, unknown> }, acceptsIncomplete = false) =>
      osbRequest(b, 'PATCH', `/v2/service_instances/${id}${acceptsIncomplete ? '?accepts_incomplete=true' : ''}`, { body }),
    /** Polls last_operation until it leaves `in progress`; returns the final body. */
    async awaitOperation(id: string, operation: unknown, timeoutMs = 30_000): Promise<OsbResponse> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = await this.lastOperation(id, operation);
        if (r.status !== 200 || r.body.state !== 'in progress' || Date.now() > deadline) return r;
        await new Promise((res) => setTimeout(res, 100));
      }
    },
  };
}

export function registerOsbConformance(test: TestFn<any>, getBroker: () => BrokerUnderTest): void {
  const created: Array<{ id: string; planId: string }> = [];
  const newInstance = (planId?: string): string => {
    const id = randomUUID();
    created.push({ id, planId: planId ?? getBroker().planId });
    return id;
  };

  test.after.always('osb conformance: deprovision what it created', async () => {
    const b = getBroker();
    const client = osbClient(b);
    await Promise.allSettled(created.map((c) => client.deprovision(c.id, c.planId)));
  });

  test('osb: 412 without X-Broker-API-Version or with one below 2.13', async (t) => {
    const b = getBroker();
    const missing = await osbRequest(b, 'GET', '/v2/catalog', { version: null });
    t.is(missing.status, 412);
    t.is(typeof missing.body.description, 'string');
    t.is((await osbRequest(b, 'GET', '/v2/catalog', { version: '2.12' })).status, 412);
    t.is((await osbRequest(b, 'GET', '/v2/catalog', { version: '2.14' })).status, 200);
  });

  test('osb: 401 without credentials and with wrong ones', async (t) => {
    const b = getBroker();
    t.is((await osbRequest(b, 'GET', '/v2/catalog', { auth: null })).status, 401);
    t.is((await osbRequest(b, 'GET', '/v2/catalog', { auth: { user: b.user, password: `${b.password}-wrong` } })).status, 401);
    t.is((await osbRequest(b, 'PUT', `/v2/service_instances/${randomUUID()}`, { auth: null, body: {} })).status, 401);
  });

  test('osb: the catalog has the shape the spec requires', async (t) => {
    const b = getBroker();
    const r = await osbRequest(b, 'GET', '/v2/catalog');
    t.is(r.status, 200);
    const services = r.body.services as Array<Record<string, unknown>>;
    t.true(Array.isArray(services) && services.length > 0, 'services is a non-empty array');
    const ids = new Set<string>();
    for (const s of services) {
      for (const key of ['id', 'name', 'description']) t.is(typeof s[key], 'string', `service ${key}`);
      t.regex(s.name as string, /^[a-zA-Z0-9._-]+$/, 'service names are CLI-friendly');
      t.is(typeof s.bindable, 'boolean');
      const plans = s.plans as Array<Record<string, unknown>>;
      t.true(Array.isArray(plans) && plans.length > 0, 'plans is a non-empty array');
      for (const p of plans) {
        for (const key of ['id', 'name', 'description']) t.is(typeof p[key], 'string', `plan ${key}`);
        t.false(ids.has(p.id as string), 'plan ids are unique');
        ids.add(p.id as string);
      }
    }
    t.truthy(services.find((s) => s.id === b.serviceId), 'the service under test is in the catalog');
    t.true(ids.has(b.planId));
  });

  test('osb: provision is idempotent — 201, 200 for the same request, 409 for another', async (t) => {
    const b = getBroker();
    const client = osbClient(b);
    const id = newInstance();
    const first = await client.provision(id);
    t.is(first.status, 201, JSON.stringify(first.body));
    t.is((await client.provision(id)).status, 200);
    const other = await client.provision(id, { parameters: { different: true } });
    t.is(other.status, 409);
    t.deepEqual((await client.lastOperation(id)).body.state, 'succeeded');
    t.is((await client.deprovision(id)).status, 200);
    t.is((await client.deprovision(id)).status, 410);
  });

  test('osb: bad provision requests are 400 with a description', async (t) => {
    const b = getBroker();
    const unknownPlan = await osbRequest(b, 'PUT', `/v2/service_instances/${randomUUID()}`, { body: { service_id: b.serviceId, plan_id: 'no-such-plan', organization_guid: 'o', space_guid: 's' } });
    t.is(unknownPlan.status, 400);
    t.is(typeof unknownPlan.body.description, 'string');
    t.is((await osbRequest(b, 'PUT', `/v2/service_instances/${randomUUID()}`, { body: { plan_id: b.planId } })).status, 400);
  });

  test('osb: an asynchronous plan needs accepts_incomplete (422 AsyncRequired) and is polled to succeeded', async (t) => {
    const b = getBroker();
    if (!b.asyncPlanId) return t.pass('the broker has no asynchronous plan');
    const client = osbClient(b);
    const id = newInstance(b.asyncPlanId);
    const refused = await client.provision(id, { planId: b.asyncPlanId });
    t.is(refused.status, 422);
    t.is(refused.body.error, 'AsyncRequired');
    const accepted = await client.provision(id, { planId: b.asyncPlanId, acceptsIncomplete: true });
    t.true([201, 202].includes(accepted.status), JSON.stringify(accepted.body));
    if (accepted.status === 202) {
      const done = await client.awaitOperation(id, accepted.body.operation);
      t.is(done.status, 200);
      t.is(done.body.state, 'succeeded', JSON.stringify(done.body));
    }
    t.is((await client.provision(id, { planId: b.asyncPlanId, acceptsIncomplete: true })).status, 200);
    t.is((await client.deprovision(id, b.asyncPlanId)).status, 200);
  });

  test('osb: a provision that accepts incomplete may answer 201 or 202; last_operation ends succeeded', async (t) => {
    const b = getBroker();
    const client = osbClient(b);
    const id = newInstance();
    const r = await client.provision(id, { acceptsIncomplete: true });
    t.true([201, 202].includes(r.status), JSON.stringify(r.body));
    const done = await client.awaitOperation(id, r.body.operation);
    t.is(done.body.state, 'succeeded');
    t.is((await client.deprovision(id)).status, 200);
  });

  test('osb: bind 201, 200 for the same, 409 for another; unbind 200 then 410', async (t) => {
    const b = getBroker();
    const client = osbClient(b);
    const id = newInstance();
    t.is((await client.provision(id)).status, 201);
    const bindingId = randomUUID();
    const app = randomUUID();
    const bound = await client.bind(id, bindingId, app);
    t.is(bound.status, 201, JSON.stringify(bound.body));
    t.is(typeof bound.body.credentials, 'object');
    const again = await client.bind(id, bindingId, app);
    t.is(again.status, 200);
    t.deepEqual(again.body.credentials, bound.body.credentials);
    t.is((await client.bind(id, bindingId, randomUUID())).status, 409);
    t.is((await client.unbind(id, bindingId)).status, 200);
    t.is((await client.unbind(id, bindingId)).status, 410);
    t.is((await client.deprovision(id)).status, 200);
  });

  test('osb: deprovision and unbind of what does not exist are 410 Gone', async (t) => {
    const b = getBroker();
    const client = osbClient(b);
    t.is((await client.deprovision(randomUUID())).status, 410);
    t.is((await client.unbind(randomUUID(), randomUUID())).status, 410);
    t.is((await osbRequest(b, 'DELETE', `/v2/service_instances/${randomUUID()}`)).status, 400, 'service_id and plan_id are required');
  });

  test('osb: update to another plan — 200 (or 202, polled) when plan_updateable, 422 when not; 400 without service_id', async (t) => {
    const b = getBroker();
    const client = osbClient(b);
    const service = ((await osbRequest(b, 'GET', '/v2/catalog')).body.services as Array<Record<string, unknown>>).find((s) => s.id === b.serviceId)!;
    const other = (service.plans as Array<Record<string, unknown>>).find((p) => p.id !== b.planId && p.id !== b.asyncPlanId && p.plan_updateable !== false);
    const id = newInstance();
    t.is((await client.provision(id)).status, 201);
    t.is((await client.update(id, { plan_id: b.planId })).status, 400, 'service_id is required');
    t.is((await client.update(id, { service_id: b.serviceId, plan_id: 'no-such-plan' })).status, 400);
    t.is((await client.update(id, { service_id: b.serviceId, plan_id: b.planId })).status, 200, 'no change is 200');
    if (other) {
      const previous_values = { service_id: b.serviceId, plan_id: b.planId };
      const r = await client.update(id, { service_id: b.serviceId, plan_id: other.id as string, previous_values }, true);
      if (service.plan_updateable === true) {
        t.true([200, 202].includes(r.status), JSON.stringify(r.body));
        if (r.status === 202) t.is((await client.awaitOperation(id, r.body.operation)).body.state, 'succeeded');
      } else {
        t.is(r.status, 422, JSON.stringify(r.body));
        t.is(typeof r.body.description, 'string');
      }
    }
    t.is((await client.deprovision(id)).status, 200);
  });
}

// The cloud controller's v3 API as typed calls (kernel/cloud-controller/API.md). It carries
// the bearer token, trades the refresh token for a new pair when the access token has
// expired (before a call when the clock says so, or after a 401 saying "expired"), and turns
// the v3 error envelope into ApiRequestError. Answers are parsed with api-types.ts.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';
import * as t from './api-types.ts';
import { ApiRequestError, ClientError } from './errors.ts';
import { open, send, type HttpResponse } from './http.ts';
import { SseParser } from './sse.ts';

export interface Tokens {
  access_token: string;
  refresh_token: string;
  /** ms since the epoch */
  expires_at: number;
}

export interface ClientOptions {
  url: string;
  tokens?: Tokens | undefined;
  /** Called with every new token pair (after a refresh), to keep it. */
  onTokens?: (tokens: Tokens) => Promise<void> | void;
  now?: () => number;
}

interface CallOptions {
  body?: unknown;
  raw?: { body: Buffer; contentType: string };
  form?: Record<string, string>;
  auth?: boolean;
  query?: Record<string, string | number | undefined>;
  timeoutMs?: number;
}

/** Refresh this long before the expiry the server gave, so a call never races it. */
const REFRESH_MARGIN_MS = 15_000;
/** The controller takes at most this many resources per resource_match. */
const MATCH_BATCH = 5000;

export class CloudControllerClient {
  readonly url: string;
  private tokens: Tokens | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: ClientOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.tokens = opts.tokens;
    this.now = opts.now ?? Date.now;
  }

  // ---- auth -------------------------------------------------------------------------------

  info(): Promise<t.Info> {
    return this.call('GET', '/v3/info', t.info, { auth: false });
  }

  async passwordGrant(username: string, password: string): Promise<Tokens> {
    const res = await this.call('POST', '/oauth/token', t.token, { auth: false, form: { grant_type: 'password', username, password } });
    return this.keep(res);
  }

  private async refresh(): Promise<void> {
    const refreshToken = this.tokens?.refresh_token;
    if (!refreshToken) throw new ClientError('not_logged_in', 'not logged in; run ingot login');
    let res: t.Token;
    try {
      res = await this.call('POST', '/oauth/token', t.token, { auth: false, form: { grant_type: 'refresh_token', refresh_token: refreshToken } });
    } catch (err) {
      if (err instanceof ApiRequestError && err.status === 401) throw new ClientError('session_expired', `the session has expired (${err.detail}); log in again with ingot login`);
      throw err;
    }
    await this.opts.onTokens?.(this.keep(res));
  }

  private keep(res: t.Token): Tokens {
    this.tokens = { access_token: res.access_token, refresh_token: res.refresh_token, expires_at: this.now() + res.expires_in * 1000 };
    return this.tokens;
  }

  private async bearer(): Promise<string> {
    if (!this.tokens) throw new ClientError('not_logged_in', 'not logged in; run ingot login');
    if (this.tokens.expires_at - REFRESH_MARGIN_MS <= this.now()) await this.refresh();
    return `bearer ${this.tokens.access_token}`;
  }

  // ---- the HTTP core ----------------------------------------------------------------------

  async call<S extends z.ZodTypeAny>(method: string, path: string, schema: S | null, o: CallOptions = {}): Promise<z.output<S>> {
    const res = await this.exchange(method, path, o);
    if (schema === null || res.status === 204) return undefined as z.output<S>;
    const parsed = schema.safeParse(parseJson(res, method, path));
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ClientError('bad_response', `${method} ${path}: the controller's answer is not what this CLI understands (${issue.path.join('.') || '(body)'}: ${issue.message})`);
    }
    return parsed.data;
  }

  private async exchange(method: string, path: string, o: CallOptions, retried = false): Promise<HttpResponse> {
    const auth = o.auth ?? true;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (auth) headers.authorization = await this.bearer();
    let body: Buffer | undefined;
    if (o.raw) {
      body = o.raw.body;
      headers['content-type'] = o.raw.contentType;
    } else if (o.form) {
      body = Buffer.from(new URLSearchParams(o.form).toString());
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else if (o.body !== undefined) {
      body = Buffer.from(JSON.stringify(o.body));
      headers['content-type'] = 'application/json';
    }
    const res = await send({ method, url: this.urlOf(path, o.query), headers, ...(body ? { body } : {}), ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}) });
    if (res.status < 400) return res;
    const err = apiError(res, method, path);
    if (auth && !retried && err.status === 401 && err.title === 'CF-InvalidAuthToken' && /expired/i.test(err.detail)) {
      await this.refresh();
      return this.exchange(method, path, o, true);
    }
    if (err.status === 401 && auth) {
      throw new ClientError('session_expired', `the controller refused the session (${err.detail}); log in again with ingot login`);
    }
    throw err;
  }

  private urlOf(path: string, query?: Record<string, string | number | undefined>): string {
    const u = new URL(path.startsWith('http') ? path : `${this.url}${path}`);
    // Links come back built from the Host header; only their path and query matter.
    const out = new URL(`${u.pathname}${u.search}`, `${this.url}/`);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) out.searchParams.set(k, String(v));
    return out.toString();
  }

  /** Every page of a list. */
  async listAll<S extends z.ZodTypeAny>(path: string, item: S, query: Record<string, string | number | undefined> = {}): Promise<Array<z.output<S>>> {
    const out: Array<z.output<S>> = [];
    const schema = t.list(item);
    let page = await this.call('GET', path, schema, { query: { per_page: 5000, ...query } });
    out.push(...page.resources);
    while (page.pagination.next) {
      page = await this.call('GET', page.pagination.next.href, schema);
      out.push(...page.resources);
    }
    return out;
  }

  // ---- users, orgs, spaces ----------------------------------------------------------------

  createUser(username: string, password: string, admin: boolean): Promise<t.User> {
    return this.call('POST', '/v3/users', t.user, { body: { username, password, admin } });
  }
  organizations(names?: string[]): Promise<t.Organization[]> {
    return this.listAll('/v3/organizations', t.organization, { names: names?.join(','), order_by: 'name' });
  }
  spaces(orgGuid: string, names?: string[]): Promise<t.Space[]> {
    return this.listAll('/v3/spaces', t.space, { organization_guids: orgGuid, names: names?.join(','), order_by: 'name' });
  }

  createOrganization(name: string): Promise<t.Organization> {
    return this.call('POST', '/v3/organizations', t.organization, { body: { name } });
  }
  deleteOrganization(guid: string): Promise<void> {
    return this.call('DELETE', `/v3/organizations/${guid}`, null);
  }
  createSpace(name: string, orgGuid: string): Promise<t.Space> {
    return this.call('POST', '/v3/spaces', t.space, { body: { name, relationships: { organization: { data: { guid: orgGuid } } } } });
  }
  deleteSpace(guid: string): Promise<void> {
    return this.call('DELETE', `/v3/spaces/${guid}`, null);
  }

  // ---- roles ------------------------------------------------------------------------------

  /** Every role matching the filters, with the users who hold them. */
  async roles(query: { types?: string[]; organizationGuid?: string; spaceGuid?: string }): Promise<{ roles: t.Role[]; users: t.User[] }> {
    const roles: t.Role[] = [];
    const users = new Map<string, t.User>();
    let next: string | undefined = '/v3/roles';
    let q: Record<string, string | number | undefined> | undefined = {
      types: query.types?.join(','),
      organization_guids: query.organizationGuid,
      space_guids: query.spaceGuid,
      include: 'user',
      per_page: 5000,
    };
    while (next) {
      const page: z.output<typeof t.rolesPage> = await this.call('GET', next, t.rolesPage, q ? { query: q } : {});
      roles.push(...page.resources);
      for (const u of page.included?.users ?? []) users.set(u.guid, u);
      next = page.pagination.next?.href;
      q = undefined;
    }
    return { roles, users: [...users.values()] };
  }
  createRole(type: string, username: string, target: { organizationGuid: string } | { spaceGuid: string }): Promise<t.Role> {
    const where = 'spaceGuid' in target ? { space: { data: { guid: target.spaceGuid } } } : { organization: { data: { guid: target.organizationGuid } } };
    return this.call('POST', '/v3/roles', t.role, { body: { type, relationships: { user: { data: { username } }, ...where } } });
  }
  deleteRole(guid: string): Promise<void> {
    return this.call('DELETE', `/v3/roles/${guid}`, null);
  }

  // ---- apps -------------------------------------------------------------------------------

  apps(spaceGuid: string, names?: string[]): Promise<t.App[]> {
    return this.listAll('/v3/apps', t.app, { space_guids: spaceGuid, names: names?.join(','), order_by: 'name' });
  }
  app(guid: string): Promise<t.App> {
    return this.call('GET', `/v3/apps/${guid}`, t.app);
  }
  createApp(body: { name: string; spaceGuid: string; env?: Record<string, string>; buildpacks?: string[]; stack?: string }): Promise<t.App> {
    const lifecycle = body.buildpacks || body.stack ? { lifecycle: { type: 'buildpack', data: { ...(body.buildpacks ? { buildpacks: body.buildpacks } : {}), ...(body.stack ? { stack: body.stack } : {}) } } } : {};
    return this.call('POST', '/v3/apps', t.app, {
      body: { name: body.name, relationships: { space: { data: { guid: body.spaceGuid } } }, ...(body.env ? { environment_variables: body.env } : {}), ...lifecycle },
    });
  }
  rename(guid: string, name: string): Promise<t.App> {
    return this.call('PATCH', `/v3/apps/${guid}`, t.app, { body: { name } });
  }
  updateLifecycle(guid: string, data: { buildpacks?: string[]; stack?: string }): Promise<t.App> {
    return this.call('PATCH', `/v3/apps/${guid}`, t.app, { body: { lifecycle: { type: 'buildpack', data } } });
  }
  deleteApp(guid: string): Promise<void> {
    return this.call('DELETE', `/v3/apps/${guid}`, null);
  }
  start(guid: string): Promise<t.App> {
    return this.call('POST', `/v3/apps/${guid}/actions/start`, t.app);
  }
  stop(guid: string): Promise<t.App> {
    return this.call('POST', `/v3/apps/${guid}/actions/stop`, t.app);
  }
  restart(guid: string, strategy: 'recreate' | 'rolling' = 'recreate'): Promise<t.App> {
    return this.call('POST', `/v3/apps/${guid}/actions/restart`, t.app, { body: { strategy } });
  }
  env(guid: string): Promise<t.AppEnv> {
    return this.call('GET', `/v3/apps/${guid}/env`, t.appEnv);
  }
  async patchEnv(guid: string, vars: Record<string, string | null>): Promise<Record<string, string>> {
    return (await this.call('PATCH', `/v3/apps/${guid}/environment_variables`, t.envVars, { body: { var: vars } })).var;
  }
  setCurrentDroplet(appGuid: string, dropletGuid: string): Promise<void> {
    return this.call('PATCH', `/v3/apps/${appGuid}/relationships/current_droplet`, null, { body: { data: { guid: dropletGuid } } });
  }
  async currentDroplet(appGuid: string): Promise<t.Droplet | undefined> {
    try {
      return await this.call('GET', `/v3/apps/${appGuid}/droplets/current`, t.droplet);
    } catch (err) {
      if (err instanceof ApiRequestError && err.status === 404) return undefined;
      throw err;
    }
  }
  crashEvents(appGuid: string): Promise<t.AuditEvent[]> {
    return this.call('GET', '/v3/audit_events', t.list(t.auditEvent), { query: { target_guids: appGuid, types: 'audit.app.process.crash', order_by: '-created_at', per_page: 20 } }).then((p) => p.resources);
  }
  /** The newest `limit` events of a resource, newest first. */
  events(targetGuid: string, limit = 50): Promise<t.AuditEvent[]> {
    return this.call('GET', '/v3/audit_events', t.list(t.auditEvent), { query: { target_guids: targetGuid, order_by: '-created_at', per_page: limit } }).then((p) => p.resources);
  }

  // ---- quotas -----------------------------------------------------------------------------

  organizationQuotas(names?: string[]): Promise<t.OrganizationQuota[]> {
    return this.listAll('/v3/organization_quotas', t.organizationQuota, { names: names?.join(','), order_by: 'name' });
  }
  createOrganizationQuota(name: string, limits: t.QuotaLimits): Promise<t.OrganizationQuota> {
    return this.call('POST', '/v3/organization_quotas', t.organizationQuota, { body: { name, ...quotaBody(limits) } });
  }
  applyOrganizationQuota(quotaGuid: string, orgGuid: string): Promise<void> {
    return this.call('POST', `/v3/organization_quotas/${quotaGuid}/relationships/organizations`, null, { body: { data: [{ guid: orgGuid }] } });
  }
  spaceQuotas(orgGuid: string, names?: string[]): Promise<t.SpaceQuota[]> {
    return this.listAll('/v3/space_quotas', t.spaceQuota, { organization_guids: orgGuid, names: names?.join(','), order_by: 'name' });
  }
  createSpaceQuota(name: string, orgGuid: string, limits: t.QuotaLimits): Promise<t.SpaceQuota> {
    return this.call('POST', '/v3/space_quotas', t.spaceQuota, { body: { name, ...quotaBody(limits), relationships: { organization: { data: { guid: orgGuid } } } } });
  }
  applySpaceQuota(quotaGuid: string, spaceGuid: string): Promise<void> {
    return this.call('POST', `/v3/space_quotas/${quotaGuid}/relationships/spaces`, null, { body: { data: [{ guid: spaceGuid }] } });
  }

  // ---- services ---------------------------------------------------------------------------

  serviceBrokers(names?: string[]): Promise<t.ServiceBroker[]> {
    return this.listAll('/v3/service_brokers', t.serviceBroker, { names: names?.join(','), order_by: 'name' });
  }
  createServiceBroker(body: { name: string; url: string; username: string; password: string }): Promise<t.ServiceBroker> {
    return this.call('POST', '/v3/service_brokers', t.serviceBroker, {
      body: { name: body.name, url: body.url, authentication: { type: 'basic', credentials: { username: body.username, password: body.password } } },
    });
  }
  serviceOfferings(query: { names?: string[]; brokerNames?: string[] } = {}): Promise<t.ServiceOffering[]> {
    return this.listAll('/v3/service_offerings', t.serviceOffering, { names: query.names?.join(','), service_broker_names: query.brokerNames?.join(','), order_by: 'name' });
  }
  servicePlans(query: { offeringGuids?: string[]; names?: string[]; guids?: string[] } = {}): Promise<t.ServicePlan[]> {
    return this.listAll('/v3/service_plans', t.servicePlan, { service_offering_guids: query.offeringGuids?.join(','), names: query.names?.join(','), guids: query.guids?.join(','), order_by: 'name' });
  }
  serviceInstances(spaceGuid: string, names?: string[]): Promise<t.ServiceInstance[]> {
    return this.listAll('/v3/service_instances', t.serviceInstance, { space_guids: spaceGuid, names: names?.join(','), order_by: 'name' });
  }
  serviceInstance(guid: string): Promise<t.ServiceInstance> {
    return this.call('GET', `/v3/service_instances/${guid}`, t.serviceInstance);
  }
  createServiceInstance(
    body:
      | { type: 'managed'; name: string; spaceGuid: string; planGuid: string; parameters?: Record<string, unknown>; tags?: string[] }
      | { type: 'user-provided'; name: string; spaceGuid: string; credentials?: Record<string, unknown>; syslogDrainUrl?: string; tags?: string[] },
  ): Promise<t.ServiceInstance> {
    const relationships = { space: { data: { guid: body.spaceGuid } }, ...(body.type === 'managed' ? { service_plan: { data: { guid: body.planGuid } } } : {}) };
    const rest =
      body.type === 'managed'
        ? { ...(body.parameters ? { parameters: body.parameters } : {}) }
        : { ...(body.credentials ? { credentials: body.credentials } : {}), ...(body.syslogDrainUrl ? { syslog_drain_url: body.syslogDrainUrl } : {}) };
    return this.call('POST', '/v3/service_instances', t.serviceInstance, { body: { type: body.type, name: body.name, relationships, ...rest, ...(body.tags ? { tags: body.tags } : {}) } });
  }
  /** PATCH: a managed instance's plan, parameters and tags (a plan or parameters change may answer 202: poll it). */
  updateServiceInstance(guid: string, body: { planGuid?: string; parameters?: Record<string, unknown>; tags?: string[] }): Promise<t.ServiceInstance> {
    return this.call('PATCH', `/v3/service_instances/${guid}`, t.serviceInstance, {
      body: {
        ...(body.planGuid ? { relationships: { service_plan: { data: { guid: body.planGuid } } } } : {}),
        ...(body.parameters ? { parameters: body.parameters } : {}),
        ...(body.tags ? { tags: body.tags } : {}),
      },
    });
  }
  deleteServiceInstance(guid: string): Promise<void> {
    return this.call('DELETE', `/v3/service_instances/${guid}`, null);
  }
  serviceBindings(query: { instanceGuids?: string[]; appGuids?: string[]; type?: 'app' | 'key'; names?: string[] }): Promise<t.ServiceBinding[]> {
    return this.listAll('/v3/service_credential_bindings', t.serviceBinding, {
      service_instance_guids: query.instanceGuids?.join(','),
      app_guids: query.appGuids?.join(','),
      type: query.type,
      names: query.names?.join(','),
    });
  }
  createServiceBinding(
    body: { type: 'app'; instanceGuid: string; appGuid: string; parameters?: Record<string, unknown> } | { type: 'key'; instanceGuid: string; name: string; parameters?: Record<string, unknown> },
  ): Promise<t.ServiceBinding> {
    const relationships = { service_instance: { data: { guid: body.instanceGuid } }, ...(body.type === 'app' ? { app: { data: { guid: body.appGuid } } } : {}) };
    return this.call('POST', '/v3/service_credential_bindings', t.serviceBinding, {
      body: { type: body.type, ...(body.type === 'key' ? { name: body.name } : {}), relationships, ...(body.parameters ? { parameters: body.parameters } : {}) },
    });
  }
  async serviceBindingCredentials(guid: string): Promise<Record<string, unknown>> {
    return (await this.call('GET', `/v3/service_credential_bindings/${guid}/details`, t.bindingDetails)).credentials;
  }
  /** The binding, or undefined once it is gone (an asynchronous unbind ends so). */
  async serviceBinding(guid: string): Promise<t.ServiceBinding | undefined> {
    try {
      return await this.call('GET', `/v3/service_credential_bindings/${guid}`, t.serviceBinding);
    } catch (err) {
      if (err instanceof ApiRequestError && err.status === 404) return undefined;
      throw err;
    }
  }
  /** Undefined when the binding is gone; the binding `delete in progress` while its broker removes it asynchronously. */
  async deleteServiceBinding(guid: string): Promise<t.ServiceBinding | undefined> {
    return (await this.call('DELETE', `/v3/service_credential_bindings/${guid}`, t.serviceBinding.optional())) ?? undefined;
  }

  // ---- processes --------------------------------------------------------------------------

  processes(appGuids: string[]): Promise<t.Process[]> {
    if (appGuids.length === 0) return Promise.resolve([]);
    return this.listAll('/v3/processes', t.process, { app_guids: appGuids.join(',') });
  }
  webProcess(appGuid: string): Promise<t.Process> {
    return this.call('GET', `/v3/apps/${appGuid}/processes/web`, t.process);
  }
  updateProcess(appGuid: string, body: { command?: string | null; health_check?: { type: string; data?: { timeout?: number | null; endpoint?: string | null } } }): Promise<t.Process> {
    return this.call('PATCH', `/v3/apps/${appGuid}/processes/web`, t.process, { body });
  }
  scale(appGuid: string, body: { instances?: number; memory_in_mb?: number; disk_in_mb?: number }): Promise<t.Process> {
    return this.call('POST', `/v3/apps/${appGuid}/processes/web/actions/scale`, t.process, { body });
  }
  async stats(appGuid: string): Promise<t.InstanceStats[]> {
    return (await this.call('GET', `/v3/apps/${appGuid}/processes/web/stats`, t.statsList)).resources;
  }

  // ---- bits and builds --------------------------------------------------------------------

  async resourceMatch(resources: Array<{ checksum: { value: string }; size_in_bytes: number; path: string; mode: string }>): Promise<z.output<typeof t.resourceMatch>['resources']> {
    const out: z.output<typeof t.resourceMatch>['resources'] = [];
    for (let i = 0; i < resources.length; i += MATCH_BATCH) {
      const batch = resources.slice(i, i + MATCH_BATCH);
      out.push(...(await this.call('POST', '/v3/resource_match', t.resourceMatch, { body: { resources: batch } })).resources);
    }
    return out;
  }
  /** The app's packages, newest first. */
  packages(appGuid: string, states?: string[]): Promise<t.Package[]> {
    return this.listAll(`/v3/apps/${appGuid}/packages`, t.pkg, { states: states?.join(','), order_by: '-created_at' });
  }
  createPackage(appGuid: string): Promise<t.Package> {
    return this.call('POST', '/v3/packages', t.pkg, { body: { type: 'bits', relationships: { app: { data: { guid: appGuid } } } } });
  }
  upload(packageGuid: string, zip: Buffer | undefined, resources: unknown[]): Promise<t.Package> {
    const form = multipart({ resources: JSON.stringify(resources) }, zip ? { field: 'bits', filename: 'application.zip', content: zip } : undefined);
    return this.call('POST', `/v3/packages/${packageGuid}/upload`, t.pkg, { raw: { body: form.body, contentType: form.contentType }, timeoutMs: 300_000 });
  }
  createBuild(packageGuid: string): Promise<t.Build> {
    return this.call('POST', '/v3/builds', t.build, { body: { package: { guid: packageGuid } } });
  }
  build(guid: string): Promise<t.Build> {
    return this.call('GET', `/v3/builds/${guid}`, t.build);
  }

  // ---- domains and routes -----------------------------------------------------------------

  domains(names?: string[]): Promise<t.Domain[]> {
    return this.listAll('/v3/domains', t.domain, { names: names?.join(',') });
  }
  /** A shared domain, or with `orgGuid` a domain private to that org. */
  createDomain(name: string, orgGuid?: string): Promise<t.Domain> {
    const body = orgGuid ? { name, relationships: { organization: { data: { guid: orgGuid } } } } : { name };
    return this.call('POST', '/v3/domains', t.domain, { body });
  }
  deleteDomain(guid: string): Promise<void> {
    return this.call('DELETE', `/v3/domains/${guid}`, null);
  }
  routes(query: { spaceGuid?: string; appGuid?: string; hosts?: string[]; paths?: string[]; domainGuids?: string[] }): Promise<t.Route[]> {
    return this.listAll('/v3/routes', t.route, {
      space_guids: query.spaceGuid,
      app_guids: query.appGuid,
      hosts: query.hosts?.join(','),
      paths: query.paths?.join(','),
      domain_guids: query.domainGuids?.join(','),
    });
  }
  appRoutes(appGuid: string): Promise<t.Route[]> {
    return this.listAll(`/v3/apps/${appGuid}/routes`, t.route);
  }
  createRoute(body: { host: string; path: string; domainGuid: string; spaceGuid: string }): Promise<t.Route> {
    return this.call('POST', '/v3/routes', t.route, {
      body: { host: body.host, path: body.path, relationships: { domain: { data: { guid: body.domainGuid } }, space: { data: { guid: body.spaceGuid } } } },
    });
  }
  deleteRoute(guid: string): Promise<void> {
    return this.call('DELETE', `/v3/routes/${guid}`, null);
  }
  mapRoute(routeGuid: string, appGuid: string): Promise<void> {
    return this.call('POST', `/v3/routes/${routeGuid}/destinations`, null, { body: { destinations: [{ app: { guid: appGuid } }] } });
  }
  unmapDestination(routeGuid: string, destinationGuid: string): Promise<void> {
    return this.call('DELETE', `/v3/routes/${routeGuid}/destinations/${destinationGuid}`, null);
  }

  // ---- logs -------------------------------------------------------------------------------

  async recentLogs(appGuid: string, limit?: number): Promise<t.LogLine[]> {
    return (await this.call('GET', `/v3/apps/${appGuid}/logs/recent`, t.recentLogs, { query: { limit } })).resources;
  }

  /**
   * Follows the app's live log stream. `ready` resolves once the controller said it is
   * listening (so nothing logged after it is missed); `ended` when the stream closes.
   */
  async streamLogs(appGuid: string, onLine: (line: t.LogLine) => void, opts: { recent?: number } = {}): Promise<LogStream> {
    const path = `/v3/apps/${appGuid}/logs/stream`;
    const openOnce = async (): Promise<IncomingMessage> =>
      open({ method: 'GET', url: this.urlOf(path, { recent: opts.recent }), headers: { accept: 'text/event-stream', authorization: await this.bearer() }, timeoutMs: 30_000 });
    let res = await openOnce();
    if (res.statusCode === 401) {
      const body = await readAll(res);
      const err = apiError({ status: 401, headers: res.headers, body }, 'GET', path);
      if (err.title !== 'CF-InvalidAuthToken') throw err;
      await this.refresh();
      res = await openOnce();
    }
    if ((res.statusCode ?? 0) >= 400) throw apiError({ status: res.statusCode ?? 0, headers: res.headers, body: await readAll(res) }, 'GET', path);
    return new LogStream(res, onLine);
  }
}

export class LogStream {
  readonly ready: Promise<void>;
  readonly ended: Promise<void>;

  constructor(
    private readonly res: IncomingMessage,
    onLine: (line: t.LogLine) => void,
  ) {
    const parser = new SseParser();
    let markReady!: () => void;
    this.ready = new Promise((r) => (markReady = r));
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      for (const item of parser.push(chunk)) {
        if (item.kind === 'comment') {
          if (item.text === 'connected') markReady();
          continue;
        }
        if (item.event !== 'log') continue;
        let raw: unknown;
        try {
          raw = JSON.parse(item.data);
        } catch {
          continue;
        }
        const line = t.logLine.safeParse(raw);
        if (line.success) onLine(line.data);
      }
    });
    this.ended = new Promise((resolve) => {
      const done = (): void => {
        markReady();
        resolve();
      };
      res.once('end', done);
      res.once('close', done);
      res.once('error', done);
    });
  }

  close(): void {
    this.res.destroy();
  }
}

function parseJson(res: HttpResponse, method: string, path: string): unknown {
  const text = res.body.toString('utf8');
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    throw new ClientError('bad_response', `${method} ${path}: HTTP ${res.status} with a body that is not JSON; is this the Ingot API? (check ingot api)`);
  }
}

function apiError(res: HttpResponse, method: string, path: string): ApiRequestError {
  const routerError = res.headers['x-ingot-router-error'];
  let raw: unknown;
  try {
    raw = JSON.parse(res.body.toString('utf8'));
  } catch {
    raw = undefined;
  }
  const env = t.errorEnvelope.safeParse(raw);
  if (env.success) {
    const e = env.data.errors[0]!;
    return new ApiRequestError(res.status, e.title, e.detail, method, path);
  }
  const detail = routerError
    ? `the router answered HTTP ${res.status} (${String(routerError)}): the API is not reachable behind it right now`
    : `HTTP ${res.status} ${res.body.toString('utf8').slice(0, 200).trim()}`;
  return new ApiRequestError(res.status, 'HTTP', detail, method, path);
}

async function readAll(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** A multipart/form-data body: text fields, then an optional file part. */
export function multipart(fields: Record<string, string>, file?: { field: string; filename: string; content: Buffer }): { body: Buffer; contentType: string } {
  const boundary = `----ingot-cli-${randomBytes(12).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  if (file) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${file.field}"; filename="${file.filename}"\r\nContent-Type: application/zip\r\n\r\n`));
    parts.push(file.content, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** CF's quota body: limits grouped by what they limit; absent ones stay unlimited. */
function quotaBody(l: t.QuotaLimits) {
  return {
    apps: { total_memory_in_mb: l.total_memory_in_mb ?? null, total_instances: l.total_instances ?? null },
    routes: { total_routes: l.total_routes ?? null },
    services: { total_service_instances: l.total_service_instances ?? null },
  };
}

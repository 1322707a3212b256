// `ingot push` as a sequence of steps against the controller, each reported as a typed
// event (rendered by progress.ts): create or update the app → map its routes → describe its
// files, ask which the controller already holds, upload only the rest → stage, streaming
// the staging log → set the droplet → start (or restart rolling) → wait for every instance.
// The order follows API.md "Pushing an app".
import { randomBytes } from 'node:crypto';
import type { CloudControllerClient, LogStream } from './api-client.ts';
import type { App, Build, LogLine, Process, Route, ServiceInstance } from './api-types.ts';
import { ApiRequestError, ClientError, step } from './errors.ts';
import { crashBaseline, waitForInstances, type InstanceCounts } from './instances.ts';
import type { AppSpec } from './manifest.ts';
import { bindingSettled } from './service-waits.ts';
import { describeResources, fingerprint, matchedResources, missingEntries, zipEntriesToBuffer } from './resources.ts';
import { targetRouterBase, type SpaceSession } from './session.ts';
import { appSummary, type AppSummary } from './summary.ts';

export type PushEvent =
  | { type: 'app'; name: string; created: boolean; space: string }
  | { type: 'route'; url: string; created: boolean }
  | { type: 'service'; name: string; created: boolean }
  | { type: 'files'; files: number; bytes: number; ignored: number; matchedFiles: number; matchedBytes: number }
  | { type: 'uploaded'; files: number; bytes: number }
  | { type: 'staging'; build: string }
  | { type: 'staging-log'; line: LogLine }
  | { type: 'staged'; droplet: string }
  | { type: 'stopping' }
  | { type: 'starting'; strategy: 'recreate' | 'rolling'; instances: number }
  | { type: 'instances'; counts: InstanceCounts; verb: string }
  | { type: 'warning'; text: string }
  | { type: 'summary'; summary: AppSummary };

export type Emit = (e: PushEvent) => void;

export interface PushOptions {
  start: boolean;
  strategy: 'recreate' | 'rolling';
  startupTimeoutMs: number;
  stagingTimeoutMs: number;
  pollMs?: number;
}

export const DEFAULT_STARTUP_TIMEOUT_S = 300;
export const DEFAULT_STAGING_TIMEOUT_S = 900;

export async function push(s: SpaceSession, spec: AppSpec, opts: PushOptions, emit: Emit): Promise<AppSummary> {
  const { client } = s;
  // Every service instance the manifest names must exist before anything is created.
  const instances = await findInstances(s, spec);
  const path = spec.path ?? process.cwd();
  const bits = await fingerprint(path);
  if (bits.entries.length === 0) throw new ClientError('bad_path', `${path} holds no files to push (after .cfignore)`);

  // ---- the app and its process
  let app = await step(`Finding app ${spec.name}`, async () => (await client.apps(s.space.guid, [spec.name]))[0]);
  const created = !app;
  if (!app) {
    app = await step(`Creating app ${spec.name}`, () =>
      client.createApp({ name: spec.name, spaceGuid: s.space.guid, ...(spec.env ? { env: spec.env } : {}), ...(spec.buildpacks ? { buildpacks: spec.buildpacks } : {}), ...(spec.stack ? { stack: spec.stack } : {}) }),
    );
  } else {
    const a = app;
    if (spec.buildpacks || spec.stack) {
      app = await step(`Updating app ${spec.name}`, () => client.updateLifecycle(a.guid, { ...(spec.buildpacks ? { buildpacks: spec.buildpacks } : {}), ...(spec.stack ? { stack: spec.stack } : {}) }));
    }
    if (spec.env && Object.keys(spec.env).length > 0) await step(`Setting the environment of ${spec.name}`, () => client.patchEnv(a.guid, spec.env!));
  }
  emit({ type: 'app', name: spec.name, created, space: `${s.organization.name}/${s.space.name}` });
  const theApp = app;
  let proc = await step(`Reading the process of ${spec.name}`, () => client.webProcess(theApp.guid));
  const rolling = opts.strategy === 'rolling' && theApp.state === 'STARTED' && opts.start;
  if (rolling && ((spec.memoryMb !== undefined && spec.memoryMb !== proc.memory_in_mb) || (spec.diskMb !== undefined && spec.diskMb !== proc.disk_in_mb))) {
    throw new ClientError('usage', `${spec.name}: a new memory or disk limit replaces every instance at once; push it without --strategy rolling, or scale it on its own first`);
  }
  proc = await updateProcess(client, theApp, proc, spec);

  // ---- routes, and the service bindings (before staging, so both see them)
  await mapRoutes(s, theApp, spec, emit);
  await bindServices(s, theApp, spec, instances, emit);

  // ---- bits
  const described = describeResources(bits);
  const matched = await step('Matching files with the platform', () => client.resourceMatch(described));
  const held = matchedResources(bits, matched);
  emit({ type: 'files', files: bits.files, bytes: bits.bytes, ignored: bits.ignored.length, matchedFiles: held.length, matchedBytes: held.reduce((n, r) => n + r.size_in_bytes, 0) });
  const missing = missingEntries(bits, held);
  const zip = missing.length > 0 ? await zipEntriesToBuffer(missing) : undefined;
  const pkg = await step(`Creating a package for ${spec.name}`, () => client.createPackage(theApp.guid));
  await step(`Uploading ${spec.name}`, () => client.upload(pkg.guid, zip, held));
  emit({ type: 'uploaded', files: missing.filter((e) => e.kind === 'file').length, bytes: zip?.length ?? 0 });

  // ---- staging, with the log streamed meanwhile; the stream stays open through the start
  const logs = await openLogs(client, theApp, emit);
  try {
    const droplet = await stage(client, theApp, pkg.guid, logs, opts, emit);

    // ---- droplet, scale, start
    const scale = scaleChange(proc, spec);
    if (theApp.state === 'STARTED' && !rolling) {
      emit({ type: 'stopping' });
      await step(`Stopping ${spec.name}`, () => client.stop(theApp.guid));
    }
    if (scale) proc = await step(`Scaling ${spec.name}`, () => client.scale(theApp.guid, scale));
    await step(`Setting the droplet of ${spec.name}`, () => client.setCurrentDroplet(theApp.guid, droplet));
    if (opts.start) {
      const known = await crashBaseline(client, theApp.guid);
      emit({ type: 'starting', strategy: rolling ? 'rolling' : 'recreate', instances: proc.instances });
      logs.apiErrors.length = 0;
      if (rolling) await step(`Restarting ${spec.name}`, () => client.restart(theApp.guid, 'rolling'));
      else await step(`Starting ${spec.name}`, () => client.start(theApp.guid));
      await waitForInstances(client, theApp, {
        timeoutMs: Math.max(opts.startupTimeoutMs, (spec.timeoutS ?? 0) * 1000),
        knownCrashes: known,
        apiErrors: () => logs.apiErrors,
        onCounts: (counts) => emit({ type: 'instances', counts, verb: rolling ? 'updated and running' : 'running' }),
        ...(opts.pollMs ? { pollMs: opts.pollMs } : {}),
      });
    }
  } finally {
    logs.close();
  }
  const summary = await appSummary(client, await client.app(theApp.guid), targetRouterBase(s));
  emit({ type: 'summary', summary });
  return summary;
}

async function updateProcess(client: CloudControllerClient, app: App, proc: Process, spec: AppSpec): Promise<Process> {
  const body: Parameters<CloudControllerClient['updateProcess']>[1] = {};
  if (spec.command !== undefined && spec.command !== proc.command) body.command = spec.command;
  if (spec.healthCheckType !== undefined || spec.healthCheckEndpoint !== undefined || spec.timeoutS !== undefined) {
    const type = spec.healthCheckType ?? (spec.healthCheckEndpoint !== undefined ? 'http' : proc.health_check.type);
    const data: { timeout?: number | null; endpoint?: string | null } = {};
    if (spec.timeoutS !== undefined) data.timeout = spec.timeoutS;
    if (type === 'http') data.endpoint = spec.healthCheckEndpoint ?? proc.health_check.data.endpoint ?? '/';
    body.health_check = { type, data };
  }
  if (Object.keys(body).length === 0) return proc;
  return step(`Updating the process of ${spec.name}`, () => client.updateProcess(app.guid, body));
}

function scaleChange(proc: Process, spec: AppSpec): { instances?: number; memory_in_mb?: number; disk_in_mb?: number } | undefined {
  const change: { instances?: number; memory_in_mb?: number; disk_in_mb?: number } = {};
  if (spec.instances !== undefined && spec.instances !== proc.instances) change.instances = spec.instances;
  if (spec.memoryMb !== undefined && spec.memoryMb !== proc.memory_in_mb) change.memory_in_mb = spec.memoryMb;
  if (spec.diskMb !== undefined && spec.diskMb !== proc.disk_in_mb) change.disk_in_mb = spec.diskMb;
  return Object.keys(change).length > 0 ? change : undefined;
}

// ---- services ---------------------------------------------------------------------------

/** The space's instances the spec names, or a one-line error listing those missing. */
async function findInstances(s: SpaceSession, spec: AppSpec): Promise<ServiceInstance[]> {
  const names = [...new Set((spec.services ?? []).map((r) => r.name))];
  if (names.length === 0) return [];
  const found = await step(`Finding the service instances of ${spec.name}`, () => s.client.serviceInstances(s.space.guid, names));
  const missing = names.filter((n) => !found.some((i) => i.name === n));
  if (missing.length > 0) {
    throw new ClientError('not_found', `${spec.name}: service instance${missing.length > 1 ? 's' : ''} ${missing.join(', ')} not found in space ${s.organization.name}/${s.space.name}; create ${missing.length > 1 ? 'them' : 'it'} first (ingot create-service)`);
  }
  return found;
}

/** Binds each named instance the app is not bound to yet. */
async function bindServices(s: SpaceSession, app: App, spec: AppSpec, instances: ServiceInstance[], emit: Emit): Promise<void> {
  if (instances.length === 0) return;
  const bound = new Set((await s.client.serviceBindings({ appGuids: [app.guid], type: 'app' })).map((b) => b.relationships.service_instance.data?.guid));
  for (const ref of spec.services ?? []) {
    const instance = instances.find((i) => i.name === ref.name)!;
    const already = bound.has(instance.guid);
    if (!already) {
      const doing = `Binding service instance ${instance.name} to ${app.name}`;
      const binding = await step(doing, () =>
        s.client.createServiceBinding({ type: 'app', instanceGuid: instance.guid, appGuid: app.guid, ...(ref.parameters ? { parameters: ref.parameters } : {}) }),
      );
      // The app starts next: an asynchronous binding must have its credentials by then.
      await bindingSettled(s, binding, doing, () => undefined);
      bound.add(instance.guid);
    }
    emit({ type: 'service', name: instance.name, created: !already });
  }
}

// ---- routes -----------------------------------------------------------------------------

/** A host for an app name: lower-case letters, digits and hyphens. */
export function hostnameFor(name: string): string {
  const h = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return h === '' ? 'app' : h;
}

/** `host.domain/path` → its parts, for the longest of the platform's domains that ends it. */
export function splitRoute(route: string, domains: readonly string[]): { host: string; domain: string; path: string } | undefined {
  const slash = route.indexOf('/');
  const name = (slash < 0 ? route : route.slice(0, slash)).toLowerCase();
  const path = slash < 0 ? '' : route.slice(slash);
  const domain = [...domains].sort((a, b) => b.length - a.length).find((d) => name === d || name.endsWith(`.${d}`));
  if (domain === undefined) return undefined;
  return { host: name === domain ? '' : name.slice(0, -(domain.length + 1)), domain, path };
}

async function mapRoutes(s: SpaceSession, app: App, spec: AppSpec, emit: Emit): Promise<void> {
  if (spec.noRoute) return;
  const { client } = s;
  const existing = await client.appRoutes(app.guid);
  let wanted: string[];
  if (spec.routes && spec.routes.length > 0) wanted = spec.routes;
  else if (existing.length > 0) return;
  else {
    const appsDomain = s.target.apps_domain ?? (await client.info()).custom.apps_domain;
    const host = spec.randomRoute ? `${hostnameFor(spec.name).slice(0, 52)}-${randomBytes(3).toString('hex')}` : hostnameFor(spec.name);
    wanted = [`${host}.${appsDomain}`];
  }
  const domains = await client.domains();
  for (const r of wanted) {
    const parts = splitRoute(r, domains.map((d) => d.name));
    if (!parts) throw new ClientError('usage', `route ${r}: no domain of this platform ends it (domains: ${domains.map((d) => d.name).join(', ')})`);
    const domain = domains.find((d) => d.name === parts.domain)!;
    const url = `${parts.host ? `${parts.host}.` : ''}${parts.domain}${parts.path}`;
    if (existing.some((e) => e.url === url)) continue;
    const { route, created } = await step(`Mapping route ${url}`, () => ensureRoute(s, { ...parts, domainGuid: domain.guid }));
    if (!route.destinations.some((d) => d.app.guid === app.guid)) await step(`Mapping route ${url}`, () => client.mapRoute(route.guid, app.guid));
    emit({ type: 'route', url, created });
  }
}

/** The route host.domain/path, in whichever readable space it is. */
export async function findRoute(client: CloudControllerClient, r: { host: string; path: string; domainGuid: string }): Promise<Route | undefined> {
  return (await client.routes({ domainGuids: [r.domainGuid], ...(r.host ? { hosts: [r.host] } : {}) })).find((x) => x.host === r.host && x.path === r.path);
}

/** The route host.domain/path in the targeted space: found, or created. */
export async function ensureRoute(s: SpaceSession, r: { host: string; path: string; domainGuid: string; domain: string }): Promise<{ route: Route; created: boolean }> {
  const find = (): Promise<Route | undefined> => findRoute(s.client, r);
  const found = await find();
  if (found) {
    if (found.relationships.space.data?.guid !== s.space.guid) throw new ClientError('usage', `the route ${found.url} belongs to another space`);
    return { route: found, created: false };
  }
  try {
    return { route: await s.client.createRoute({ host: r.host, path: r.path, domainGuid: r.domainGuid, spaceGuid: s.space.guid }), created: true };
  } catch (err) {
    // Someone made it meanwhile: take it if it is ours to take.
    if (err instanceof ApiRequestError && err.title === 'CF-RouteHostTaken') {
      const again = await find();
      if (again && again.relationships.space.data?.guid === s.space.guid) return { route: again, created: false };
    }
    throw err;
  }
}

// ---- staging ----------------------------------------------------------------------------

export interface OpenLogs {
  /** API lines on stderr since the last reset (placement failures, stopped rollouts). */
  apiErrors: LogLine[];
  waitFor(pred: (l: LogLine) => boolean, ms: number): Promise<boolean>;
  close(): void;
}

export async function openLogs(client: CloudControllerClient, app: App, emit: Emit): Promise<OpenLogs> {
  const seen: LogLine[] = [];
  const waiters = new Set<() => void>();
  const apiErrors: LogLine[] = [];
  let stream: LogStream | undefined;
  try {
    stream = await client.streamLogs(app.guid, (line) => {
      seen.push(line);
      if (line.source === 'STG') emit({ type: 'staging-log', line });
      if (line.source === 'API' && line.stream === 'err') apiErrors.push(line);
      for (const w of waiters) w();
    });
    // The stream says when it listens; a proxy that holds that back must not hold up the push.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([stream.ready, new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
  } catch (err) {
    emit({ type: 'warning', text: `cannot follow the staging log (${(err as Error).message}); staging goes on` });
  }
  return {
    apiErrors,
    waitFor: (pred, ms) =>
      new Promise((resolve) => {
        if (!stream || seen.some(pred)) return resolve(!!stream && seen.some(pred));
        const timer = setTimeout(() => {
          waiters.delete(check);
          resolve(false);
        }, ms);
        const check = (): void => {
          if (!seen.some(pred)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(true);
        };
        waiters.add(check);
      }),
    close: () => stream?.close(),
  };
}

export async function stage(client: CloudControllerClient, app: App, packageGuid: string, logs: OpenLogs, opts: PushOptions, emit: Emit): Promise<string> {
  const created = await step(`Staging ${app.name}`, () => client.createBuild(packageGuid));
  emit({ type: 'staging', build: created.guid });
  const deadline = Date.now() + opts.stagingTimeoutMs;
  let build: Build = created;
  while (build.state === 'STAGING') {
    if (Date.now() > deadline) throw new ClientError('timeout', `staging ${app.name} did not end within ${Math.round(opts.stagingTimeoutMs / 1000)} s (build ${build.guid})`);
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
    build = await step(`Staging ${app.name}`, () => client.build(created.guid));
  }
  // The controller logs the build's end after its last staging line: wait for it (briefly),
  // so the staging log printed is whole.
  await logs.waitFor((l) => l.source === 'API' && l.line.includes(build.guid), 2000);
  if (build.state === 'FAILED' || !build.droplet) {
    throw new ClientError('staging_failed', `staging ${app.name} failed: ${build.error ?? 'no reason given'}`);
  }
  emit({ type: 'staged', droplet: build.droplet.guid });
  return build.droplet.guid;
}

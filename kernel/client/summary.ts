// An app at a glance — what `ingot app NAME` prints and a push ends with: requested state,
// routes, droplet, and one row per instance with its state, since when, CPU, memory and disk.
import type { CloudControllerClient } from './api-client.ts';
import type { App, Droplet, InstanceStats, Process } from './api-types.ts';
import { countInstances } from './instances.ts';
import { formatBytes, formatMb } from './size.ts';
import { keyValues, table } from './table.ts';

export interface AppSummary {
  app: App;
  process: Process;
  stats: InstanceStats[];
  routes: string[];
  /** The routes as URLs, when the API's own URL tells how the routers are reached. */
  urls: string[];
  droplet: Droplet | undefined;
}

/**
 * How apps are reached, guessed from the API's URL: an API at `api.<system domain>` is behind
 * the same routers as the apps, so they share its scheme and port.
 */
export interface RouterBase {
  protocol: string;
  port: string;
}

export function routerBase(apiUrl: string, systemDomain: string | undefined): RouterBase | undefined {
  if (!systemDomain) return undefined;
  const u = new URL(apiUrl);
  return u.hostname === `api.${systemDomain}` ? { protocol: u.protocol, port: u.port } : undefined;
}

export function routeUrl(route: string, base: RouterBase): string {
  const slash = route.indexOf('/');
  const host = slash < 0 ? route : route.slice(0, slash);
  const path = slash < 0 ? '' : route.slice(slash);
  return `${base.protocol}//${host}${base.port ? `:${base.port}` : ''}${path}`;
}

export async function appSummary(client: CloudControllerClient, app: App, base?: RouterBase): Promise<AppSummary> {
  const [process, stats, routes, droplet] = await Promise.all([
    client.webProcess(app.guid),
    app.state === 'STARTED' ? client.stats(app.guid) : Promise.resolve([] as InstanceStats[]),
    client.appRoutes(app.guid),
    client.currentDroplet(app.guid),
  ]);
  const urls = routes.map((r) => r.url).sort();
  return { app, process, stats, routes: urls, urls: base ? urls.map((r) => routeUrl(r, base)) : [], droplet };
}

export function renderSummary(s: AppSummary, now = Date.now()): string[] {
  const { app, process, droplet } = s;
  const buildpacks = droplet?.buildpacks?.map((b) => b.name).filter((n): n is string => !!n) ?? [];
  const lines = keyValues([
    ['name', app.name],
    ['requested state', app.state.toLowerCase()],
    ['routes', s.routes.join(', ')],
    ...(s.urls.length ? ([['url', s.urls.join(', ')]] as Array<[string, string]>) : []),
    ['last uploaded', droplet ? droplet.created_at : ''],
    ['stack', droplet?.stack ?? app.lifecycle.data.stack ?? ''],
    ['buildpacks', buildpacks.join(', ') || (app.lifecycle.data.buildpacks ?? []).join(', ')],
  ]);
  const counts = countInstances(s.stats);
  const command = process.command ?? droplet?.process_types?.web ?? '';
  lines.push(
    '',
    ...keyValues([
      ['type', process.type],
      ['instances', app.state === 'STARTED' ? `${counts.running}/${process.instances}` : `0/${process.instances}`],
      ['memory usage', formatMb(process.memory_in_mb)],
      ['disk quota', formatMb(process.disk_in_mb)],
      ['health check', process.health_check.type + (process.health_check.data.endpoint ? ` ${process.health_check.data.endpoint}` : '')],
      ['start command', command],
    ]),
  );
  if (app.state !== 'STARTED') {
    lines.push('', 'There are no running instances of this process.');
    return lines;
  }
  lines.push('', ...table(['', 'state', 'since', 'cpu', 'memory', 'disk', 'details'], s.stats.map((i) => instanceRow(i, now))));
  return lines;
}

export function instanceRow(i: InstanceStats, now = Date.now()): string[] {
  const running = i.state === 'RUNNING' || i.state === 'STARTING';
  const since = running && i.uptime !== undefined ? new Date(now - i.uptime * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') : '';
  const u = i.usage ?? {};
  const cpu = u.cpu !== undefined ? `${(u.cpu * 100).toFixed(1)}%` : '';
  const mem = u.mem !== undefined ? `${formatBytes(u.mem)} of ${formatBytes(i.mem_quota ?? 0)}` : '';
  const disk = u.disk !== undefined ? `${formatBytes(u.disk)} of ${formatBytes(i.disk_quota ?? 0)}` : '';
  return [`#${i.index}`, i.state.toLowerCase(), since, cpu, mem, disk, i.details ?? ''];
}

/** The same, for --json: the API's own shapes. */
export function summaryJson(s: AppSummary): Record<string, unknown> {
  return {
    name: s.app.name,
    guid: s.app.guid,
    state: s.app.state,
    routes: s.routes,
    urls: s.urls,
    instances: s.process.instances,
    memory_in_mb: s.process.memory_in_mb,
    disk_in_mb: s.process.disk_in_mb,
    command: s.process.command ?? s.droplet?.process_types?.web ?? null,
    health_check: s.process.health_check,
    droplet: s.droplet ? { guid: s.droplet.guid, created_at: s.droplet.created_at, buildpacks: s.droplet.buildpacks?.map((b) => b.name) ?? [], stack: s.droplet.stack ?? null } : null,
    stats: s.stats,
  };
}

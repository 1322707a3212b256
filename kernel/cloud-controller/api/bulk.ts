// The health managers' bulk endpoint (CF's /bulk/apps): every STARTED app's desired state,
// paged by an opaque cursor, behind the HMs' own Basic credential (config bulk_api).
//   GET /bulk/apps?batch_size=N&bulk_token={"id":"<last guid>"}
//   → {results: {<app guid>: {id, name, version, instances, state, package_state, memory,
//      disk, updated_at}}, bulk_token: {id}}; an empty `results` ends the walk.
import { z } from 'zod';
import type { AppRecord } from '../db/mod.ts';
import { errors } from '../errors.ts';
import { parseQuery } from '../http/query.ts';
import type { ApiServer } from '../http/server.ts';
import { webProcess } from '../lookups.ts';
import { time } from '../presenters.ts';
import { ok } from './common.ts';
import type { Deps } from './deps.ts';

const bulkQuery = z
  .object({
    batch_size: z.string().regex(/^\d+$/, 'must be a positive integer').transform(Number).refine((n) => n >= 1 && n <= 5000, 'must be between 1 and 5000').default('500'),
    bulk_token: z.string().max(1024).default('{}'),
  })
  .strict();

export type PackageState = 'STAGED' | 'PENDING' | 'FAILED';

export function registerBulk(server: ApiServer, d: Deps): void {
  server.route('GET', '/bulk/apps', 'bulk', async (ctx) => {
    const q = parseQuery(ctx.query, bulkQuery);
    let after = '';
    try {
      const token = JSON.parse(q.bulk_token) as { id?: unknown };
      if (token.id !== undefined) after = String(token.id);
    } catch {
      throw errors.badQuery('bulk_token must be JSON such as {"id":"<guid>"}');
    }
    const apps = await d.store.startedAppsAfter(after, q.batch_size);
    const results: Record<string, unknown> = {};
    for (const app of apps) results[app.guid] = await desiredState(d, app);
    return ok({ results, bulk_token: { id: apps.at(-1)?.guid ?? after } });
  });

  // The desired state of one app, for an HM that heard droplet.updated about it.
  server.route('GET', '/bulk/apps/:guid', 'bulk', async (ctx) => {
    const app = await d.store.apps.get(ctx.params.guid!);
    if (!app) throw errors.notFound('App');
    return ok(await desiredState(d, app));
  });
}

async function desiredState(d: Deps, app: AppRecord) {
  const process = await webProcess(d.store, app.guid);
  return {
    id: app.guid,
    name: app.name,
    version: app.version,
    instances: process?.instances ?? 0,
    state: app.state,
    package_state: await packageState(d, app),
    memory: process?.memory_in_mb ?? 0,
    disk: process?.disk_in_mb ?? 0,
    updated_at: time(app.updated_at),
  };
}

/** STAGED when the app has a staged current droplet; else the state of its latest build. */
async function packageState(d: Deps, app: AppRecord): Promise<PackageState> {
  if (app.droplet_guid) {
    const droplet = await d.store.droplets.get(app.droplet_guid);
    if (droplet?.state === 'STAGED') return 'STAGED';
  }
  const [latest] = await d.store.builds.list({ app_guid: app.guid }, { orderBy: { column: 'created_at', desc: true }, limit: 1 });
  return latest?.state === 'FAILED' ? 'FAILED' : 'PENDING';
}

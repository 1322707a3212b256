// Reads that span tables: an app's route URIs, and everything a DEA needs to run it.
import type { AppRecord, ProcessRecord, RouteRecord, Store } from './db/mod.ts';
import type { Runnable } from './placement.ts';
import { routeUri } from './route-names.ts';
import type { CredentialBox } from './services/credential-box.ts';
import { appServices } from './services/vcap.ts';

export const WEB = 'web';

export async function webProcess(store: Store, appGuid: string): Promise<ProcessRecord | undefined> {
  return store.processes.find({ app_guid: appGuid, type: WEB });
}

/** host.domain/path of each route mapped to the app. */
export async function appUris(store: Store, appGuid: string): Promise<string[]> {
  const mappings = await store.routeMappings.list({ app_guid: appGuid });
  const routes = await store.routes.list({ guid: mappings.map((m) => m.route_guid) });
  return routesToUris(store, routes);
}

export async function routesToUris(store: Store, routes: RouteRecord[]): Promise<string[]> {
  const domains = new Map((await store.domains.list({ guid: [...new Set(routes.map((r) => r.domain_guid))] })).map((d) => [d.guid, d.name]));
  return routes.map((r) => routeUri(r.host, domains.get(r.domain_guid) ?? '', r.path)).sort();
}

/** The app with its web process, current droplet (staged), URIs and bound services; undefined if it cannot run. */
export async function loadRunnable(store: Store, app: AppRecord, box: CredentialBox): Promise<Runnable | undefined> {
  if (!app.droplet_guid) return undefined;
  const [process, droplet, uris, services] = await Promise.all([
    webProcess(store, app.guid),
    store.droplets.get(app.droplet_guid),
    appUris(store, app.guid),
    appServices(store, box, app.guid),
  ]);
  if (!process || !droplet || droplet.state !== 'STAGED' || !droplet.sha256) return undefined;
  return { app, process, droplet: { ...droplet, sha256: droplet.sha256 }, uris, services };
}

// What every app command starts from: the stored target (API URL, tokens, org and space), an
// API client that keeps refreshed tokens in the store, and lookups by name in the targeted
// space ("app web not found in space default/dev").
import { CloudControllerClient, type Tokens } from './api-client.ts';
import type { App } from './api-types.ts';
import { ConfigStore, type ApiTarget, type Named } from './config-store.ts';
import { ClientError } from './errors.ts';
import { routerBase, type RouterBase } from './summary.ts';

export interface Session {
  store: ConfigStore;
  target: ApiTarget;
  client: CloudControllerClient;
}

export interface SpaceSession extends Session {
  organization: Named;
  space: Named;
}

export async function openSession(store = new ConfigStore(), opts: { requireLogin?: boolean } = {}): Promise<Session> {
  const target = await store.api();
  if (!target) throw new ClientError('no_api', 'no API is set; run ingot api URL first');
  if ((opts.requireLogin ?? true) && !target.access_token) throw new ClientError('not_logged_in', `not logged in to ${target.url}; run ingot login`);
  const tokens: Tokens | undefined =
    target.access_token && target.refresh_token ? { access_token: target.access_token, refresh_token: target.refresh_token, expires_at: target.expires_at ?? 0 } : undefined;
  const client = new CloudControllerClient({
    url: target.url,
    tokens,
    onTokens: async (t) => {
      await store.updateApi((cur) => ({ ...cur, access_token: t.access_token, refresh_token: t.refresh_token, expires_at: t.expires_at }));
    },
  });
  return { store, target, client };
}

export async function openSpaceSession(store = new ConfigStore()): Promise<SpaceSession> {
  const s = await openSession(store);
  const { organization, space } = s.target;
  if (!organization || !space) throw new ClientError('usage', 'no space is targeted; run ingot target -o ORG -s SPACE');
  return { ...s, organization, space };
}

/** How this target's apps are reached (see summary.ts routerBase). */
export function targetRouterBase(s: Session): RouterBase | undefined {
  return routerBase(s.target.url, s.target.system_domain);
}

export function spaceLabel(s: SpaceSession): string {
  return `${s.organization.name}/${s.space.name}`;
}

/** The app of that name in the targeted space, or a one-line error. */
export async function findApp(s: SpaceSession, name: string): Promise<App> {
  const found = await lookupApp(s, name);
  if (!found) throw new ClientError('not_found', `app ${name} not found in space ${spaceLabel(s)}`);
  return found;
}

export async function lookupApp(s: SpaceSession, name: string): Promise<App | undefined> {
  const [app] = await s.client.apps(s.space.guid, [name]);
  return app;
}

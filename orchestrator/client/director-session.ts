// Where the CLI keeps its director target between commands: the `director` key of the same
// config file as the controller's target (kernel/client/config-store.ts), so the two never
// overwrite each other. Every director command starts from openDirector; its errors say which
// command to run.
import { z } from 'zod';
import { ConfigStore } from '../../kernel/client/config-store.ts';
import { ClientError } from '../../kernel/client/errors.ts';
import { DirectorClient, RELOGIN_HINT } from './director-client.ts';

const SECTION = 'director';

const directorTarget = z.object({
  url: z.string(),
  name: z.string().optional(),
  uuid: z.string().optional(),
  user: z.string().optional(),
  access_token: z.string().optional(),
  /** ms since the epoch */
  expires_at: z.number().optional(),
});
export type DirectorTarget = z.infer<typeof directorTarget>;

/** The error classes of the director commands that ClientError has no code for. */
export class DirectorCliError extends Error {
  override name = 'DirectorCliError';
  constructor(
    readonly code: 'no_director' | 'task_failed' | 'declined',
    message: string,
  ) {
    super(message);
  }
}

export const NO_DIRECTOR = 'no director is targeted; run ingot director URL';

export async function loadDirectorTarget(store: ConfigStore): Promise<DirectorTarget | undefined> {
  const raw = await store.section(SECTION);
  if (raw === undefined) return undefined;
  const parsed = directorTarget.safeParse(raw);
  if (!parsed.success) throw new ClientError('bad_path', `${store.file}: the director target is damaged; run ingot director URL again`);
  return parsed.data;
}

export function saveDirectorTarget(store: ConfigStore, target: DirectorTarget | undefined): Promise<void> {
  return store.saveSection(SECTION, target);
}

export interface DirectorSession {
  store: ConfigStore;
  target: DirectorTarget;
  client: DirectorClient;
}

export async function openDirector(store = new ConfigStore(), opts: { requireLogin?: boolean; now?: () => number } = {}): Promise<DirectorSession> {
  const target = await loadDirectorTarget(store);
  if (!target) throw new DirectorCliError('no_director', NO_DIRECTOR);
  if (opts.requireLogin ?? true) {
    if (!target.access_token) throw new ClientError('not_logged_in', `not logged in to the director ${target.url}; ${RELOGIN_HINT}`);
    if (target.expires_at !== undefined && target.expires_at <= (opts.now ?? Date.now)()) {
      throw new ClientError('session_expired', `the director session of ${target.user ?? 'the admin'} at ${target.url} has expired; ${RELOGIN_HINT}`);
    }
  }
  return { store, target, client: new DirectorClient({ url: target.url, token: target.access_token }) };
}

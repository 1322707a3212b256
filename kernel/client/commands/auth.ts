// `ingot api`, `login`, `logout`, `target` and `create-user`: where the CLI points, who it
// is, and which organization and space the app commands act in.
import type { Argv } from 'yargs';
import { CloudControllerClient } from '../api-client.ts';
import { ConfigStore, type ApiTarget, type Named } from '../config-store.ts';
import { ApiRequestError, ClientError, ClientUsageError, step } from '../errors.ts';
import { openSession } from '../session.ts';
import { jsonOption, print, printJson } from './common.ts';
import { ask, canPrompt } from './prompt.ts';

/** `api.example.com` → `https://api.example.com`; `*.localhost` and IPs default to http. */
export function normalizeApiUrl(input: string): string {
  let text = input.trim().replace(/\/+$/, '');
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const host = text.split(/[/:]/)[0]!.toLowerCase();
    const local = host === 'localhost' || host.endsWith('.localhost') || /^\d+\.\d+\.\d+\.\d+$/.test(host);
    text = `${local ? 'http' : 'https'}://${text}`;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ClientUsageError(`"${input}" is not a URL; e.g. ingot api http://api.localhost:8080`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ClientUsageError(`"${input}": the API URL must be http or https`);
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

export function authCommands(y: Argv): Argv {
  return y
    .command(
      'api [url]',
      'Set or show the cloud controller this CLI talks to',
      (a) => a.positional('url', { type: 'string', describe: 'The API URL, e.g. http://api.localhost:8080' }).option('json', jsonOption),
      async (args) => {
        const store = new ConfigStore();
        if (!args.url) {
          const cur = await store.api();
          if (args.json) return printJson(cur ? { url: cur.url, system_domain: cur.system_domain ?? null, apps_domain: cur.apps_domain ?? null } : null);
          return print(cur ? `API endpoint: ${cur.url}` : 'No API endpoint set. Use ingot api URL to set one.');
        }
        const url = normalizeApiUrl(args.url);
        const info = await step(`Setting the API to ${url}`, () => new CloudControllerClient({ url }).info());
        if (info.name !== 'ingot') throw new ClientError('bad_response', `${url} is not an Ingot API (it calls itself ${info.name})`);
        const cur = await store.api();
        const next: ApiTarget = cur && cur.url === url ? { ...cur } : { url };
        next.system_domain = info.custom.system_domain;
        next.apps_domain = info.custom.apps_domain;
        await store.saveApi(next);
        if (args.json) return printJson({ url, system_domain: next.system_domain, apps_domain: next.apps_domain });
        print([`Setting API endpoint to ${url}... OK`, `apps domain: ${info.custom.apps_domain}`, cur && cur.url === url && cur.access_token ? '' : 'Not logged in. Use ingot login to log in.'].filter(Boolean));
      },
    )
    .command(
      'login',
      'Log in to the cloud controller (password grant)',
      (a) =>
        a
          .option('u', { alias: 'username', type: 'string', describe: 'User name (or $INGOT_USERNAME)' })
          .option('p', { alias: 'password', type: 'string', describe: 'Password (or $INGOT_PASSWORD); asked for when absent on a terminal' })
          .option('o', { alias: 'org', type: 'string', describe: 'Organization to target' })
          .option('s', { alias: 'space', type: 'string', describe: 'Space to target' }),
      async (args) => {
        const store = new ConfigStore();
        const cur = await store.api();
        if (!cur) throw new ClientError('no_api', 'no API is set; run ingot api URL first');
        let username = args.u ?? process.env.INGOT_USERNAME;
        let password = args.p ?? process.env.INGOT_PASSWORD;
        if (!username || !password) {
          if (!canPrompt()) throw new ClientUsageError('give -u USER and -p PASSWORD (there is no terminal to ask on)');
          username ??= await ask('Username: ');
          password ??= await ask('Password: ', { secret: true });
        }
        const client = new CloudControllerClient({ url: cur.url });
        let tokens;
        try {
          tokens = await client.passwordGrant(username, password);
        } catch (err) {
          if (err instanceof ApiRequestError && err.status === 401) throw new ClientError('not_logged_in', `login as ${username} failed: ${err.detail}`);
          throw err;
        }
        const next: ApiTarget = { ...cur, user: username, access_token: tokens.access_token, refresh_token: tokens.refresh_token, expires_at: tokens.expires_at };
        delete next.organization;
        delete next.space;
        await store.saveApi(next);
        const lines = [`Authenticated as ${username} at ${cur.url}.`];
        const picked = await pickTarget(store, args.o, args.s, { auto: true, previous: { organization: cur.organization, space: cur.space } });
        lines.push(...describeTarget(picked));
        print(lines);
      },
    )
    .command(
      'logout',
      'Forget the tokens of the current API',
      (a) => a,
      async () => {
        const store = new ConfigStore();
        const cur = await store.api();
        if (!cur) return print('Not logged in.');
        const { access_token: _a, refresh_token: _r, expires_at: _e, user: _u, organization: _o, space: _s, ...rest } = cur;
        await store.saveApi(rest);
        print(`Logged out of ${cur.url}.`);
      },
    )
    .command(
      'target',
      'Show or set the targeted organization and space',
      (a) => a.option('o', { alias: 'org', type: 'string', describe: 'Organization' }).option('s', { alias: 'space', type: 'string', describe: 'Space' }).option('json', jsonOption),
      async (args) => {
        const store = new ConfigStore();
        if (args.o || args.s) await pickTarget(store, args.o, args.s, { auto: false });
        const s = await openSession(store);
        const t = s.target;
        if (args.json) {
          return printJson({ api: t.url, user: t.user ?? null, organization: t.organization?.name ?? null, space: t.space?.name ?? null });
        }
        print([`API endpoint:   ${t.url}`, `user:           ${t.user ?? ''}`, `org:            ${t.organization?.name ?? '(none; ingot target -o ORG)'}`, `space:          ${t.space?.name ?? '(none; ingot target -s SPACE)'}`]);
      },
    )
    .command(
      'create-user <username> <password>',
      'Create a user (admins only)',
      (a) =>
        a
          .positional('username', { type: 'string', demandOption: true })
          .positional('password', { type: 'string', demandOption: true, describe: 'At least 8 characters' })
          .option('admin', { type: 'boolean', default: false, describe: 'Make the user an admin' }),
      async (args) => {
        const s = await openSession();
        if (args.password.length < 8) throw new ClientUsageError('the password must be at least 8 characters');
        const user = await step(`Creating user ${args.username}`, () => s.client.createUser(args.username, args.password, args.admin));
        print(`Created user ${user.username}${user.admin ? ' (admin)' : ''}.`);
      },
    );
}

/**
 * Targets an organization and space by name; `auto` (after login) takes the only
 * organization (or the one targeted before, if it still exists) and the only space, and
 * never fails on ambiguity.
 */
async function pickTarget(
  store: ConfigStore,
  orgName: string | undefined,
  spaceName: string | undefined,
  opts: { auto: boolean; previous?: { organization?: Named | undefined; space?: Named | undefined } },
): Promise<{ organization?: Named; space?: Named }> {
  const s = await openSession(store);
  let organization: Named | undefined = s.target.organization;
  let space: Named | undefined = orgName ? undefined : s.target.space;
  if (orgName) {
    const [org] = await s.client.organizations([orgName]);
    if (!org) throw new ClientError('not_found', `organization ${orgName} not found`);
    organization = { guid: org.guid, name: org.name };
  } else if (opts.auto) {
    const orgs = await s.client.organizations();
    const before = opts.previous?.organization && orgs.find((o) => o.guid === opts.previous!.organization!.guid);
    const only = orgs.length === 1 ? orgs[0] : undefined;
    const org = before ?? only;
    organization = org ? { guid: org.guid, name: org.name } : undefined;
    if (before && opts.previous?.space && !spaceName) {
      const [sp] = (await s.client.spaces(before.guid)).filter((x) => x.guid === opts.previous!.space!.guid);
      space = sp ? { guid: sp.guid, name: sp.name } : undefined;
    }
  } else if (!organization) {
    throw new ClientUsageError('no organization is targeted; give -o ORG');
  }
  if (organization) {
    if (spaceName) {
      const [sp] = await s.client.spaces(organization.guid, [spaceName]);
      if (!sp) throw new ClientError('not_found', `space ${spaceName} not found in organization ${organization.name}`);
      space = { guid: sp.guid, name: sp.name };
    } else if (!space) {
      const spaces = await s.client.spaces(organization.guid);
      space = spaces.length === 1 ? { guid: spaces[0]!.guid, name: spaces[0]!.name } : undefined;
    }
  }
  await store.updateApi((cur) => {
    const next = { ...cur };
    if (organization) next.organization = organization;
    else delete next.organization;
    if (space) next.space = space;
    else delete next.space;
    return next;
  });
  return { ...(organization ? { organization } : {}), ...(space ? { space } : {}) };
}

function describeTarget(t: { organization?: Named; space?: Named }): string[] {
  if (!t.organization) return ['No organization targeted; use ingot target -o ORG -s SPACE.'];
  if (!t.space) return [`Targeted org ${t.organization.name}; no space targeted (ingot target -s SPACE).`];
  return [`Targeted org ${t.organization.name}, space ${t.space.name}.`];
}

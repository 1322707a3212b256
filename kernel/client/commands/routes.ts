// `ingot routes`, `map-route` and `unmap-route`: the routes of the targeted space and which
// apps they lead to. Mapping a started app's route reaches its instances without a restart.
import type { Argv } from 'yargs';
import { ClientError, step } from '../errors.ts';
import { ensureRoute } from '../push.ts';
import { findApp, openSpaceSession, type SpaceSession } from '../session.ts';
import { table } from '../table.ts';
import { jsonOption, print, printJson } from './common.ts';

function routeArgs<T>(a: Argv<T>) {
  return a
    .positional('name', { type: 'string', demandOption: true, describe: 'The app' })
    .positional('domain', { type: 'string', demandOption: true, describe: 'A domain of the platform' })
    .option('hostname', { alias: 'n', type: 'string', default: '', describe: 'Host in the domain' })
    .option('path', { type: 'string', default: '', describe: 'Path prefix, e.g. /api' });
}

async function domainNamed(s: SpaceSession, name: string) {
  const [d] = await s.client.domains([name.toLowerCase()]);
  if (!d) throw new ClientError('not_found', `domain ${name} not found`);
  return d;
}

export function routeCommands(y: Argv): Argv {
  return y
    .command(
      'routes',
      'List the routes of the targeted space',
      (a) => a.option('json', jsonOption),
      async (args) => {
        const s = await openSpaceSession();
        const [routes, apps, domains] = await Promise.all([s.client.routes({ spaceGuid: s.space.guid }), s.client.apps(s.space.guid), s.client.domains()]);
        const nameOf = new Map(apps.map((a) => [a.guid, a.name]));
        const rows = routes.map((r) => ({
          url: r.url,
          host: r.host,
          domain: domains.find((d) => d.guid === r.relationships.domain.data?.guid)?.name ?? '',
          path: r.path,
          apps: r.destinations.map((d) => nameOf.get(d.app.guid) ?? d.app.guid),
        }));
        if (args.json) return printJson(rows);
        print(`Getting routes for org ${s.organization.name} / space ${s.space.name}...`);
        if (rows.length === 0) return print('No routes found.');
        print(['', ...table(['host', 'domain', 'path', 'apps'], rows.map((r) => [r.host, r.domain, r.path, r.apps.join(', ')]))]);
      },
    )
    .command(
      'map-route <name> <domain>',
      'Map a route (created when missing) to an app',
      (a) => routeArgs(a),
      async (args) => {
        const s = await openSpaceSession();
        const app = await findApp(s, args.name);
        const domain = await domainNamed(s, args.domain);
        const url = `${args.hostname ? `${args.hostname}.` : ''}${domain.name}${args.path}`;
        const { route } = await step(`Mapping route ${url}`, () => ensureRoute(s, { host: args.hostname.toLowerCase(), path: args.path, domainGuid: domain.guid, domain: domain.name }));
        if (!route.destinations.some((d) => d.app.guid === app.guid)) await step(`Mapping route ${url}`, () => s.client.mapRoute(route.guid, app.guid));
        print(`Mapped route ${route.url} to app ${app.name}.`);
      },
    )
    .command(
      'unmap-route <name> <domain>',
      'Unmap a route from an app (the route stays)',
      (a) => routeArgs(a),
      async (args) => {
        const s = await openSpaceSession();
        const app = await findApp(s, args.name);
        const domain = await domainNamed(s, args.domain);
        const host = args.hostname.toLowerCase();
        const url = `${host ? `${host}.` : ''}${domain.name}${args.path}`;
        const route = (await s.client.routes({ domainGuids: [domain.guid], ...(host ? { hosts: [host] } : {}) })).find((r) => r.host === host && r.path === args.path);
        if (!route) throw new ClientError('not_found', `route ${url} not found`);
        const dest = route.destinations.find((d) => d.app.guid === app.guid);
        if (!dest) return print(`Route ${url} was not mapped to app ${app.name}.`);
        await step(`Unmapping route ${url}`, () => s.client.unmapDestination(route.guid, dest.guid));
        print(`Unmapped route ${url} from app ${app.name}.`);
      },
    );
}

// `ingot routes`, `create-route`, `delete-route`, `map-route` and `unmap-route`: the routes of
// the targeted space and which apps they lead to. Mapping a started app's route reaches its
// instances without a restart.
import type { Argv } from 'yargs';
import { ClientError, step } from '../errors.ts';
import { domainProblem, hostProblem, pathProblem, routeUri } from '../names.ts';
import { ensureRoute, findRoute } from '../push.ts';
import { findApp, openSpaceSession, type SpaceSession } from '../session.ts';
import { table } from '../table.ts';
import { forceOption, jsonOption, nameArg, print, printJson } from './common.ts';
import { confirmDelete } from './prompt.ts';

function routeFlags<T>(a: Argv<T>) {
  return a
    .positional('domain', { type: 'string', demandOption: true, describe: 'A domain of the platform' })
    .option('hostname', { alias: 'n', type: 'string', default: '', describe: 'Host in the domain' })
    .option('path', { type: 'string', default: '', describe: 'Path prefix, e.g. /api' });
}

function routeArgs<T>(a: Argv<T>) {
  return routeFlags(a.positional('name', { type: 'string', demandOption: true, describe: 'The app' }));
}

/** The route a domain argument and --hostname/--path name, checked before any request. */
function routeParts(args: { domain: string; hostname: string; path: string }): { domain: string; host: string; path: string; url: string } {
  const domain = nameArg('domain', args.domain.toLowerCase(), domainProblem);
  const host = nameArg('--hostname', args.hostname.toLowerCase(), hostProblem);
  const path = nameArg('--path', args.path, pathProblem);
  return { domain, host, path, url: routeUri(host, domain, path) };
}

type RouteParts = ReturnType<typeof routeParts>;

async function domainNamed(s: SpaceSession, name: string) {
  const [d] = await s.client.domains([name.toLowerCase()]);
  if (!d) throw new ClientError('not_found', `domain ${name} not found`);
  return d;
}

/** The named route in the targeted space: found, or created (`doing` says why, in an error). */
async function ensureRouteNamed(s: SpaceSession, parts: RouteParts, doing: string) {
  const domain = await domainNamed(s, parts.domain);
  return step(`${doing} ${parts.url}`, () => ensureRoute(s, { host: parts.host, path: parts.path, domainGuid: domain.guid, domain: domain.name }));
}

/** The named route, in whichever readable space it is, or undefined. */
async function routeNamed(s: SpaceSession, parts: RouteParts) {
  const domain = await domainNamed(s, parts.domain);
  return findRoute(s.client, { host: parts.host, path: parts.path, domainGuid: domain.guid });
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
      'create-route <domain>',
      'Create a route in the targeted space, mapped to no app yet (one there already is no error)',
      (a) => routeFlags(a),
      async (args) => {
        const parts = routeParts(args);
        const s = await openSpaceSession();
        const { route, created } = await ensureRouteNamed(s, parts, 'Creating route');
        print(created ? `Created route ${route.url} in org ${s.organization.name} / space ${s.space.name}.` : `Route ${route.url} already exists.`);
      },
    )
    .command(
      'delete-route <domain>',
      'Delete a route of the targeted space (the apps mapped to it lose it)',
      (a) => routeFlags(a).option('f', forceOption),
      async (args) => {
        const parts = routeParts(args);
        const s = await openSpaceSession();
        const route = await routeNamed(s, parts);
        if (!route) return print(`Route ${parts.url} does not exist.`);
        if (route.relationships.space.data?.guid !== s.space.guid) throw new ClientError('usage', `the route ${route.url} belongs to another space`);
        if (!(await confirmDelete(args.f, `the route ${route.url}`))) return print('Delete cancelled.');
        await step(`Deleting route ${route.url}`, () => s.client.deleteRoute(route.guid));
        print(`Deleted route ${route.url}.`);
      },
    )
    .command(
      'map-route <name> <domain>',
      'Map a route (created when missing) to an app',
      (a) => routeArgs(a),
      async (args) => {
        const parts = routeParts(args);
        const s = await openSpaceSession();
        const app = await findApp(s, args.name);
        const { route } = await ensureRouteNamed(s, parts, 'Mapping route');
        if (!route.destinations.some((d) => d.app.guid === app.guid)) await step(`Mapping route ${parts.url}`, () => s.client.mapRoute(route.guid, app.guid));
        print(`Mapped route ${route.url} to app ${app.name}.`);
      },
    )
    .command(
      'unmap-route <name> <domain>',
      'Unmap a route from an app (the route stays)',
      (a) => routeArgs(a),
      async (args) => {
        const parts = routeParts(args);
        const s = await openSpaceSession();
        const app = await findApp(s, args.name);
        const route = await routeNamed(s, parts);
        if (!route) throw new ClientError('not_found', `route ${parts.url} not found`);
        const dest = route.destinations.find((d) => d.app.guid === app.guid);
        if (!dest) return print(`Route ${parts.url} was not mapped to app ${app.name}.`);
        await step(`Unmapping route ${parts.url}`, () => s.client.unmapDestination(route.guid, dest.guid));
        print(`Unmapped route ${parts.url} from app ${app.name}.`);
      },
    );
}

// `ingot apps`, `app`, `scale`, `start`, `stop`, `restart`, `restage`, `rename` and `delete`:
// an app's lifecycle after its push. Commands that (re)start instances wait until they run.
import type { Argv } from 'yargs';
import type { InstanceStats } from '../api-types.ts';
import { ClientError, step } from '../errors.ts';
import { countInstances } from '../instances.ts';
import { appNameProblem } from '../names.ts';
import { openLogs, stage } from '../push.ts';
import { findApp, lookupApp, openSpaceSession, targetRouterBase } from '../session.ts';
import { formatMb } from '../size.ts';
import { appSummary, renderSummary, summaryJson } from '../summary.ts';
import { table } from '../table.ts';
import { actThenWait, countFlag, jsonOption, nameArg, print, printJson, renderer, sizeFlag, stagingTimeoutMs } from './common.ts';
import { confirmDelete } from './prompt.ts';

const strategyOption = { type: 'string', choices: ['rolling'], describe: 'rolling: replace instances one at a time, never all down' } as const;

export function appCommands(y: Argv): Argv {
  return y
    .command(
      'apps',
      'List the apps of the targeted space',
      (a) => a.option('json', jsonOption),
      async (args) => {
        const s = await openSpaceSession();
        const apps = await s.client.apps(s.space.guid);
        const [processes, routes] = await Promise.all([s.client.processes(apps.map((a) => a.guid)), s.client.routes({ spaceGuid: s.space.guid })]);
        const stats = await Promise.all(apps.map((a) => (a.state === 'STARTED' ? s.client.stats(a.guid) : Promise.resolve([] as InstanceStats[]))));
        const rows = apps.map((app, i) => {
          const proc = processes.find((p) => p.relationships?.app.data?.guid === app.guid || p.guid === app.guid);
          const c = countInstances(stats[i]!);
          return {
            name: app.name,
            guid: app.guid,
            state: app.state,
            instances: proc?.instances ?? 0,
            running: c.running,
            memory_in_mb: proc?.memory_in_mb ?? null,
            disk_in_mb: proc?.disk_in_mb ?? null,
            routes: routes.filter((r) => r.destinations.some((d) => d.app.guid === app.guid)).map((r) => r.url).sort(),
          };
        });
        if (args.json) return printJson(rows);
        print(`Getting apps in org ${s.organization.name} / space ${s.space.name} as ${s.target.user ?? '?'}...`);
        if (rows.length === 0) return print('No apps found.');
        print(['', ...table(['name', 'requested state', 'instances', 'memory', 'disk', 'routes'], rows.map((r) => [r.name, r.state.toLowerCase(), `${r.state === 'STARTED' ? r.running : 0}/${r.instances}`, r.memory_in_mb ? formatMb(r.memory_in_mb) : '', r.disk_in_mb ? formatMb(r.disk_in_mb) : '', r.routes.join(', ')]))]);
      },
    )
    .command(
      'app <name>',
      "Show an app: state, routes, and each instance's state, CPU, memory, disk and uptime",
      (a) => a.positional('name', { type: 'string', demandOption: true }).option('json', jsonOption),
      async (args) => {
        const s = await openSpaceSession();
        const summary = await appSummary(s.client, await findApp(s, args.name), targetRouterBase(s));
        if (args.json) return printJson(summaryJson(summary));
        print(renderSummary(summary));
      },
    )
    .command(
      'scale <name>',
      'Change the instances, memory or disk of an app (no flag: show them)',
      (a) =>
        a
          .positional('name', { type: 'string', demandOption: true })
          .option('i', { alias: 'instances', type: 'number', describe: 'Number of instances' })
          .option('m', { alias: 'memory', type: 'string', describe: 'Memory per instance, e.g. 256M, 1G (replaces every instance)' })
          .option('k', { alias: 'disk', type: 'string', describe: 'Disk per instance, e.g. 1G (replaces every instance)' })
          .option('json', jsonOption),
      async (args) => {
        const change: { instances?: number; memory_in_mb?: number; disk_in_mb?: number } = {};
        const i = countFlag(args.i, '-i');
        const m = sizeFlag(args.m, '-m');
        const k = sizeFlag(args.k, '-k');
        if (i !== undefined) change.instances = i;
        if (m !== undefined) change.memory_in_mb = m;
        if (k !== undefined) change.disk_in_mb = k;
        const s = await openSpaceSession();
        const app = await findApp(s, args.name);
        if (Object.keys(change).length === 0) {
          const p = await s.client.webProcess(app.guid);
          if (args.json) return printJson({ instances: p.instances, memory_in_mb: p.memory_in_mb, disk_in_mb: p.disk_in_mb });
          return print([`instances: ${p.instances}`, `memory:    ${formatMb(p.memory_in_mb)}`, `disk:      ${formatMb(p.disk_in_mb)}`]);
        }
        if (!args.json) print(`Scaling app ${app.name}...`);
        const summary = await actThenWait(s, app, `Scaling ${app.name}`, () => s.client.scale(app.guid, change), { emit: args.json ? () => undefined : undefined });
        if (args.json) printJson(summaryJson(summary));
      },
    )
    .command(
      'start <name>',
      'Start an app and wait until its instances run',
      (a) => a.positional('name', { type: 'string', demandOption: true }),
      async (args) => {
        const s = await openSpaceSession();
        const app = await findApp(s, args.name);
        print(`Starting app ${app.name}...`);
        await actThenWait(s, app, `Starting ${app.name}`, () => s.client.start(app.guid));
      },
    )
    .command(
      'stop <name>',
      'Stop every instance of an app',
      (a) => a.positional('name', { type: 'string', demandOption: true }),
      async (args) => {
        const s = await openSpaceSession();
        const app = await findApp(s, args.name);
        await step(`Stopping ${app.name}`, () => s.client.stop(app.guid));
        print(`Stopped app ${app.name}.`);
      },
    )
    .command(
      'restart <name>',
      'Restart an app (all at once, or --strategy rolling) and wait until it runs',
      (a) => a.positional('name', { type: 'string', demandOption: true }).option('strategy', strategyOption),
      async (args) => {
        const s = await openSpaceSession();
        const app = await findApp(s, args.name);
        const rolling = args.strategy === 'rolling';
        print(rolling ? `Restarting app ${app.name} one instance at a time...` : `Restarting app ${app.name}...`);
        await actThenWait(s, app, `Restarting ${app.name}`, () => s.client.restart(app.guid, rolling ? 'rolling' : 'recreate'), { verb: rolling ? 'updated and running' : 'running' });
      },
    )
    .command(
      'restage <name>',
      'Stage the app\'s current package again (new buildpacks, env), then restart it',
      (a) => a.positional('name', { type: 'string', demandOption: true }).option('strategy', strategyOption),
      async (args) => {
        const s = await openSpaceSession();
        const app = await findApp(s, args.name);
        const packages = await s.client.packages(app.guid, ['READY']);
        const droplet = await s.client.currentDroplet(app.guid);
        const fromDroplet = droplet?.links.package?.href.split('/').pop();
        const pkg = packages.find((p) => p.guid === fromDroplet) ?? packages[0];
        if (!pkg) throw new ClientError('not_found', `${app.name} has no uploaded package to restage; push it`);
        const r = renderer();
        print(`Restaging app ${app.name}...`);
        const logs = await openLogs(s.client, app, (e) => r.handle(e));
        let dropletGuid: string;
        try {
          dropletGuid = await stage(s.client, app, pkg.guid, logs, { start: true, strategy: 'recreate', startupTimeoutMs: 0, stagingTimeoutMs: stagingTimeoutMs() }, (e) => r.handle(e));
        } finally {
          logs.close();
        }
        r.flush();
        await step(`Setting the droplet of ${app.name}`, () => s.client.setCurrentDroplet(app.guid, dropletGuid));
        const rolling = args.strategy === 'rolling' && app.state === 'STARTED';
        await actThenWait(s, app, `Restarting ${app.name}`, () => s.client.restart(app.guid, rolling ? 'rolling' : 'recreate'), { verb: rolling ? 'updated and running' : 'running' });
      },
    )
    .command(
      'rename <name> <new-name>',
      'Rename an app (its routes and running instances stay as they are)',
      (a) => a.positional('name', { type: 'string', demandOption: true, describe: 'The app' }).positional('new-name', { type: 'string', demandOption: true, describe: 'Its new name' }),
      async (args) => {
        const newName = nameArg('new-name', args['new-name'], appNameProblem);
        const s = await openSpaceSession();
        const app = await findApp(s, args.name);
        print(`Renaming app ${app.name} to ${newName} in org ${s.organization.name} / space ${s.space.name}...`);
        const renamed = await step(`Renaming app ${app.name} to ${newName}`, () => s.client.rename(app.guid, newName));
        print(`Renamed app ${app.name} to ${renamed.name}.`);
      },
    )
    .command(
      'delete <name>',
      'Delete an app (and, with -r, its routes)',
      (a) =>
        a
          .positional('name', { type: 'string', demandOption: true })
          .option('f', { alias: 'force', type: 'boolean', default: false, describe: 'Do not ask for confirmation' })
          .option('r', { alias: 'delete-routes', type: 'boolean', default: false, describe: 'Also delete the routes mapped to the app' }),
      async (args) => {
        const s = await openSpaceSession();
        const app = await lookupApp(s, args.name);
        if (!app) return print(`App ${args.name} does not exist.`);
        if (!(await confirmDelete(args.f, args.name, `Really delete the app ${args.name}? [yN]: `))) return print('Delete cancelled.');
        const routes = args.r ? await s.client.appRoutes(app.guid) : [];
        await step(`Deleting app ${app.name}`, () => s.client.deleteApp(app.guid));
        for (const route of routes) {
          // A route another app still uses stays.
          if (route.destinations.some((d) => d.app.guid !== app.guid)) continue;
          await step(`Deleting route ${route.url}`, () => s.client.deleteRoute(route.guid));
        }
        print(`Deleted app ${app.name}${routes.length ? ` and its routes (${routes.map((r) => r.url).join(', ')})` : ''}.`);
      },
    );
}

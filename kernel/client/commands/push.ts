// `ingot push [NAME]`: the app(s) from the manifest (`-f`, or ./manifest.yml when present),
// overridden by flags for a single app, each pushed with push.ts and rendered as it goes.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { ClientUsageError } from '../errors.ts';
import { loadManifest, overlay, type AppSpec, type HealthCheckType } from '../manifest.ts';
import { push } from '../push.ts';
import { openSpaceSession } from '../session.ts';
import { countFlag, renderer, sizeFlag, stagingTimeoutMs, startupTimeoutMs } from './common.ts';

export function pushCommands(y: Argv): Argv {
  return y.command(
    'push [name]',
    'Push an app: upload its files, stage them, and run it',
    (a) =>
      a
        .positional('name', { type: 'string', describe: 'The app (required without a manifest; picks one app of a manifest)' })
        .option('p', { alias: 'path', type: 'string', describe: 'The app directory, or a .zip/.jar/.war (default: the current directory)' })
        .option('f', { alias: 'manifest', type: 'string', describe: 'The manifest (default: ./manifest.yml when it exists)' })
        .option('no-manifest', { type: 'boolean', default: false, describe: 'Ignore ./manifest.yml' })
        .option('i', { alias: 'instances', type: 'number', describe: 'Number of instances' })
        .option('m', { alias: 'memory', type: 'string', describe: 'Memory per instance, e.g. 256M, 1G' })
        .option('k', { alias: 'disk', type: 'string', describe: 'Disk per instance, e.g. 512M, 1G' })
        .option('b', { alias: 'buildpack', type: 'string', array: true, describe: 'Buildpack by name or git URL (repeat for several; "default" to detect)' })
        .option('c', { alias: 'command', type: 'string', describe: 'Start command ("default" for the buildpack\'s)' })
        .option('s', { alias: 'stack', type: 'string', describe: 'Stack' })
        .option('t', { alias: 'timeout', type: 'number', describe: 'Seconds an instance has to pass its health check' })
        .option('u', { alias: 'health-check-type', type: 'string', choices: ['port', 'http', 'process'], describe: 'Health check' })
        .option('endpoint', { type: 'string', describe: 'Path of the http health check' })
        .option('start', { type: 'boolean', default: true, describe: 'Start the app once staged (--no-start leaves it stopped)' })
        .option('route', { type: 'boolean', default: true, describe: 'Map a route (--no-route maps none)' })
        .option('random-route', { type: 'boolean', default: false, describe: 'Map a route with a random host' })
        .option('strategy', { type: 'string', choices: ['rolling'], describe: 'rolling: replace running instances one at a time' })
        .example('$0 push site -p examples/static-site', 'Push a directory as the app "site"')
        .example('$0 push -f manifest.yml', 'Push every app of a manifest'),
    async (args) => {
      const flags: Partial<AppSpec> = {};
      if (args.p !== undefined) flags.path = resolve(args.p);
      const instances = countFlag(args.i, '-i');
      if (instances !== undefined) flags.instances = instances;
      const memory = sizeFlag(args.m, '-m');
      if (memory !== undefined) flags.memoryMb = memory;
      const disk = sizeFlag(args.k, '-k');
      if (disk !== undefined) flags.diskMb = disk;
      if (args.b !== undefined) flags.buildpacks = args.b.length === 1 && (args.b[0] === 'default' || args.b[0] === 'null') ? [] : args.b;
      if (args.c !== undefined) flags.command = args.c === 'default' || args.c === 'null' ? null : args.c;
      if (args.s !== undefined) flags.stack = args.s;
      if (args.t !== undefined) {
        if (!Number.isInteger(args.t) || args.t < 1 || args.t > 3600) throw new ClientUsageError(`-t ${args.t}: expected whole seconds from 1 to 3600`);
        flags.timeoutS = args.t;
      }
      if (args.u !== undefined) flags.healthCheckType = args.u as HealthCheckType;
      if (args.endpoint !== undefined) {
        if (!args.endpoint.startsWith('/')) throw new ClientUsageError(`--endpoint ${args.endpoint}: must begin with /`);
        flags.healthCheckEndpoint = args.endpoint;
      }
      if (!args.route) flags.noRoute = true;
      if (args['random-route']) flags.randomRoute = true;
      if (!args.route && args['random-route']) throw new ClientUsageError('--no-route and --random-route contradict each other');

      const manifestFile = args.f ?? (!args['no-manifest'] && existsSync('manifest.yml') ? 'manifest.yml' : undefined);
      const manifest = manifestFile ? await loadManifest(manifestFile) : undefined;
      let specs: AppSpec[];
      const hasFlags = Object.keys(flags).length > 0;
      if (manifest) {
        if (args.name) {
          const one = manifest.applications.find((a) => a.name === args.name);
          // A name not in the manifest: cf pushes the manifest's only app under that name.
          if (one) specs = [overlay(one, flags)];
          else if (manifest.applications.length === 1) specs = [overlay({ ...manifest.applications[0]!, name: args.name }, flags)];
          else throw new ClientUsageError(`${manifestFile} has no application named ${args.name}`);
        } else if (manifest.applications.length > 1 && hasFlags) {
          throw new ClientUsageError(`${manifestFile} lists ${manifest.applications.length} apps: name the one the flags are for`);
        } else {
          specs = manifest.applications.map((a) => overlay(a, flags));
        }
      } else {
        if (!args.name) throw new ClientUsageError('name the app: ingot push NAME (or give a manifest with -f)');
        specs = [overlay({ name: args.name }, flags)];
      }

      const s = await openSpaceSession();
      const r = renderer();
      for (const spec of specs) {
        await push(s, spec, { start: args.start, strategy: args.strategy === 'rolling' ? 'rolling' : 'recreate', startupTimeoutMs: startupTimeoutMs(), stagingTimeoutMs: stagingTimeoutMs() }, (e) => r.handle(e)).finally(() => r.flush());
      }
    },
  );
}

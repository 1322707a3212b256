// /v3/apps: create, read, list (filtered, paged), update, delete; start, stop and restart
// (all at once, or rolling); the environment; the current droplet.
import { z } from 'zod';
import { subjects, vcapServices } from '../../bus/mod.ts';
import { DbError, type AppRecord } from '../db/mod.ts';
import { errors } from '../errors.ts';
import { readJson } from '../http/body.ts';
import { csv, listQuery } from '../http/query.ts';
import type { ApiServer, RequestContext } from '../http/server.ts';
import { appUris, WEB, webProcess } from '../lookups.ts';
import { presentApp, presentDroplet } from '../presenters.ts';
import { within } from '../access.ts';
import { AUDIT, auditor, redactEnv } from '../audit.ts';
import { lifecycle, listOf, mergeMetadata, metadata, newGuid, noContent, now, ok, toOne } from './common.ts';
import type { Deps } from './deps.ts';
import { scope, type Mode } from './scope.ts';
import { deleteAppBindings } from './services-bindings.ts';
import { appServices } from '../services/vcap.ts';

const appName = z.string().min(1).max(255).regex(/^[^\s/][^/]*$/, 'must not begin with whitespace nor contain /');
const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be letters, digits and _, not starting with a digit')
  .refine((k) => !k.startsWith('VCAP_'), 'cannot start with VCAP_')
  .refine((k) => k !== 'PORT', 'cannot set PORT');
const envValue = z.union([z.string().max(128 * 1024), z.number(), z.boolean()]).transform(String);

const createApp = z
  .object({
    name: appName,
    relationships: z.object({ space: toOne }).strict().optional(),
    environment_variables: z.record(envName, envValue).optional(),
    lifecycle: lifecycle.optional(),
    metadata: metadata.optional(),
  })
  .strict();

const updateApp = z.object({ name: appName.optional(), lifecycle: lifecycle.optional(), metadata: metadata.optional() }).strict();
const restartBody = z.object({ strategy: z.enum(['recreate', 'rolling']).default('recreate') }).strict();
const envPatch = z.object({ var: z.record(envName, envValue.nullable()) }).strict();
const currentDroplet = z.object({ data: z.object({ guid: z.string().min(1) }).strict() }).strict();

export function registerApps(server: ApiServer, d: Deps): void {
  const present = (ctx: RequestContext) => (a: AppRecord) => presentApp(a, ctx.baseUrl);
  const s = scope(d.store);
  const audit = auditor(d.store);
  const getApp = (ctx: RequestContext, mode: Mode) => s.app(ctx, ctx.params.guid!, mode);

  server.route('GET', '/v3/apps', 'user', (ctx) =>
    listOf(
      ctx,
      d.store.apps,
      listQuery(
        { names: csv.optional(), guids: csv.optional(), space_guids: csv.optional(), organization_guids: csv.optional(), states: csv.optional() },
        ['created_at', 'updated_at', 'name', 'state'],
      ),
      async (q) => {
        let spaces = q.space_guids;
        if (q.organization_guids) {
          const inOrgs = (await d.store.spaces.list({ organization_guid: q.organization_guids })).map((s) => s.guid);
          spaces = spaces ? spaces.filter((s) => inOrgs.includes(s)) : inOrgs;
        }
        return { name: q.names, guid: q.guids, space_guid: within(spaces, await s.spaceWhere(ctx)), state: q.states as AppRecord['state'][] | undefined };
      },
      present(ctx),
    ),
  );

  server.route('POST', '/v3/apps', 'user', async (ctx) => {
    const body = await readJson(ctx.req, createApp);
    const spaceGuid = body.relationships?.space.data.guid ?? d.defaultSpaceGuid;
    await s.spaceToCreateIn(ctx, spaceGuid);
    const at = now();
    const app: AppRecord = {
      guid: newGuid(),
      name: body.name,
      space_guid: spaceGuid,
      state: 'STOPPED',
      version: newGuid(),
      droplet_guid: null,
      environment_variables: body.environment_variables ?? {},
      buildpacks: body.lifecycle?.data.buildpacks ?? [],
      stack: body.lifecycle?.data.stack ?? d.config.default_stack,
      labels: mergeMetadata({}, body.metadata?.labels),
      annotations: mergeMetadata({}, body.metadata?.annotations),
      created_at: at,
      updated_at: at,
    };
    const defaults = d.config.app_defaults;
    try {
      await d.store.transaction(async (tx) => {
        await tx.apps.insert(app);
        await tx.processes.insert({
          // CF: the web process shares its app's guid.
          guid: app.guid,
          app_guid: app.guid,
          type: WEB,
          instances: defaults.instances,
          memory_in_mb: defaults.memory_mb,
          disk_in_mb: defaults.disk_mb,
          command: null,
          health_check_type: 'port',
          health_check_endpoint: null,
          health_check_timeout: null,
          created_at: at,
          updated_at: at,
        });
      });
    } catch (err) {
      if (err instanceof DbError && err.code === 'unique_violation') throw errors.uniqueness(`App with the name '${body.name}' already exists.`);
      throw err;
    }
    await audit.onApp(ctx, AUDIT.appCreate, app, {
      request: {
        name: app.name,
        space_guid: app.space_guid,
        ...(body.environment_variables ? { environment_variables: redactEnv(body.environment_variables) } : {}),
        ...(body.lifecycle ? { lifecycle: body.lifecycle } : {}),
      },
    });
    return ok(presentApp(app, ctx.baseUrl), 201);
  });

  server.route('GET', '/v3/apps/:guid', 'user', async (ctx) => ok(presentApp(await getApp(ctx, 'read'), ctx.baseUrl)));

  server.route('PATCH', '/v3/apps/:guid', 'user', async (ctx) => {
    const body = await readJson(ctx.req, updateApp);
    const app = await getApp(ctx, 'write');
    try {
      const updated = await d.store.apps.update(app.guid, {
        ...(body.name ? { name: body.name } : {}),
        ...(body.lifecycle?.data.buildpacks ? { buildpacks: body.lifecycle.data.buildpacks } : {}),
        ...(body.lifecycle?.data.stack ? { stack: body.lifecycle.data.stack } : {}),
        labels: mergeMetadata(app.labels, body.metadata?.labels),
        annotations: mergeMetadata(app.annotations, body.metadata?.annotations),
      });
      await audit.onApp(ctx, AUDIT.appUpdate, updated!, { request: body });
      return ok(presentApp(updated!, ctx.baseUrl));
    } catch (err) {
      if (err instanceof DbError && err.code === 'unique_violation') throw errors.uniqueness(`App with the name '${body.name}' already exists.`);
      throw err;
    }
  });

  server.route('DELETE', '/v3/apps/:guid', 'user', async (ctx) => {
    const app = await getApp(ctx, 'write');
    // Its bindings go first, at their brokers: a broker that refuses leaves the app as it was.
    await deleteAppBindings(d, app.guid);
    await d.runner.remove(app.guid, () =>
      d.store.transaction(async (tx) => {
        // Builds still staging fail quietly: their droplet upload is refused from now on.
        await tx.routeMappings.delete({ app_guid: app.guid });
        await tx.processes.delete({ app_guid: app.guid });
        await tx.builds.delete({ app_guid: app.guid });
        await tx.droplets.delete({ app_guid: app.guid });
        await tx.packages.delete({ app_guid: app.guid });
        await tx.apps.delete({ guid: app.guid });
      }),
    );
    d.logs.forget(app.guid);
    // The app's audit events stay: they outlive it, bounded by the retention.
    await audit.onApp(ctx, AUDIT.appDelete, app, { recursive: true });
    return noContent;
  });

  server.route('POST', '/v3/apps/:guid/actions/start', 'user', async (ctx) => {
    const app = await d.runner.start((await getApp(ctx, 'write')).guid);
    await audit.onApp(ctx, AUDIT.appStart, app);
    return ok(presentApp(app, ctx.baseUrl));
  });
  server.route('POST', '/v3/apps/:guid/actions/stop', 'user', async (ctx) => {
    const app = await d.runner.stop((await getApp(ctx, 'write')).guid);
    await audit.onApp(ctx, AUDIT.appStop, app);
    return ok(presentApp(app, ctx.baseUrl));
  });
  server.route('POST', '/v3/apps/:guid/actions/restart', 'user', async (ctx) => {
    const body = await readJson(ctx.req, restartBody);
    const app = await d.runner.restart((await getApp(ctx, 'write')).guid, body.strategy);
    await audit.onApp(ctx, AUDIT.appRestart, app, { strategy: body.strategy });
    return ok(presentApp(app, ctx.baseUrl));
  });

  server.route('GET', '/v3/apps/:guid/environment_variables', 'user', async (ctx) => {
    const app = await getApp(ctx, 'write');
    return ok(envVarsBody(app, ctx.baseUrl));
  });

  // Takes effect at the next start or restart, as in CF.
  server.route('PATCH', '/v3/apps/:guid/environment_variables', 'user', async (ctx) => {
    const body = await readJson(ctx.req, envPatch);
    const app = await getApp(ctx, 'write');
    const merged = { ...app.environment_variables };
    for (const [k, v] of Object.entries(body.var)) {
      if (v === null) delete merged[k];
      else merged[k] = v;
    }
    const updated = await d.store.apps.update(app.guid, { environment_variables: merged });
    await audit.onApp(ctx, AUDIT.appUpdate, updated!, { request: { environment_variables: redactEnv(body.var) } });
    return ok(envVarsBody(updated!, ctx.baseUrl));
  });

  server.route('GET', '/v3/apps/:guid/env', 'user', async (ctx) => {
    const app = await getApp(ctx, 'write');
    const [process, uris, space] = await Promise.all([webProcess(d.store, app.guid), appUris(d.store, app.guid), d.store.spaces.get(app.space_guid)]);
    const org = space && (await d.store.organizations.get(space.organization_guid));
    return ok({
      staging_env_json: {},
      running_env_json: {},
      environment_variables: app.environment_variables,
      system_env_json: { VCAP_SERVICES: vcapServices(await appServices(d.store, d.services.box, app.guid)) },
      application_env_json: {
        VCAP_APPLICATION: {
          application_id: app.guid,
          application_name: app.name,
          application_uris: uris,
          application_version: app.version,
          name: app.name,
          uris,
          version: app.version,
          space_id: app.space_guid,
          space_name: space?.name ?? null,
          organization_id: org?.guid ?? null,
          organization_name: org?.name ?? null,
          limits: { mem: process?.memory_in_mb ?? null, disk: process?.disk_in_mb ?? null, fds: 16384 },
          cf_api: ctx.baseUrl,
        },
      },
    });
  });

  server.route('GET', '/v3/apps/:guid/relationships/current_droplet', 'user', async (ctx) => {
    const app = await getApp(ctx, 'read');
    return ok(currentDropletBody(app, ctx.baseUrl));
  });

  server.route('PATCH', '/v3/apps/:guid/relationships/current_droplet', 'user', async (ctx) => {
    const body = await readJson(ctx.req, currentDroplet);
    const app = await getApp(ctx, 'write');
    const droplet = await d.store.droplets.get(body.data.guid);
    if (!droplet || droplet.app_guid !== app.guid) throw errors.unprocessable('Unable to assign current droplet. Ensure the droplet exists and belongs to this app.');
    if (droplet.state !== 'STAGED') throw errors.unprocessable(`Unable to assign current droplet: the droplet is ${droplet.state}, not STAGED.`);
    const updated = await d.store.apps.update(app.guid, { droplet_guid: droplet.guid });
    // The HMs report package_state from the current droplet.
    if (app.droplet_guid !== droplet.guid) d.bus.publish(subjects.dropletUpdated, { app_id: app.guid });
    return ok(currentDropletBody(updated!, ctx.baseUrl));
  });

  server.route('GET', '/v3/apps/:guid/droplets/current', 'user', async (ctx) => {
    const app = await getApp(ctx, 'read');
    const droplet = app.droplet_guid ? await d.store.droplets.get(app.droplet_guid) : undefined;
    if (!droplet) throw errors.notFound('Droplet');
    return ok(presentDroplet(droplet, ctx.baseUrl));
  });
}

function envVarsBody(app: AppRecord, base: string) {
  return { var: app.environment_variables, links: { self: { href: `${base}/v3/apps/${app.guid}/environment_variables` }, app: { href: `${base}/v3/apps/${app.guid}` } } };
}

function currentDropletBody(app: AppRecord, base: string) {
  return {
    data: app.droplet_guid ? { guid: app.droplet_guid } : null,
    links: {
      self: { href: `${base}/v3/apps/${app.guid}/relationships/current_droplet` },
      related: { href: `${base}/v3/apps/${app.guid}/droplets/current` },
    },
  };
}

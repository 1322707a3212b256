// /v3/builds and /v3/droplets: a build stages a READY package into a droplet,
// asynchronously (STAGING → STAGED | FAILED with the error); the client polls the build,
// then assigns the droplet as the app's current one.
import { z } from 'zod';
import type { BuildRecord, DropletRecord } from '../db/mod.ts';
import { errors } from '../errors.ts';
import { readJson } from '../http/body.ts';
import { csv, listQuery } from '../http/query.ts';
import type { ApiServer } from '../http/server.ts';
import { presentBuild, presentDroplet } from '../presenters.ts';
import { within } from '../access.ts';
import { AUDIT, auditor } from '../audit.ts';
import { lifecycle, listOf, metadata, newGuid, noContent, now, ok, userOf } from './common.ts';
import type { Deps } from './deps.ts';
import { scope } from './scope.ts';
import { streamBlob } from './packages.ts';

const createBuild = z
  .object({
    package: z.object({ guid: z.string().min(1) }).strict(),
    lifecycle: lifecycle.optional(),
    staging_memory_in_mb: z.number().int().positive().max(65536).optional(),
    staging_disk_in_mb: z.number().int().positive().max(1048576).optional(),
    metadata: metadata.optional(),
  })
  .strict();

export function registerBuilds(server: ApiServer, d: Deps): void {
  const s = scope(d.store);
  const buildQ = { guids: csv.optional(), states: csv.optional(), package_guids: csv.optional() };
  server.route('GET', '/v3/builds', 'user', (ctx) =>
    listOf(
      ctx,
      d.store.builds,
      listQuery({ ...buildQ, app_guids: csv.optional() }),
      async (q) => ({ guid: q.guids, app_guid: within(q.app_guids, await s.appWhere(ctx)), package_guid: q.package_guids, state: q.states as BuildRecord['state'][] | undefined }),
      (b) => presentBuild(b, ctx.baseUrl),
    ),
  );
  server.route('GET', '/v3/apps/:guid/builds', 'user', async (ctx) => {
    await s.app(ctx, ctx.params.guid!, 'read');
    return listOf(ctx, d.store.builds, listQuery(buildQ), (q) => ({ app_guid: ctx.params.guid!, guid: q.guids, package_guid: q.package_guids, state: q.states as BuildRecord['state'][] | undefined }), (b) => presentBuild(b, ctx.baseUrl));
  });
  server.route('GET', '/v3/builds/:guid', 'user', async (ctx) => ok(presentBuild(await s.ofApp(ctx, d.store.builds, ctx.params.guid!, 'Build', 'read'), ctx.baseUrl)));

  server.route('POST', '/v3/builds', 'user', async (ctx) => {
    const body = await readJson(ctx.req, createBuild);
    const user = userOf(ctx.principal);
    const invalid = 'Unable to use package. Ensure that the package exists and you have access to it.';
    const pkg = await d.store.packages.get(body.package.guid);
    if (!pkg) throw errors.unprocessable(invalid);
    const app = await s.appNamed(ctx, pkg.app_guid, invalid);
    if (pkg.state !== 'READY' || !pkg.sha256) throw errors.unprocessable(`Unable to stage package ${pkg.guid}: it is ${pkg.state}, not READY.`);
    const at = now();
    const buildpacks = body.lifecycle?.data.buildpacks ?? app.buildpacks;
    const stack = body.lifecycle?.data.stack ?? app.stack;
    const buildGuid = newGuid();
    const dropletGuid = newGuid();
    const build: BuildRecord = {
      guid: buildGuid,
      app_guid: app.guid,
      package_guid: pkg.guid,
      droplet_guid: dropletGuid,
      state: 'STAGING',
      error: null,
      buildpacks,
      stack,
      staging_memory_in_mb: body.staging_memory_in_mb ?? d.config.staging.memory_mb,
      staging_disk_in_mb: body.staging_disk_in_mb ?? d.config.staging.disk_mb,
      created_by: user.guid,
      controller_index: d.config.index,
      created_at: at,
      updated_at: at,
    };
    const droplet: DropletRecord = {
      guid: dropletGuid,
      app_guid: app.guid,
      package_guid: pkg.guid,
      build_guid: buildGuid,
      state: 'STAGING',
      error: null,
      sha256: null,
      size: null,
      buildpack: null,
      process_types: {},
      stack,
      created_at: at,
      updated_at: at,
    };
    await d.store.transaction(async (tx) => {
      await tx.droplets.insert(droplet);
      await tx.builds.insert(build);
    });
    d.stager.stage(build, { ...pkg, sha256: pkg.sha256 }, app);
    await auditor(d.store).onApp(ctx, AUDIT.appBuild, app, { build_guid: build.guid, package_guid: pkg.guid });
    return ok(presentBuild(build, ctx.baseUrl), 201);
  });

  const dropletQ = { guids: csv.optional(), states: csv.optional() };
  server.route('GET', '/v3/droplets', 'user', (ctx) =>
    listOf(ctx, d.store.droplets, listQuery({ ...dropletQ, app_guids: csv.optional() }), async (q) => ({ guid: q.guids, app_guid: within(q.app_guids, await s.appWhere(ctx)), state: q.states as DropletRecord['state'][] | undefined }), (x) => presentDroplet(x, ctx.baseUrl)),
  );
  server.route('GET', '/v3/apps/:guid/droplets', 'user', async (ctx) => {
    await s.app(ctx, ctx.params.guid!, 'read');
    return listOf(ctx, d.store.droplets, listQuery(dropletQ), (q) => ({ app_guid: ctx.params.guid!, guid: q.guids, state: q.states as DropletRecord['state'][] | undefined }), (x) => presentDroplet(x, ctx.baseUrl));
  });
  server.route('GET', '/v3/droplets/:guid', 'user', async (ctx) => ok(presentDroplet(await s.ofApp(ctx, d.store.droplets, ctx.params.guid!, 'Droplet', 'read'), ctx.baseUrl)));
  server.route('DELETE', '/v3/droplets/:guid', 'user', async (ctx) => {
    const droplet = await s.ofApp(ctx, d.store.droplets, ctx.params.guid!, 'Droplet', 'write');
    const app = await d.store.apps.get(droplet.app_guid);
    if (app?.droplet_guid === droplet.guid) throw errors.unprocessable('The current droplet of an app cannot be deleted.');
    if (droplet.state === 'STAGING') throw errors.unprocessable('A droplet still staging cannot be deleted.');
    await d.store.droplets.delete({ guid: droplet.guid });
    return noContent;
  });
  server.route('GET', '/v3/droplets/:guid/download', 'user', async (ctx) => {
    const droplet = await s.ofApp(ctx, d.store.droplets, ctx.params.guid!, 'Droplet', 'write');
    if (droplet.state !== 'STAGED' || !droplet.sha256) throw errors.unprocessable('The droplet is not staged.');
    return streamBlob(ctx.res, d, 'droplets', droplet.sha256, 'application/gzip');
  });
}

// The director's REST API (JSON): routes on the controller's ApiServer, bodies and queries
// validated at the edge (4xx naming the field), bearer tokens from POST /auth/token, and the
// blobstore's read-only agent endpoint. Handlers are thin: state in the store, work in tasks.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { ApiServer, Principal, RequestContext } from '../../kernel/cloud-controller/http/server.ts';
import { readJson, receiveUpload } from '../../kernel/cloud-controller/http/body.ts';
import { csv, parseQuery } from '../../kernel/cloud-controller/http/query.ts';
import { ADMIN_SCOPE, TokenError, type TokenIssuer } from '../../kernel/cloud-controller/auth/tokens.ts';
import { ManifestError, parseCloudConfig } from '../manifest/mod.ts';
import { parseStemcellManifest, StemcellManifestError } from '../../stemcells/local/manifest.ts';
import { Blobstore } from './blobstore.ts';
import type { CatalogRemoval } from './catalog-removal.ts';
import { manifestSummary } from './catalog.ts';
import type { DirectorConfig } from './config.ts';
import { apiErrors, CatalogError, LockHeldError, ReleaseInvalidError } from './errors.ts';
import type { Mbus } from './mbus.ts';
import { tarMembers } from './release-tarball.ts';
import { ALL_DEPLOYMENTS_LOCK, type DirectorStore } from './store.ts';
import type { TaskRunner } from './task-runner.ts';
import { isFinished, TASK_STATES, type TaskState } from './task-states.ts';
import type { InstanceRecord, TaskRecord, ValidateRelease } from './types.ts';

export const DIRECTOR_VERSION = '0.1.0';

export interface ApiDeps {
  config: DirectorConfig;
  uuid: string;
  store: DirectorStore;
  blobs: Blobstore;
  mbus: Mbus;
  tasks: TaskRunner;
  tokens: TokenIssuer;
  validateRelease: ValidateRelease;
  /** The CPI's create_stemcell, once the deploy code wires a CPI; until then the upload is only recorded. */
  createStemcell?: (imagePath: string, cloudProperties: Record<string, unknown>) => Promise<string>;
  /** Deleting releases and stemcells, and what uploads serialise their blob writes with. */
  catalog: CatalogRemoval;
  tmpDir: string;
}

/** The authenticator for ApiServer: every route but `none` needs an admin bearer token. */
export function directorAuthenticator(tokens: TokenIssuer) {
  return async (mode: string, req: IncomingMessage): Promise<Principal> => {
    if (mode === 'none') return { kind: 'anonymous' };
    const header = req.headers.authorization ?? '';
    const m = /^bearer\s+(\S+)$/i.exec(header);
    if (!m) throw apiErrors.notAuthenticated();
    try {
      const v = await tokens.verifyAccess(m[1]!);
      if (!v.scopes.includes(ADMIN_SCOPE)) throw apiErrors.forbidden('This token does not carry the director admin scope');
      return { kind: 'user', guid: v.user_guid, username: v.username, admin: true };
    } catch (err) {
      if (err instanceof TokenError) throw apiErrors.invalidToken(err.code === 'expired' ? 'The token has expired: get a new one from POST /auth/token' : 'The token is not valid for this director');
      throw err;
    }
  };
}

export function presentTask(t: TaskRecord): Record<string, unknown> {
  return {
    id: t.id,
    state: t.state,
    type: t.type,
    description: t.description,
    deployment: t.deployment,
    user: t.username,
    result: t.result,
    started_at: t.started_at,
    ended_at: t.ended_at,
    timestamp: Math.floor(Date.parse(t.created_at) / 1000),
  };
}

const TokenBody = z.object({ username: z.string().min(1), password: z.string().min(1) }).strict();
const CloudConfigBody = z.object({ properties: z.string().min(1, 'the cloud-config YAML is empty') }).strict();
const positive = (name: string) => z.string().regex(/^\d+$/, `${name} must be a positive integer`).transform(Number).refine((n) => n >= 1, `${name} must be at least 1`);
const TaskId = z.string().regex(/^\d+$/, 'a task id is a number').transform(Number);
const stateList = csv.pipe(z.array(z.enum(TASK_STATES)));
const CleanupBody = z.object({ remove_all: z.boolean().default(false) }).strict();

function username(ctx: RequestContext): string {
  return ctx.principal.kind === 'user' ? ctx.principal.username : 'anonymous';
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function taskIdOf(ctx: RequestContext): number {
  const parsed = TaskId.safeParse(ctx.params.id);
  if (!parsed.success) throw apiErrors.badRequest(`id: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

export function registerRoutes(api: ApiServer, d: ApiDeps): void {
  // ---- auth and info -----------------------------------------------------------------------
  api.route('POST', '/auth/token', 'none', async (ctx) => {
    const body = await readJson(ctx.req, TokenBody);
    const ok = sameSecret(body.username, d.config.admin.user) && sameSecret(body.password, d.config.admin.password);
    if (!ok) throw apiErrors.badCredentials();
    const pair = await d.tokens.issue({ guid: 'director-admin', username: body.username, admin: true });
    return { status: 200, body: { access_token: pair.access_token, token_type: 'bearer', expires_in: pair.expires_in } };
  });

  api.route('GET', '/info', 'none', async () => ({
    status: 200,
    body: {
      name: d.config.name,
      uuid: d.uuid,
      version: DIRECTOR_VERSION,
      user_authentication: { type: 'token', options: { token_url: '/auth/token' } },
      cpi: d.config.cpi,
    },
  }));

  // ---- cloud configs -------------------------------------------------------------------------
  api.route('GET', '/cloud_configs', 'user', async (ctx) => {
    const q = parseQuery(ctx.query, z.object({ limit: positive('limit').default('1') }).strict());
    return { status: 200, body: await d.store.cloudConfigs(q.limit) };
  });

  api.route('POST', '/cloud_configs', 'user', async (ctx) => {
    const body = await readJson(ctx.req, CloudConfigBody);
    try {
      parseCloudConfig(body.properties, 'cloud-config.yml');
    } catch (err) {
      if (err instanceof ManifestError) throw apiErrors.invalid(`The cloud-config is invalid: ${err.lines.join('; ')}`);
      throw err;
    }
    const latest = (await d.store.cloudConfigs(1))[0];
    if (latest && latest.properties === body.properties) return { status: 200, body: { id: latest.id, created_at: latest.created_at, changed: false } };
    const record = await d.store.addCloudConfig(body.properties);
    return { status: 201, body: { id: record.id, created_at: record.created_at, changed: true } };
  });

  // ---- stemcells -----------------------------------------------------------------------------
  api.route('GET', '/stemcells', 'user', async () => {
    const { usage, stemcells: list } = await d.catalog.usage();
    return {
      status: 200,
      body: list.map((s) => ({
        name: s.name,
        version: s.version,
        operating_system: s.operating_system,
        cid: s.cpi_cid,
        blob_id: s.blob_id,
        uploaded_at: s.uploaded_at,
        deployments: usage.stemcells.get(s.id) ?? [],
      })),
    };
  });

  api.route('POST', '/stemcells', 'user', async (ctx) => {
    const upload = await receiveUpload(ctx.req, { tmpDir: d.tmpDir, maxBytes: d.config.blobstore.max_upload_mb * 1024 * 1024, fileField: 'stemcell', what: 'The stemcell' });
    try {
      if (!upload.file) throw apiErrors.badRequest('stemcell: the multipart body has no "stemcell" file part');
      const tarball = await readFile(upload.file.path);
      let manifestText: Buffer | undefined;
      let image: Buffer | undefined;
      try {
        const members = await tarMembers(tarball, (p) => p === 'stemcell.MF' || p === 'image');
        manifestText = members.get('stemcell.MF');
        image = members.get('image');
      } catch (err) {
        throw apiErrors.invalid(`The stemcell is not a gzipped tarball: ${(err as Error).message}`);
      }
      if (!manifestText) throw apiErrors.invalid('The stemcell tarball holds no stemcell.MF');
      let mf;
      try {
        mf = parseStemcellManifest(manifestText.toString('utf8'), 'stemcell.MF');
      } catch (err) {
        if (err instanceof StemcellManifestError) throw apiErrors.invalid(`The stemcell's manifest is invalid: ${err.problems.join('; ') || err.message}`);
        throw err;
      }
      const manifest = mf;
      // Blobs written and recorded with no sweep of catalog-removal.ts in between.
      const { record, blobId } = await d.catalog.exclusive(async () => {
        const existing = await d.store.stemcell(manifest.name, manifest.version);
        if (existing) throw apiErrors.conflict(`Stemcell ${manifest.name}/${manifest.version} is already uploaded`);
        const blobId = await d.blobs.put(tarball);
        const record = await d.store.addStemcell({ name: manifest.name, version: manifest.version, operating_system: manifest.operating_system, cpi_cid: null, blob_id: blobId, image_blob_id: null, cloud_properties: manifest.cloud_properties });
        if (d.createStemcell) {
          // BOSH hands the CPI the image inside the tarball, not the tarball.
          const imageBlobId = image ? await d.blobs.put(image) : null;
          const cid = await d.createStemcell(d.blobs.pathOf(imageBlobId ?? blobId), manifest.cloud_properties);
          await d.store.setStemcellCid(record.id, cid, imageBlobId);
          record.cpi_cid = cid;
          record.image_blob_id = imageBlobId;
        }
        return { record, blobId };
      });
      return { status: 201, body: { name: record.name, version: record.version, operating_system: record.operating_system, cid: record.cpi_cid, blob_id: blobId } };
    } finally {
      await upload.cleanup();
    }
  });

  // ---- releases ------------------------------------------------------------------------------
  api.route('GET', '/releases', 'user', async () => {
    const list = await d.store.releases();
    return {
      status: 200,
      body: list.map((r) => ({
        name: r.name,
        version: r.version,
        blob_id: r.blob_id,
        uploaded_at: r.uploaded_at,
        jobs: r.jobs,
        packages: r.packages,
      })),
    };
  });

  api.route('POST', '/releases', 'user', async (ctx) => {
    const upload = await receiveUpload(ctx.req, { tmpDir: d.tmpDir, maxBytes: d.config.blobstore.max_upload_mb * 1024 * 1024, fileField: 'release', what: 'The release' });
    try {
      if (!upload.file) throw apiErrors.badRequest('release: the multipart body has no "release" file part');
      const tarball = await readFile(upload.file.path);
      let desc;
      try {
        desc = await d.validateRelease(tarball);
      } catch (err) {
        if (err instanceof ReleaseInvalidError || (err as { code?: string }).code?.startsWith('invalid')) throw apiErrors.invalid(`The release is invalid: ${(err as Error).message}`);
        throw err;
      }
      const release = desc;
      // Each job and package tarball inside becomes a blob of its own: agents fetch only those.
      const inner = await tarMembers(tarball, (p) => /^(jobs|packages)\/[^/]+\.tgz$/.test(p)).catch(() => new Map<string, Buffer>());
      // Blobs written and recorded with no sweep of catalog-removal.ts in between: another
      // version's job may be this one's, already stored.
      const record = await d.catalog.exclusive(async () => {
        if (await d.store.release(release.name, release.version)) throw apiErrors.conflict(`Release ${release.name}/${release.version} is already uploaded`);
        const blobId = await d.blobs.put(tarball);
        const blobs = new Map<string, string>();
        for (const [path, body] of inner) blobs.set(path.replace(/\.tgz$/, ''), await d.blobs.put(body));
        await d.store.addRelease(release, blobId, blobs);
        return (await d.store.release(release.name, release.version))!;
      });
      return { status: 201, body: { name: record.name, version: record.version, blob_id: record.blob_id, jobs: record.jobs, packages: record.packages } };
    } finally {
      await upload.cleanup();
    }
  });

  // ---- removing releases and stemcells, clean-up (catalog-removal.ts) ---------------------------
  const removal = async (fn: () => Promise<unknown>) => {
    try {
      return { status: 200, body: await fn() };
    } catch (err) {
      if (err instanceof LockHeldError) throw apiErrors.lockHeld(err);
      if (err instanceof CatalogError) {
        if (err.code === 'not_found') throw apiErrors.notFound(err.message);
        if (err.code === 'in_use') throw apiErrors.conflict(err.message);
        throw apiErrors.cpiFailed(err.message);
      }
      throw err;
    }
  };
  api.route('DELETE', '/releases/:name', 'user', async (ctx) => removal(() => d.catalog.deleteReleases(ctx.params.name!, undefined, username(ctx))));
  api.route('DELETE', '/releases/:name/:version', 'user', async (ctx) => removal(() => d.catalog.deleteReleases(ctx.params.name!, ctx.params.version!, username(ctx))));
  api.route('DELETE', '/stemcells/:name/:version', 'user', async (ctx) => removal(() => d.catalog.deleteStemcell(ctx.params.name!, ctx.params.version!, username(ctx))));

  api.route('POST', '/cleanup', 'user', async (ctx) => {
    const body = await readJson(ctx.req, CleanupBody);
    const task = await enqueueOrConflict(d.tasks, {
      type: 'cleanup',
      description: body.remove_all ? 'clean up all unused releases and stemcells' : 'clean up unused releases and stemcells',
      username: username(ctx),
      locks: [ALL_DEPLOYMENTS_LOCK],
      params: { remove_all: body.remove_all },
    });
    return { status: 202, body: presentTask(task), headers: { Location: `/tasks/${task.id}` } };
  });

  // ---- deployments ---------------------------------------------------------------------------
  api.route('GET', '/deployments', 'user', async () => {
    const list = await d.store.deployments();
    return {
      status: 200,
      body: list.map((dep) => {
        const m = manifestSummary(dep.manifest);
        return { name: dep.name, cloud_config_id: dep.cloud_config_id, releases: m.releases, stemcells: m.stemcells, updated_at: dep.updated_at };
      }),
    };
  });

  api.route('GET', '/deployments/:name', 'user', async (ctx) => {
    const dep = await d.store.deployment(ctx.params.name!);
    if (!dep) throw apiErrors.notFound(`Deployment ${ctx.params.name}`);
    return {
      status: 200,
      body: {
        name: dep.name,
        manifest: dep.manifest,
        cloud_config_id: dep.cloud_config_id,
        instances: (await d.store.instances(dep.name)).map(presentInstance),
        vms: await d.store.vms(dep.name),
        disks: await d.store.disks(dep.name),
        created_at: dep.created_at,
        updated_at: dep.updated_at,
      },
    };
  });

  api.route('DELETE', '/deployments/:name', 'user', async (ctx) => {
    const name = ctx.params.name!;
    if (!(await d.store.deployment(name))) throw apiErrors.notFound(`Deployment ${name}`);
    const task = await enqueueOrConflict(d.tasks, {
      type: 'delete_deployment',
      description: `delete deployment ${name}`,
      deployment: name,
      username: username(ctx),
      locks: [deploymentLock(name)],
      params: { name },
    });
    return { status: 202, body: presentTask(task), headers: { Location: `/tasks/${task.id}` } };
  });

  // ---- tasks ---------------------------------------------------------------------------------
  api.route('GET', '/tasks', 'user', async (ctx) => {
    const q = parseQuery(
      ctx.query,
      z.object({ state: stateList.optional(), deployment: z.string().min(1).optional(), type: z.string().min(1).optional(), limit: positive('limit').default('30') }).strict(),
    );
    const list = await d.store.tasks({ ...(q.state ? { states: q.state as TaskState[] } : {}), ...(q.deployment ? { deployment: q.deployment } : {}), ...(q.type ? { type: q.type } : {}), limit: q.limit });
    return { status: 200, body: list.map(presentTask) };
  });

  api.route('GET', '/tasks/:id', 'user', async (ctx) => {
    const task = await d.store.task(taskIdOf(ctx));
    if (!task) throw apiErrors.notFound(`Task ${ctx.params.id}`);
    return { status: 200, body: presentTask(task) };
  });

  api.route('GET', '/tasks/:id/output', 'user', async (ctx) => {
    const id = taskIdOf(ctx);
    const q = parseQuery(ctx.query, z.object({ type: z.enum(['event', 'debug', 'result']).default('event'), follow: z.enum(['0', '1', 'true', 'false']).optional() }).strict());
    const task = await d.store.task(id);
    if (!task) throw apiErrors.notFound(`Task ${id}`);
    if (q.type === 'result') return { status: 200, body: { state: task.state, result: task.result } };
    const follow = q.follow === '1' || q.follow === 'true';
    const res = ctx.res;
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-cache' });
    let after = 0;
    const drain = async (): Promise<void> => {
      for (const row of await d.store.taskOutput(id, q.type as 'event' | 'debug', after)) {
        res.write(q.type === 'event' ? `${row.body}\n` : `${JSON.stringify({ line: row.body })}\n`);
        after = row.id;
      }
    };
    await drain();
    if (follow) {
      let closed = false;
      const unregister = ctx.onShutdown(() => {
        closed = true;
      });
      res.on('close', () => {
        closed = true;
      });
      while (!closed) {
        const now = await d.store.task(id);
        await drain();
        if (!now || isFinished(now.state)) break;
        await d.tasks.waitForChange(id, 1000);
      }
      unregister();
    }
    res.end();
    return { handled: true };
  });

  api.route('POST', '/tasks/:id/cancel', 'user', async (ctx) => {
    const id = taskIdOf(ctx);
    const before = await d.store.task(id);
    if (!before) throw apiErrors.notFound(`Task ${id}`);
    if (isFinished(before.state)) throw apiErrors.conflict(`Task ${id} has already ended (${before.state}); there is nothing to cancel`);
    const task = (await d.tasks.cancel(id))!;
    return { status: 202, body: presentTask(task) };
  });

  // ---- the blobstore, as agents read it --------------------------------------------------------
  // Agents fetch `<blobstore url>/<id>` with plain fetch(), which refuses credentials in a URL's
  // userinfo: the agent's mbus credential is therefore part of the path of its blobstore URL.
  const agentBlob = async (ctx: RequestContext) => {
    const { user, password, id } = ctx.params as { user: string; password: string; id: string };
    if (!(await d.mbus.isAgent(user, password))) throw apiErrors.forbidden('The blobstore refuses this agent credential');
    if (ctx.method === 'PUT') return receiveAgentUpload(ctx, d.config.data_dir, id);
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') throw apiErrors.forbidden('The blobstore is read-only for agents');
    if (!Blobstore.isId(id) || !d.blobs.has(id)) throw apiErrors.notFound(`Blob ${id}`);
    const size = await d.blobs.size(id);
    ctx.res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) });
    if (ctx.method === 'HEAD') ctx.res.end();
    else d.blobs.stream(id).pipe(ctx.res);
    return { handled: true as const };
  };
  api.route('GET', '/blobs/agent/:user/:password/:id', 'none', agentBlob);
  api.route('PUT', '/blobs/agent/:user/:password/:id', 'none', agentBlob);
}

/** Where an agent's upload (fetch_logs) lands: outside the content-addressed blobs, by the id the agent chose. */
export function agentUploadPath(dataDir: string, id: string): string {
  if (!AGENT_UPLOAD_ID.test(id)) throw new Error(`Locating agent upload ${JSON.stringify(id)}: an upload id is a UUID`);
  return join(dataDir, 'agent-uploads', id);
}

export const AGENT_UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_AGENT_UPLOAD = 64 * 1024 * 1024;

/** An agent's PUT (its fetch_logs tarball): a UUID id, at most 64 MB, written whole or not at all. */
async function receiveAgentUpload(ctx: RequestContext, dataDir: string, id: string): Promise<{ status: number; body: unknown }> {
  // The blobs themselves stay read-only: an agent may only add an upload of its own, by UUID.
  if (!AGENT_UPLOAD_ID.test(id)) throw apiErrors.forbidden('The blobstore is read-only for agents; only an upload with a UUID id (fetch_logs) is accepted');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_AGENT_UPLOAD) throw apiErrors.badRequest(`The upload is larger than ${MAX_AGENT_UPLOAD} bytes`);
    chunks.push(chunk);
  }
  const file = agentUploadPath(dataDir, id);
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(`${file}.tmp`, Buffer.concat(chunks));
  await rename(`${file}.tmp`, file);
  return { status: 201, body: { id, size } };
}

/** An instance as the API shows it: its jobs without their properties, which hold the deployment's secrets. */
export function presentInstance(i: InstanceRecord): InstanceRecord {
  const jobs = (i.spec as { jobs?: unknown }).jobs;
  if (!Array.isArray(jobs)) return i;
  return {
    ...i,
    spec: {
      ...i.spec,
      jobs: jobs.map((j: Record<string, unknown>) => ({ name: j.name, release: j.release, release_version: j.release_version, digest: j.digest })),
    },
  };
}

export function deploymentLock(name: string): string {
  return `deployment:${name}`;
}

/** Queues a task; a held lock becomes a 409 naming the holder task. */
export async function enqueueOrConflict(tasks: TaskRunner, t: Parameters<TaskRunner['enqueue']>[0]): Promise<TaskRecord> {
  try {
    return await tasks.enqueue(t);
  } catch (err) {
    if (err instanceof LockHeldError) throw apiErrors.lockHeld(err);
    throw err;
  }
}

/** The agent's blobstore URL: the director's base with the agent's credential in the path. */
export function agentBlobstoreUrl(base: string, cred: { user: string; password: string }): string {
  return `${base.replace(/\/+$/, '')}/blobs/agent/${encodeURIComponent(cred.user)}/${encodeURIComponent(cred.password)}`;
}

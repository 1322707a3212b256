// /v3/packages and /v3/resource_match: an app's bits arrive as a zip (multipart `bits`, or
// the raw body), streamed to disk under a size limit, checked entry by entry, their files
// added to the resource cache, and merged with the `resources` the client did not upload
// because resource_match said the controller already held them (from any app). The package
// is stored content-addressed by sha256.
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { PackageRecord } from '../db/mod.ts';
import { ApiError, errors } from '../errors.ts';
import { readJson, receiveUpload, validate } from '../http/body.ts';
import { csv, listQuery } from '../http/query.ts';
import type { ApiServer, Reply, RequestContext } from '../http/server.ts';
import { mapLimit } from '../map-limit.ts';
import { BLOB_LOOKUPS_IN_FLIGHT, buildZip, ingestZip, mergeResources, PackageError, parseMode, type MatchedResource } from '../package-bits.ts';
import { presentPackage } from '../presenters.ts';
import { within } from '../access.ts';
import { AUDIT, auditor } from '../audit.ts';
import { listOf, newGuid, noContent, now, ok, toOne } from './common.ts';
import type { Deps } from './deps.ts';
import { scope, type Mode } from './scope.ts';

const sha1 = z.string().regex(/^[0-9a-fA-F]{40}$/, 'must be a sha1 (40 hex digits)').transform((s) => s.toLowerCase());
const mode = z.union([z.string().regex(/^[0-7]{1,6}$/, 'must be an octal mode such as 0644'), z.number().int().min(0)]).optional();
const cfResource = z
  .object({ checksum: z.object({ value: sha1 }).strict(), size_in_bytes: z.number().int().min(0), path: z.string().max(4096).optional(), mode })
  .strict();
const shortResource = z.object({ sha1, size: z.number().int().min(0), path: z.string().max(4096).optional(), fn: z.string().max(4096).optional(), mode }).strict();
/** A file the client describes: CF v3's `{checksum:{value}, size_in_bytes, path, mode}` or `{sha1, size, path, mode}`. */
export const resourceSchema = z.union([cfResource, shortResource]).transform((r) =>
  'checksum' in r ? { sha1: r.checksum.value, size: r.size_in_bytes, path: r.path ?? '', mode: r.mode } : { sha1: r.sha1, size: r.size, path: r.path ?? r.fn ?? '', mode: r.mode },
);
export type ResourceDescription = z.output<typeof resourceSchema>;

const MAX_MATCH = 10_000;
const resourceMatch = z.object({ resources: z.array(resourceSchema).max(MAX_MATCH) }).strict();
const createPackage = z.object({ type: z.literal('bits'), relationships: z.object({ app: toOne }).strict(), metadata: z.unknown().optional() }).strict();

export function registerPackages(server: ApiServer, d: Deps): void {
  const s = scope(d.store);
  const pkgFor = (ctx: RequestContext, mode: Mode) => s.ofApp(ctx, d.store.packages, ctx.params.guid!, 'Package', mode);
  const listQ = listQuery({ guids: csv.optional(), app_guids: csv.optional(), states: csv.optional(), types: csv.optional() });
  server.route('GET', '/v3/packages', 'user', (ctx) =>
    listOf(ctx, d.store.packages, listQ, async (q) => ({ guid: q.guids, app_guid: within(q.app_guids, await s.appWhere(ctx)), state: q.states as PackageRecord['state'][] | undefined }), (p) => presentPackage(p, ctx.baseUrl)),
  );
  server.route('GET', '/v3/apps/:guid/packages', 'user', async (ctx) => {
    await s.app(ctx, ctx.params.guid!, 'read');
    return listOf(ctx, d.store.packages, listQuery({ states: csv.optional(), types: csv.optional() }), (q) => ({ app_guid: ctx.params.guid!, state: q.states as PackageRecord['state'][] | undefined }), (p) => presentPackage(p, ctx.baseUrl));
  });

  server.route('POST', '/v3/packages', 'user', async (ctx) => {
    const body = await readJson(ctx.req, createPackage);
    const app = await s.appNamed(ctx, body.relationships.app.data.guid, 'App is invalid. Ensure it exists and you have access to it.');
    const at = now();
    const pkg = await d.store.packages.insert({ guid: newGuid(), app_guid: app.guid, type: 'bits', state: 'AWAITING_UPLOAD', sha256: null, size: null, error: null, upload_controller_index: null, upload_claim: null, created_at: at, updated_at: at });
    return ok(presentPackage(pkg, ctx.baseUrl), 201);
  });

  server.route('GET', '/v3/packages/:guid', 'user', async (ctx) => ok(presentPackage(await pkgFor(ctx, 'read'), ctx.baseUrl)));

  server.route('DELETE', '/v3/packages/:guid', 'user', async (ctx) => {
    const pkg = await pkgFor(ctx, 'write');
    await d.store.packages.delete({ guid: pkg.guid });
    return noContent;
  });

  server.route('POST', '/v3/packages/:guid/upload', 'user', async (ctx) => {
    const pkg = await pkgFor(ctx, 'write');
    // Claim the package: one upload at a time, and never over READY bits.
    const claim = await d.uploads.claim(pkg.guid);
    if (!claim) throw errors.unprocessable(`Package ${pkg.guid} is ${pkg.state}; bits can be uploaded only while it awaits them.`);
    let upload;
    try {
      upload = await receiveUpload(ctx.req, { tmpDir: d.blobs.tmpDir, maxBytes: d.config.max_upload_mb * 1024 * 1024, fileField: 'bits', what: 'The package upload' });
    } catch (err) {
      await claim.settle({ state: 'AWAITING_UPLOAD' });
      throw err;
    }
    try {
      const resources = parseResourcesField(upload.fields.resources);
      if (!upload.file && resources.length === 0) throw errors.unprocessable('Upload must include either resources or bits');
      const stored = await storePackage(d, upload.file?.path, resources);
      const updated = await claim.settle({ state: 'READY', sha256: stored.sha256, size: stored.size });
      if (!updated) throw errors.conflict(`Package ${pkg.guid} was given up on while this upload was processed; upload the bits again.`);
      const app = await d.store.apps.get(pkg.app_guid);
      if (app) await auditor(d.store).onApp(ctx, AUDIT.appUpload, app, { package_guid: pkg.guid });
      return ok(presentPackage(updated, ctx.baseUrl));
    } catch (err) {
      const detail = err instanceof PackageError ? errors.packageInvalid(err.message) : err;
      const reason = detail instanceof ApiError ? detail.message : 'Processing the upload failed';
      await claim.settle({ state: 'FAILED', error: reason });
      throw detail;
    } finally {
      await upload.cleanup();
    }
  });

  server.route('GET', '/v3/packages/:guid/download', 'user', async (ctx) => {
    const pkg = await pkgFor(ctx, 'write');
    if (pkg.state !== 'READY' || !pkg.sha256) throw errors.unprocessable('Package has no bits yet.');
    return streamBlob(ctx.res, d, 'packages', pkg.sha256, 'application/zip');
  });

  // Not scoped to a space: it says only which files the blobstore holds, by sha1 and size.
  server.route('POST', '/v3/resource_match', 'user', async (ctx) => {
    const body = await readJson(ctx.req, resourceMatch, 16 * 1024 * 1024);
    const sizes = await mapLimit(body.resources, BLOB_LOOKUPS_IN_FLIGHT, (r) => d.blobs.size('resources', r.sha1));
    const matched: ResourceDescription[] = body.resources.filter((r, i) => sizes[i] === r.size);
    return ok({ resources: matched.map((r) => ({ checksum: { value: r.sha1 }, size_in_bytes: r.size, path: r.path, mode: r.mode === undefined ? '644' : String(r.mode) })) });
  });
}

/** The multipart `resources` field: a JSON array of files the client left out of the zip. */
function parseResourcesField(text: string | undefined): MatchedResource[] {
  if (text === undefined || text.trim() === '') return [];
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw errors.messageParse(`resources: ${(err as Error).message}`);
  }
  const list = validate(z.array(resourceSchema).max(200_000), raw);
  return list.map((r, i) => {
    if (r.path === '') throw errors.unprocessable(`resources[${i}].path: Required`);
    let m: number;
    try {
      m = parseMode(r.mode);
    } catch (err) {
      throw errors.unprocessable(`resources[${i}].mode: ${(err as Error).message}`);
    }
    return { path: r.path, sha1: r.sha1, size: r.size, mode: m };
  });
}

/**
 * Checks the zip, fills the resource cache, merges the matched resources, and stores the
 * package by sha256. A zip uploaded whole (no resources) is stored as it came.
 */
async function storePackage(d: Deps, zipPath: string | undefined, resources: MatchedResource[]): Promise<{ sha256: string; size: number }> {
  const limits = { maxUnzippedBytes: d.config.max_package_unzipped_mb * 1024 * 1024 };
  const entries = zipPath ? await ingestZip(zipPath, d.blobs, limits) : [];
  if (resources.length === 0 && zipPath) return d.blobs.ingest('packages', zipPath);
  const merged = await mergeResources(entries, resources, d.blobs);
  const total = merged.reduce((n, e) => n + (e.kind === 'file' ? e.size : 0), 0);
  if (total > limits.maxUnzippedBytes) throw new PackageError(`its files add up to more than ${limits.maxUnzippedBytes} bytes`);
  const out = d.blobs.tempPath('package');
  try {
    await buildZip(merged, d.blobs, out);
    return await d.blobs.ingest('packages', out);
  } catch (err) {
    await rm(out, { force: true });
    throw err;
  }
}

export async function streamBlob(res: import('node:http').ServerResponse, d: Deps, kind: 'packages' | 'droplets', sha256: string, type: string): Promise<Reply> {
  const blob = await d.blobs.open(kind, sha256);
  if (!blob) throw errors.notFound('Blob');
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': String(blob.size), Digest: `sha-256=${Buffer.from(sha256, 'hex').toString('base64')}` });
  await pipeline(blob.stream, res);
  return { handled: true };
}

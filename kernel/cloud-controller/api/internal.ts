// The blob endpoints DEAs and stagers call with signed, expiring URLs (no credential of
// their own): the package download, the droplet upload at the end of staging, and the
// droplet download at every instance start. Paths in auth/signed-urls.ts (blobPaths).
import { errors } from '../errors.ts';
import { receiveUpload } from '../http/body.ts';
import type { ApiServer, RequestContext } from '../http/server.ts';
import { hashFile } from '../blobstore.ts';
import { ok } from './common.ts';
import type { Deps } from './deps.ts';
import { streamBlob } from './packages.ts';

export function registerInternal(server: ApiServer, d: Deps): void {
  server.route('GET', '/internal/v3/packages/:guid/download', 'signed', async (ctx) => {
    const pkg = await d.store.packages.get(ctx.params.guid!);
    if (!pkg || pkg.state !== 'READY' || !pkg.sha256) throw errors.notFound('Package');
    return streamBlob(ctx.res, d, 'packages', pkg.sha256, 'application/zip');
  });

  server.route('GET', '/internal/v3/droplets/:guid/download', 'signed', async (ctx) => {
    const droplet = await d.store.droplets.get(ctx.params.guid!);
    if (!droplet?.sha256) throw errors.notFound('Droplet');
    return streamBlob(ctx.res, d, 'droplets', droplet.sha256, 'application/gzip');
  });

  const upload = async (ctx: RequestContext) => {
    const droplet = await d.store.droplets.get(ctx.params.guid!);
    if (!droplet) throw errors.notFound('Droplet');
    // Only while its build stages: a late upload (the build failed, or the controller
    // restarted meanwhile) is refused.
    if (droplet.state !== 'STAGING') throw errors.unprocessable(`Droplet ${droplet.guid} is ${droplet.state}; it no longer accepts an upload.`);
    const received = await receiveUpload(ctx.req, { tmpDir: d.blobs.tmpDir, maxBytes: d.config.max_droplet_mb * 1024 * 1024, fileField: 'droplet', what: 'The droplet upload' });
    try {
      if (!received.file) throw errors.unprocessable('The upload holds no droplet (a raw body, or a multipart part named droplet).');
      const expected = digestHeader(ctx.req.headers['content-digest']);
      if (expected) {
        const { digest } = await hashFile(received.file.path, 'sha256');
        if (digest !== expected) throw errors.unprocessable(`The droplet's sha256 ${digest} does not match its Content-Digest ${expected}.`);
      }
      const { sha256, size } = await d.blobs.ingest('droplets', received.file.path);
      const changed = await d.store.droplets.updateWhere({ guid: droplet.guid, state: 'STAGING' }, { sha256, size });
      if (changed === 0) throw errors.unprocessable(`Droplet ${droplet.guid} no longer accepts an upload.`);
      return ok({ guid: droplet.guid, checksum: { type: 'sha256', value: sha256 }, size_in_bytes: size }, 201);
    } finally {
      await received.cleanup();
    }
  };
  server.route('PUT', '/internal/v3/droplets/:guid/upload', 'signed', upload);
  server.route('POST', '/internal/v3/droplets/:guid/upload', 'signed', upload);
}

/** `sha-256=:<base64>:` (RFC 9530) → hex, or undefined. */
function digestHeader(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  const m = /sha-256=:([A-Za-z0-9+/=]+):/i.exec(text ?? '');
  return m ? Buffer.from(m[1]!, 'base64').toString('hex') : undefined;
}

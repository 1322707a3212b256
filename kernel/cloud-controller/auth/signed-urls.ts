// Signed, expiring URLs for the bulk data DEAs and stagers move over HTTP (packages down,
// droplets up and down): the HMAC of method, path and expiry rides in the query string, so
// a DEA needs no credential of its own and a leaked URL dies with its expiry. The method is
// signed too: a download URL cannot be replayed as an upload.
import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignedMethod = 'GET' | 'PUT';

export function signature(key: string, method: SignedMethod, path: string, expires: number): string {
  return createHmac('sha256', key).update(`${method}\n${path}\n${expires}`).digest('hex');
}

/** `${base}${path}?expires=…&signature=…`; `expires` in seconds since the epoch. */
export function signUrl(key: string, base: string, method: SignedMethod, path: string, expires: number): string {
  return `${base.replace(/\/+$/, '')}${path}?expires=${expires}&signature=${signature(key, method, path, expires)}`;
}

export type SignatureCheck = { ok: true } | { ok: false; reason: 'missing' | 'expired' | 'invalid' };

export function checkSignature(key: string, method: SignedMethod, path: string, query: URLSearchParams, nowS: number): SignatureCheck {
  const expiresText = query.get('expires');
  const given = query.get('signature');
  if (!expiresText || !given) return { ok: false, reason: 'missing' };
  const expires = Number(expiresText);
  if (!Number.isInteger(expires)) return { ok: false, reason: 'invalid' };
  const expected = Buffer.from(signature(key, method, path, expires), 'hex');
  const got = Buffer.from(given, 'hex');
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) return { ok: false, reason: 'invalid' };
  if (expires < nowS) return { ok: false, reason: 'expired' };
  return { ok: true };
}

/** A key for URL signing derived from the JWT secret, so a token can never pass as a signature. */
export function urlSigningKey(jwtSecret: string): string {
  return createHmac('sha256', jwtSecret).update('ingot signed urls').digest('hex');
}

/** The controller's signer: URLs under its external URL, valid for a given time. */
export class UrlSigner {
  constructor(
    private readonly key: string,
    readonly baseUrl: string,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  sign(method: SignedMethod, path: string, ttlS: number): string {
    return signUrl(this.key, this.baseUrl, method, path, this.now() + ttlS);
  }

  check(method: SignedMethod, path: string, query: URLSearchParams): SignatureCheck {
    return checkSignature(this.key, method, path, query, this.now());
  }
}

/** Paths of the blob endpoints DEAs and stagers call. */
export const blobPaths = {
  packageDownload: (guid: string) => `/internal/v3/packages/${guid}/download`,
  dropletUpload: (guid: string) => `/internal/v3/droplets/${guid}/upload`,
  dropletDownload: (guid: string) => `/internal/v3/droplets/${guid}/download`,
};

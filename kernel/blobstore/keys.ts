// What a blob is named by, shared by the blobstore component and the controller's two
// blobstore clients: its kind, and its key — the digest of its bits (sha256 for packages
// and droplets, sha1 for the resource cache, the digest clients send in resource_match).
// Pure: no I/O.

export const BLOB_KINDS = ['packages', 'droplets', 'resources'] as const;
export type BlobKind = (typeof BLOB_KINDS)[number];

/** The digest algorithm, and so the key, of each kind. */
export const KEY_DIGEST: Record<BlobKind, 'sha256' | 'sha1'> = { packages: 'sha256', droplets: 'sha256', resources: 'sha1' };

const KEY_PATTERN: Record<BlobKind, RegExp> = { packages: /^[0-9a-f]{64}$/, droplets: /^[0-9a-f]{64}$/, resources: /^[0-9a-f]{40}$/ };

export function isBlobKind(kind: string): kind is BlobKind {
  return (BLOB_KINDS as readonly string[]).includes(kind);
}

/** Why `key` cannot name a blob of `kind`, or null when it can. */
export function keyProblem(kind: BlobKind, key: string): string | null {
  if (KEY_PATTERN[kind].test(key)) return null;
  const hex = KEY_DIGEST[kind] === 'sha256' ? 64 : 40;
  return `${JSON.stringify(key.slice(0, 80))} is not a ${kind} key: expected its ${KEY_DIGEST[kind]} as ${hex} lower-case hex digits`;
}

/** A blob's place below a blobstore directory: `<kind>/<first two chars>/<key>` (a valid key assumed). */
export function blobRelativePath(kind: BlobKind, key: string): string {
  return `${kind}/${key.slice(0, 2)}/${key}`;
}

export type BlobAddress = { kind: BlobKind; key: string };

/** `/blobs/<kind>/<key>` → the blob it names, or the sentence saying why it names none. */
export function parseBlobPath(pathname: string): BlobAddress | { problem: string } {
  const m = /^\/blobs\/([^/]*)\/([^/]*)$/.exec(pathname);
  if (!m) return { problem: `${JSON.stringify(pathname.slice(0, 120))} is not a blob path: expected /blobs/<kind>/<key>` };
  let kind: string;
  let key: string;
  try {
    kind = decodeURIComponent(m[1]!);
    key = decodeURIComponent(m[2]!);
  } catch {
    return { problem: 'the blob path is not valid percent-encoding' };
  }
  if (!isBlobKind(kind)) return { problem: `${JSON.stringify(kind.slice(0, 40))} is not a blob kind: expected one of ${BLOB_KINDS.join(', ')}` };
  const problem = keyProblem(kind, key);
  return problem ? { problem } : { kind, key };
}

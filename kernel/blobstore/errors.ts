// Errors of the blobstore's store: each a sentence for the client, with the HTTP status the
// blob API answers it with.

export class BlobError extends Error {
  override name = 'BlobError';
  constructor(
    readonly code: 'digest_mismatch' | 'too_large' | 'incomplete',
    readonly status: 413 | 422 | 400,
    message: string,
  ) {
    super(message);
  }
}

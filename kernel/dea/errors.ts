// Errors of the DEA (its containers and stager have their own): a stable code and a sentence.
export class DeaError extends Error {
  override name = 'DeaError';
  constructor(
    readonly code: 'droplet_download_failed' | 'droplet_checksum_mismatch' | 'droplet_unpack_failed' | 'start_failed' | 'unhealthy' | 'isolation_unavailable',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

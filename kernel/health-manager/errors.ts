// Errors of the health manager: a stable code and a sentence saying what was being done.

export class HmError extends Error {
  override name = 'HmError';
  constructor(
    readonly code: 'bulk_request_failed' | 'bulk_unauthorized' | 'bulk_invalid_reply',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// Errors of the ccdb component: a sentence an operator can act on, with a stable code.

/** The cluster would not be made, started, stopped or provisioned. */
export class CcdbError extends Error {
  override name = 'CcdbError';
  readonly code = 'ccdb_failed';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

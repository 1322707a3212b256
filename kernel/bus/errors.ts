// Errors of the kernel bus: small classes with a stable code, wrapping what was being done.

export class BusError extends Error {
  override name = 'BusError';
  constructor(
    readonly code: 'invalid_outgoing' | 'not_connected' | 'timeout' | 'no_responders' | 'invalid_reply' | 'connect_failed',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

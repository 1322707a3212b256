// Errors of the router. Each has a stable `code`; messages are sentences that say what was
// being done, so an operator reads the cause without a stack.

export type RouterErrorCode = 'listen_failed' | 'worker_failed' | 'bad_request' | 'bad_response';

export class RouterError extends Error {
  override name = 'RouterError';
  constructor(
    readonly code: RouterErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A client request the router refuses before it reaches any backend (answered 400). Thrown
 * by the request parser; `reason` is the sentence the client reads.
 */
export class BadRequestError extends RouterError {
  override name = 'BadRequestError';
  constructor(readonly reason: string) {
    super('bad_request', reason);
  }
}

/** A backend answered something that is not valid HTTP/1.1 (answered 502). */
export class BadResponseError extends RouterError {
  override name = 'BadResponseError';
  constructor(readonly reason: string) {
    super('bad_response', reason);
  }
}

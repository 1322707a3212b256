// Errors of the app-developer CLI. Each has a stable `code`, so the CLI prints its message as
// one line (`ingot: …`) and exits 1; anything without a code is a bug and keeps its stack.

export type ClientErrorCode =
  | 'usage'
  | 'no_api'
  | 'not_logged_in'
  | 'session_expired'
  | 'not_found'
  | 'unreachable'
  | 'api_error'
  | 'bad_response'
  | 'staging_failed'
  | 'start_failed'
  | 'timeout'
  | 'bad_path';

export class ClientError extends Error {
  override name = 'ClientError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A mistake in how a command was called: a bad flag value, a missing argument. */
export class ClientUsageError extends ClientError {
  override name = 'ClientUsageError';
  constructor(message: string) {
    super('usage', message);
  }
}

/** The controller answered with its v3 error envelope. */
export class ApiRequestError extends ClientError {
  override name = 'ApiRequestError';
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly method: string,
    readonly path: string,
  ) {
    super('api_error', detail);
  }
}

/** Wraps an error with what was being done ("Creating app web: …"), keeping its code. */
export function doing(what: string, err: unknown): Error {
  if (err instanceof ClientError) return new ClientError(err.code, `${what}: ${err.message}`, { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

/** Runs `fn`, wrapping a client error with what was being done. */
export async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw doing(what, err);
  }
}

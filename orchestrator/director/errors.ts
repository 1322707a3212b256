// Errors of the director. API errors reuse the controller's ApiError (the shared HTTP server
// renders them) with the director's own titles; the rest are small classes with a stable code.
import { ApiError } from '../../kernel/cloud-controller/errors.ts';

export { ApiError };

export class TaskStateError extends Error {
  override name = 'TaskStateError';
  readonly code = 'invalid_task_transition';
  constructor(
    readonly state: string,
    readonly happening: string,
  ) {
    super(`A task in state ${state} cannot ${happening}`);
  }
}

/** A lock is taken by another task: the message names the holder. */
export class LockHeldError extends Error {
  override name = 'LockHeldError';
  readonly code = 'lock_held';
  constructor(
    readonly lock: string,
    readonly holderTaskId: number,
    readonly holderDescription: string,
  ) {
    super(`${lockLabel(lock)} is locked by task ${holderTaskId} (${holderDescription})`);
  }
}

function lockLabel(lock: string): string {
  const [kind, name] = lock.split(':', 2);
  return name ? `The ${kind} ${name}` : `The ${kind}`;
}

export class MbusError extends Error {
  override name = 'MbusError';
  constructor(
    readonly code: 'start_failed' | 'reload_failed' | 'unknown_agent',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class ReleaseInvalidError extends Error {
  override name = 'ReleaseInvalidError';
  readonly code = 'invalid_release';
}

/** Deleting a release or stemcell was refused or failed: `in_use` names the deployments, `cpi_failed` carries the CPI's message. */
export class CatalogError extends Error {
  override name = 'CatalogError';
  constructor(
    readonly code: 'not_found' | 'in_use' | 'cpi_failed',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The director API's errors, BOSH-style titles in the shared envelope. */
export const apiErrors = {
  badRequest: (detail: string) => new ApiError(400, 40000, 'Director-BadRequest', detail),
  notAuthenticated: () =>
    new ApiError(401, 40100, 'Director-NotAuthenticated', 'Authentication required: send a bearer token from POST /auth/token', {
      headers: { 'WWW-Authenticate': 'Bearer realm="ingot-director"' },
    }),
  invalidToken: (detail: string) =>
    new ApiError(401, 40101, 'Director-InvalidToken', detail, { headers: { 'WWW-Authenticate': 'Bearer realm="ingot-director", error="invalid_token"' } }),
  badCredentials: () => new ApiError(401, 40102, 'Director-BadCredentials', 'Bad credentials: the user or the password is wrong'),
  forbidden: (detail: string) => new ApiError(403, 40300, 'Director-Forbidden', detail),
  notFound: (what: string) => new ApiError(404, 40400, 'Director-NotFound', `${what} not found`),
  conflict: (detail: string) => new ApiError(409, 40900, 'Director-Conflict', detail),
  lockHeld: (err: LockHeldError) => new ApiError(409, 40901, 'Director-LockHeld', err.message),
  invalid: (detail: string) => new ApiError(422, 42200, 'Director-Invalid', detail),
  cpiFailed: (detail: string) => new ApiError(502, 50200, 'Director-CpiError', detail),
};

// Errors of the agent: one small class with a stable code; messages are sentences that say
// what was being done ("Applying job web: fetching blob …: digest mismatch"), as the BOSH agent does.

export type AgentErrorCode =
  | 'invalid_settings'
  | 'invalid_spec'
  | 'blob_fetch_failed'
  | 'digest_mismatch'
  | 'install_failed'
  | 'not_applied'
  | 'script_failed'
  | 'task_not_found'
  | 'disk_not_mounted'
  | 'upload_failed'
  | 'task_failed';

export class AgentError extends Error {
  override name = 'AgentError';
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Wraps any failure with what was being done: `Applying spec: <inner message>`. */
export function wrap(doing: string, err: unknown): Error {
  const inner = err instanceof Error ? err.message : String(err);
  const code = err instanceof AgentError ? err.code : 'install_failed';
  return new AgentError(code, `${doing}: ${inner}`, { cause: err });
}

export async function doing<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw wrap(what, err);
  }
}

// Error classes of the container layer. Each has a stable `code`; messages are sentences that
// say what was being done ("Creating network namespace ingot-x-3: …"), so an operator reads
// the cause without a stack trace.

export type ContainerErrorCode =
  | 'INVALID_CONFIG'
  | 'ISOLATION_UNAVAILABLE'
  | 'COMMAND_FAILED'
  | 'POOL_EXHAUSTED'
  | 'INVALID_STATE'
  | 'NOT_FOUND'
  | 'SETUP_FAILED';

export class ContainerError extends Error {
  override name = 'ContainerError';
  readonly code: ContainerErrorCode;

  constructor(code: ContainerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Options failed validation; `problems` lists every one of them, each naming its path. */
export class InvalidConfigError extends ContainerError {
  override name = 'InvalidConfigError';
  readonly problems: string[];

  constructor(what: string, problems: string[]) {
    super('INVALID_CONFIG', `Invalid ${what}: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

/** The machine lacks what namespaced isolation needs; `missing` names each piece. */
export class IsolationUnavailableError extends ContainerError {
  override name = 'IsolationUnavailableError';
  readonly missing: string[];

  constructor(message: string, missing: string[]) {
    super('ISOLATION_UNAVAILABLE', message);
    this.missing = missing;
  }
}

/** An external command (ip, nft, …) exited non-zero. */
export class CommandFailedError extends ContainerError {
  override name = 'CommandFailedError';
  readonly argv: string[];
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(argv: string[], exitCode: number | null, stderr: string, options?: { cause?: unknown }) {
    const detail = stderr.trim().split('\n').slice(-3).join(' / ') || `exit status ${exitCode}`;
    super('COMMAND_FAILED', `${argv.slice(0, 4).join(' ')} failed: ${detail}`, options);
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** No uid, host port or subnet slot is left in a configured range. */
export class PoolExhaustedError extends ContainerError {
  override name = 'PoolExhaustedError';
  readonly pool: string;

  constructor(pool: string, size: number) {
    super('POOL_EXHAUSTED', `All ${size} ${pool} are in use`);
    this.pool = pool;
  }
}

/** An operation was asked of a container in a state that does not allow it. */
export class ContainerStateError extends ContainerError {
  override name = 'ContainerStateError';

  constructor(message: string) {
    super('INVALID_STATE', message);
  }
}

/** Wraps `err` with the gerund phrase of what was being done, keeping the original as cause. */
export function wrapError(doing: string, err: unknown, code: ContainerErrorCode = 'SETUP_FAILED'): ContainerError {
  const message = err instanceof Error ? err.message : String(err);
  const finalCode = err instanceof ContainerError ? err.code : code;
  return new ContainerError(finalCode, `${doing}: ${message}`, { cause: err });
}

/** Runs `fn`, rethrowing any failure wrapped with `doing`. */
export async function doing<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw wrapError(what, err);
  }
}

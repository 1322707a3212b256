// Errors of the component runtime. A ConfigError is a user's mistake: the CLI prints its
// message as one line, never a stack.

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly code = 'invalid_config';
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(problems.length === 1 ? problems[0]! : `${problems.length} problems in ${file}: ${problems.join('; ')}`);
  }
}

export class ComponentError extends Error {
  override name = 'ComponentError';
  constructor(
    readonly code: 'unknown_component' | 'start_failed' | 'isolation_unavailable',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

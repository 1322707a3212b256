// A UsageError is a user's mistake: printed as one line, exit 1, never a stack.
export class UsageError extends Error {
  override name = 'UsageError';
}

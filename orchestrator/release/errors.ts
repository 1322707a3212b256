// Errors of the release package. Every mistake found in a job spec, a template, a property
// or a tarball is collected, not just the first, and each one names where it is: the file
// and path, or the job, template and property.

/** A release that cannot be built or read: its problems, one sentence each. */
export class ReleaseError extends Error {
  override name = 'ReleaseError';
  readonly problems: string[];
  constructor(
    readonly code: 'invalid_job_spec' | 'invalid_release' | 'build_failed',
    problems: string[],
    options?: { cause?: unknown },
  ) {
    super(problems.length === 1 ? problems[0]! : `${problems.length} problems:\n  ${problems.join('\n  ')}`, options);
    this.problems = problems;
  }
}

/** A job whose templates cannot be rendered from the properties and links it was given. */
export class RenderError extends Error {
  override name = 'RenderError';
  readonly code = 'render_failed';
  constructor(
    readonly job: string,
    readonly problems: string[],
  ) {
    super(problems.length === 1 ? problems[0]! : `${problems.length} problems rendering job ${job}:\n  ${problems.join('\n  ')}`);
  }
}

/** Wraps a failure with what was being done: "Building package ingot: …". */
export async function doing<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ReleaseError) throw err;
    throw new ReleaseError('build_failed', [`${what}: ${(err as Error).message}`], { cause: err });
  }
}

// Errors of staging. Every failure is one StagingError whose stable `code` says which step
// failed and whose message is a sentence saying what was being done and why, so the DEA can
// put it into the staging reply and the developer reads the cause without a stack.

export type StagingErrorCode =
  /** The request itself is malformed (a field failed validation). */
  | 'invalid_request'
  /** The app package could not be fetched (HTTP status, network, too large). */
  | 'download_failed'
  /** The package's sha256 differs from the one the request named. */
  | 'checksum_mismatch'
  /** The package is not a readable zip. */
  | 'invalid_archive'
  /** The package has an entry that would escape the app directory, or exceeds the unpack limits. */
  | 'unsafe_archive'
  /** The buildpack asked for is unknown, not allowed, or could not be cloned. */
  | 'buildpack_unavailable'
  /** No candidate's bin/detect accepted the app. */
  | 'no_buildpack_detected'
  /** bin/supply, bin/finalize or bin/compile failed. */
  | 'compile_failed'
  /** bin/release failed or printed something that is not the expected YAML. */
  | 'release_failed'
  /** Neither the user, nor a Procfile, nor the buildpack gave a web start command. */
  | 'no_start_command'
  /** The droplet could not be written. */
  | 'packaging_failed'
  /** The droplet could not be uploaded. */
  | 'upload_failed'
  /** Staging ran past its deadline. */
  | 'timeout'
  /** The caller cancelled staging (the DEA is shutting down). */
  | 'cancelled'
  /** A fault of the stager itself (disk full, a bug). */
  | 'internal_error';

/** The steps of staging, in order; an error names the one it happened in. */
export type StagingStep = 'request' | 'download' | 'unpack' | 'buildpack' | 'detect' | 'supply' | 'finalize' | 'compile' | 'release' | 'package' | 'upload';

export class StagingError extends Error {
  override name = 'StagingError';
  readonly code: StagingErrorCode;
  readonly step: StagingStep;
  /** unsafe_archive: the offending entry's name as it appears in the zip. */
  readonly entry?: string;
  /** compile/release failures: the buildpack that failed. */
  readonly buildpack?: string;
  /** A buildpack command's exit status, when it exited. */
  readonly exitCode?: number | null;

  constructor(
    code: StagingErrorCode,
    step: StagingStep,
    message: string,
    details: { entry?: string; buildpack?: string; exitCode?: number | null; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.step = step;
    if (details.entry !== undefined) this.entry = details.entry;
    if (details.buildpack !== undefined) this.buildpack = details.buildpack;
    if (details.exitCode !== undefined) this.exitCode = details.exitCode;
  }
}

/** A problem found in a zip entry: turned into unsafe_archive by the unpacker. */
export class UnsafeEntryError extends Error {
  override name = 'UnsafeEntryError';
  constructor(
    readonly entry: string,
    readonly problem: string,
  ) {
    super(`entry ${entry} ${problem}`);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// CPI errors carry BOSH's error type names (the director decides on them: VMNotFound during
// delete is success, ok_to_retry lets it retry) and read as sentences of what was being done.

export type BoshErrorType =
  | 'Bosh::Clouds::CloudError'
  | 'Bosh::Clouds::CpiError'
  | 'Bosh::Clouds::NotImplemented'
  | 'Bosh::Clouds::NotSupported'
  | 'Bosh::Clouds::VMNotFound'
  | 'Bosh::Clouds::DiskNotFound'
  | 'Bosh::Clouds::DiskNotAttached'
  | 'Bosh::Clouds::VMCreationFailed'
  | 'Bosh::Clouds::NoDiskSpace'
  | 'InvalidCall';

export class CpiError extends Error {
  override name = 'CpiError';
  readonly type: BoshErrorType;
  readonly okToRetry: boolean;

  constructor(type: BoshErrorType, message: string, options?: { cause?: unknown; okToRetry?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.type = type;
    this.okToRetry = options?.okToRetry ?? false;
  }
}

export class CloudError extends CpiError {
  override name = 'CloudError';
  constructor(message: string, options?: { cause?: unknown; okToRetry?: boolean }) {
    super('Bosh::Clouds::CloudError', message, options);
  }
}

export class VMNotFoundError extends CpiError {
  override name = 'VMNotFoundError';
  constructor(vmCid: string) {
    super('Bosh::Clouds::VMNotFound', `VM ${vmCid} not found`);
  }
}

export class DiskNotFoundError extends CpiError {
  override name = 'DiskNotFoundError';
  constructor(diskCid: string) {
    super('Bosh::Clouds::DiskNotFound', `Disk ${diskCid} not found`);
  }
}

export class DiskNotAttachedError extends CpiError {
  override name = 'DiskNotAttachedError';
  constructor(vmCid: string, diskCid: string) {
    super('Bosh::Clouds::DiskNotAttached', `Disk ${diskCid} is not attached to VM ${vmCid}`);
  }
}

export class VMCreationFailedError extends CpiError {
  override name = 'VMCreationFailedError';
  constructor(message: string, options?: { cause?: unknown; okToRetry?: boolean }) {
    super('Bosh::Clouds::VMCreationFailed', message, options);
  }
}

export class NotImplementedError extends CpiError {
  override name = 'NotImplementedError';
  constructor(method: string, cpi: string) {
    super('Bosh::Clouds::NotImplemented', `Method ${method} is not implemented by the ${cpi} CPI`);
  }
}

/** A request the door could not make sense of (BOSH's own type for this is InvalidCall). */
export class InvalidCallError extends CpiError {
  override name = 'InvalidCallError';
  constructor(message: string) {
    super('InvalidCall', message);
  }
}

/** Prefixes `err`'s message with what was being done; CpiErrors keep their type. */
export function wrapCpiError(doing: string, err: unknown): CpiError {
  const message = `${doing}: ${err instanceof Error ? err.message : String(err)}`;
  if (err instanceof CpiError) return new CpiError(err.type, message, { cause: err, okToRetry: err.okToRetry });
  return new CloudError(message, { cause: err });
}

/** Runs `fn`, wrapping any failure with `what` ("Creating VM vm-x: …"). */
export async function doing<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw wrapCpiError(what, err);
  }
}

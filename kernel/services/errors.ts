// Errors of the service nodes and gateways: small classes with a stable code, whose message
// is a sentence an operator or a broker client can read as it is.
import type { ServiceNodeErrorCode } from '../bus/mod.ts';

/** A refusal a node sends back to a gateway (and the gateway turns into an OSB status). */
export class ServiceError extends Error {
  override name = 'ServiceError';
  constructor(
    readonly code: ServiceNodeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A managed server (redis-server, …) that would not start or stop. */
export class UnitError extends Error {
  override name = 'UnitError';
  readonly code = 'unit_failed';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

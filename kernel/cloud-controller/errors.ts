// Errors of the cloud controller's API, in Cloud Foundry's v3 envelope:
// `{"errors":[{"code":10010,"title":"CF-ResourceNotFound","detail":"App not found"}]}`.
// A handler throws one of these; the HTTP layer renders it with its status. Anything else
// thrown is a bug: it is logged with its stack and the client sees a 500 without one.

export interface V3Error {
  code: number;
  title: string;
  detail: string;
}

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: number,
    readonly title: string,
    detail: string,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(detail, options);
    this.headers = options?.headers ?? {};
  }
  readonly headers: Record<string, string>;

  toJSON(): { errors: V3Error[] } {
    return { errors: [{ code: this.code, title: this.title, detail: this.message }] };
  }
}

export const errors = {
  badRequest: (detail: string) => new ApiError(400, 10000, 'CF-InvalidRequest', detail),
  messageParse: (detail: string) => new ApiError(400, 1001, 'CF-MessageParseError', `Request invalid due to parse error: ${detail}`),
  badQuery: (detail: string) => new ApiError(400, 10005, 'CF-BadQueryParameter', `The query parameter is invalid: ${detail}`),
  notAuthenticated: () =>
    new ApiError(401, 10002, 'CF-NotAuthenticated', 'Authentication error', { headers: { 'WWW-Authenticate': 'Bearer realm="ingot"' } }),
  invalidToken: (detail = 'Invalid Auth Token') =>
    new ApiError(401, 1000, 'CF-InvalidAuthToken', detail, { headers: { 'WWW-Authenticate': 'Bearer realm="ingot", error="invalid_token"' } }),
  badCredentials: () => new ApiError(401, 10002, 'CF-NotAuthenticated', 'Bad credentials'),
  notAuthorized: () => new ApiError(403, 10003, 'CF-NotAuthorized', 'You are not authorized to perform the requested action'),
  notFound: (resource: string) => new ApiError(404, 10010, 'CF-ResourceNotFound', `${resource} not found`),
  methodNotAllowed: (method: string, path: string) => new ApiError(405, 10000, 'CF-InvalidRequest', `${method} is not supported on ${path}`),
  conflict: (detail: string) => new ApiError(409, 10008, 'CF-ConcurrencyError', detail),
  payloadTooLarge: (detail: string) => new ApiError(413, 10009, 'CF-PayloadTooLarge', detail),
  unsupportedMediaType: (detail: string) => new ApiError(415, 10000, 'CF-InvalidRequest', detail),
  unprocessable: (detail: string) => new ApiError(422, 10008, 'CF-UnprocessableEntity', detail),
  uniqueness: (detail: string) => new ApiError(422, 10016, 'CF-UniquenessError', detail),
  routeHostTaken: (detail: string) => new ApiError(422, 210003, 'CF-RouteHostTaken', detail),
  packageInvalid: (detail: string) => new ApiError(422, 150001, 'CF-AppPackageInvalid', `The app package is invalid: ${detail}`),
  /** A quota refused a change (quotas.ts): CF's error name ends the detail. */
  quotaExceeded: (r: { cfName: string; message: string }) => new ApiError(422, 10008, 'CF-UnprocessableEntity', `${r.message} (${r.cfName})`),
  noDroplet: () => new ApiError(422, 10008, 'CF-UnprocessableEntity', 'Assign a droplet before starting this app.'),
  /** A service broker could not be reached or answered wrongly (its refusals of a request are 422s). */
  brokerBadResponse: (detail: string) => new ApiError(502, 10001, 'CF-ServiceBrokerBadResponse', detail),
  serviceUnavailable: (detail: string) => new ApiError(503, 10015, 'CF-ServiceUnavailable', detail),
};

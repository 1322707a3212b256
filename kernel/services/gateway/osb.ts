// The Open Service Broker API 2.17 at the edge, as functions of data: the version header,
// the request bodies and query parameters, and the error bodies the spec names. The broker
// (broker.ts) receives only what passed here.
import { z } from 'zod';
import { describeZod } from '../../bus/mod.ts';
import { UNIT_ID } from '../fingerprint.ts';

/** The oldest API version this broker answers (OSB: 412 Precondition Failed below it). */
export const MIN_API_VERSION = { major: 2, minor: 13 };

export interface OsbReply {
  status: number;
  body: Record<string, unknown>;
}

export function osbError(status: number, error: string, description: string): OsbReply {
  return { status, body: { error, description } };
}

/** The reason to refuse an `X-Broker-API-Version` header, or undefined when it is acceptable. */
export function refuseApiVersion(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return 'the X-Broker-API-Version header is required (this broker speaks 2.13 to 2.17)';
  const m = /^\s*(\d+)\.(\d+)\s*$/.exec(value);
  if (!m) return `X-Broker-API-Version "${value}" is not a version such as 2.17`;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major !== MIN_API_VERSION.major || minor < MIN_API_VERSION.minor) {
    return `X-Broker-API-Version ${value} is not supported: this broker speaks ${MIN_API_VERSION.major}.${MIN_API_VERSION.minor} to 2.17`;
  }
  return undefined;
}

const guid = z.string().min(1).max(255);
const params = z.record(z.unknown());

export const provisionBody = z
  .object({
    service_id: guid,
    plan_id: guid,
    organization_guid: guid.optional(),
    space_guid: guid.optional(),
    parameters: params.optional(),
    context: z.record(z.unknown()).optional(),
    maintenance_info: z.record(z.unknown()).optional(),
  })
  .passthrough();
export type ProvisionBody = z.infer<typeof provisionBody>;

export const bindBody = z
  .object({
    service_id: guid,
    plan_id: guid,
    app_guid: guid.optional(),
    bind_resource: z.record(z.unknown()).optional(),
    parameters: params.optional(),
    context: z.record(z.unknown()).optional(),
  })
  .passthrough();
export type BindBody = z.infer<typeof bindBody>;

export const updateBody = z
  .object({
    service_id: guid,
    plan_id: guid.optional(),
    parameters: params.optional(),
    context: z.record(z.unknown()).optional(),
    previous_values: z.record(z.unknown()).optional(),
    maintenance_info: z.record(z.unknown()).optional(),
  })
  .passthrough();
export type UpdateBody = z.infer<typeof updateBody>;

/** The ids a delete names in its query (OSB: both required). */
export const deleteQuery = z.object({ service_id: guid, plan_id: guid }).passthrough();

/** Parses a body or query against its schema: the value, or a 400 naming the field. */
export function parseOsb<S extends z.ZodTypeAny>(schema: S, value: unknown, what: string): { ok: true; value: z.output<S> } | { ok: false; reply: OsbReply } {
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, reply: osbError(400, 'BadRequest', `invalid ${what}: ${describeZod(parsed.error)}`) };
}

/** Instance and binding ids become directory and user names on the nodes. */
export function refuseId(kind: 'instance' | 'binding', id: string): OsbReply | undefined {
  if (UNIT_ID.test(id)) return undefined;
  return osbError(400, 'BadRequest', `${kind} id "${id.slice(0, 140)}" must be letters, digits, ".", "-" or "_" (at most 128)`);
}

/** `accepts_incomplete=true` (OSB: only the literal true counts). */
export function acceptsIncomplete(url: URL): boolean {
  return url.searchParams.get('accepts_incomplete') === 'true';
}

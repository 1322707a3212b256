// Parsing of one BOSH external-CPI request, `{method, arguments, context}`: raw stdin in, a
// typed call out, or an InvalidCallError naming every problem. Pure; the door (external.ts)
// does the I/O.

import { z } from 'zod';
import { InvalidCallError } from './errors.ts';
import type { CpiMethod } from './types.ts';

const str = z.string();
const obj = z.record(z.unknown());
const network = z
  .object({
    type: z.enum(['manual', 'dynamic', 'vip']).optional(),
    ip: z.string().optional(),
    netmask: z.string().optional(),
    gateway: z.string().optional(),
    dns: z.array(z.string()).optional(),
    default: z.array(z.string()).optional(),
    cloud_properties: obj.optional(),
  })
  .passthrough();
const nullableObj = obj.nullable().transform((v) => v ?? {});

/** Each method's positional arguments, as BOSH sends them. */
export const argumentSchemas = {
  info: z.tuple([]),
  create_stemcell: z.tuple([str, nullableObj]),
  delete_stemcell: z.tuple([str]),
  create_vm: z.tuple([
    str,
    str,
    nullableObj,
    z.record(network),
    z.array(str).nullable().transform((v) => v ?? []),
    nullableObj,
  ]),
  delete_vm: z.tuple([str]),
  has_vm: z.tuple([str]),
  reboot_vm: z.tuple([str]),
  set_vm_metadata: z.tuple([str, z.record(z.coerce.string())]),
  // vm_cid is optional on the wire.
  create_disk: z.preprocess(
    (v) => (Array.isArray(v) && v.length === 2 ? [...v, null] : v),
    z.tuple([z.number().int().positive(), nullableObj, str.nullable()]),
  ),
  attach_disk: z.tuple([str, str]),
  detach_disk: z.tuple([str, str]),
  delete_disk: z.tuple([str]),
  has_disk: z.tuple([str]),
  shell_argv: z.tuple([str, z.array(str).default([])]),
} satisfies Record<CpiMethod, z.ZodTypeAny>;

export interface CpiCall {
  method: CpiMethod;
  arguments: unknown[];
  context: Record<string, unknown>;
}

const envelope = z.object({
  method: z.string(),
  arguments: z.array(z.unknown()).default([]),
  context: z.record(z.unknown()).default({}),
});

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(request)'}: ${i.message}`).join('; ');
}

export function isCpiMethod(name: string): name is CpiMethod {
  return Object.hasOwn(argumentSchemas, name);
}

/** Parses stdin's text into a call whose arguments match the method's schema. */
export function parseRequest(text: string): CpiCall {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InvalidCallError(`Parsing CPI request: not JSON (${(err as Error).message})`);
  }
  const env = envelope.safeParse(raw);
  if (!env.success) throw new InvalidCallError(`Parsing CPI request: ${describeIssues(env.error)}`);
  const { method } = env.data;
  if (!isCpiMethod(method)) {
    throw new InvalidCallError(`Parsing CPI request: unknown method "${method}"; known: ${Object.keys(argumentSchemas).join(', ')}`);
  }
  const args = argumentSchemas[method].safeParse(env.data.arguments);
  if (!args.success) {
    const issues = describeIssues(args.error).replace(/(^|; )(\d+)/g, '$1arguments[$2]');
    throw new InvalidCallError(`Parsing arguments of ${method}: ${issues}`);
  }
  return { method, arguments: args.data as unknown[], context: env.data.context };
}

// Query strings of v3 requests, validated at the edge like bodies: every parameter a route
// accepts is named in its zod schema; an unknown one, or a bad value, is a 400 naming it.
// List filters (`names=a,b`) arrive as comma-separated strings and leave as arrays.
import { z } from 'zod';
import { errors } from '../errors.ts';
import { DEFAULT_PER_PAGE, MAX_PER_PAGE } from './pagination.ts';

/** `a,b` → ['a', 'b'] (empty items dropped). */
export const csv = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim()).filter((x) => x.length > 0));

const positiveInt = (name: string, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${name} must be a positive integer`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= max, `${name} must be between 1 and ${max}`);

/** The keys every list accepts. */
export function listQuery<T extends z.ZodRawShape>(filters: T, orderable: readonly [string, ...string[]] = ['created_at', 'updated_at']) {
  const orders = orderable.flatMap((o) => [o, `+${o}`, `-${o}`]) as [string, ...string[]];
  return z
    .object({
      page: positiveInt('page', 1_000_000).default('1'),
      per_page: positiveInt('per_page', MAX_PER_PAGE).default(String(DEFAULT_PER_PAGE)),
      order_by: z.enum(orders).optional(),
      ...filters,
    })
    .strict();
}

/** `-name` → {column: 'name', desc: true}. */
export function orderBy(value: string | undefined): { column: string; desc: boolean } | undefined {
  if (!value) return undefined;
  if (value.startsWith('-')) return { column: value.slice(1), desc: true };
  return { column: value.replace(/^\+/, ''), desc: false };
}

export function parseQuery<S extends z.ZodTypeAny>(params: URLSearchParams, schema: S): z.output<S> {
  const raw: Record<string, string> = {};
  for (const [k, v] of params) {
    if (k in raw) throw errors.badQuery(`${k} is given more than once`);
    raw[k] = v;
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const detail = parsed.error.issues
    .map((i) => (i.code === 'unrecognized_keys' ? `Unknown query parameter(s): ${i.keys.map((k) => `'${k}'`).join(', ')}` : `${i.path.join('.')}: ${i.message}`))
    .join('; ');
  throw errors.badQuery(detail);
}

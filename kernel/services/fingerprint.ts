// What makes two broker requests "the same" (OSB: a repeated provision or bind with identical
// details answers 200; other details under the same id answer 409). A digest of the request's
// details with object keys sorted, so key order on the wire does not matter.
import { createHash } from 'node:crypto';

export function fingerprint(details: Record<string, unknown>): string {
  return createHash('sha256').update(canonical(details)).digest('hex').slice(0, 32);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * Instance and binding ids become directory names and Redis ACL user names: letters, digits,
 * `-`, `_`, `.`, at most 128 (OSB ids are GUIDs in practice).
 */
export const UNIT_ID = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

// Runs a zod schema over a located document and turns each issue into a Problem naming
// file, line and path, worded like the kernel's config errors.
import type { z } from 'zod';
import type { Problem } from './errors.ts';
import { problemAt, type YamlSource } from './yaml-source.ts';

export function checkSchema<S extends z.ZodTypeAny>(
  source: YamlSource,
  schema: S,
  /** Where in the document the checked value sits, when it is not the whole document. */
  prefix: ReadonlyArray<string | number> = [],
): { ok: true; value: z.output<S> } | { ok: false; problems: Problem[] } {
  let value: unknown = source.value;
  for (const key of prefix) value = (value as Record<string | number, unknown> | undefined)?.[key];
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  const problems = parsed.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => problemAt(source, [...prefix, ...issue.path, key], 'unknown key'))
      : [problemAt(source, [...prefix, ...issue.path], describe(issue))],
  );
  return { ok: false, problems: dedupe(problems) };
}

function describe(issue: z.ZodIssue): string {
  if (issue.code === 'invalid_type') {
    return issue.received === 'undefined' ? 'required' : `expected ${article(issue.expected)}, got ${issue.received}`;
  }
  if (issue.code === 'invalid_union') {
    const missing = issue.unionErrors.every((e) => e.issues.every((i) => i.code === 'invalid_type' && i.received === 'undefined'));
    // Otherwise the union's own errorMap message says what the alternatives are.
    return missing ? 'required' : lower(issue.message);
  }
  return lower(issue.message);
}

function lower(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.file}:${p.line}:${p.path}:${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

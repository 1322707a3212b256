// Component config: a YAML file → one zod schema (the common keys plus the component's own)
// → one typed object with defaults. Every problem is reported at once, each naming the
// file, line and key: `router.yml:7 status.port: expected a number`.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, type Node } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './errors.ts';

const natsUrl = z
  .string()
  .regex(/^(nats|tls):\/\/[^\s/]+$/, 'expected a nats:// URL such as nats://10.0.0.1:4222');

/** Keys every kernel component shares. */
export const commonConfig = z
  .object({
    nats: z
      .object({
        servers: z.array(natsUrl).min(1, 'expected at least one server'),
        user: z.string().min(1).optional(),
        password: z.string().min(1).optional(),
        token: z.string().min(1).optional(),
      })
      .strict()
      .refine((n) => n.token !== undefined || (n.user !== undefined && n.password !== undefined), {
        message: 'the kernel NATS requires credentials: set user and password, or token',
      }),
    index: z.number().int().min(0).default(0),
    status: z
      .object({
        host: z.string().default('0.0.0.0'),
        port: z.number().int().min(0).max(65535).default(0),
        user: z.string().min(1).optional(),
        password: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
    logging: z
      .object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
      .strict()
      .default({}),
    /** Address other components use to reach this one; detected when absent. */
    local_ip: z.string().optional(),
    /** Bounded grace for draining on SIGTERM. */
    drain_timeout_s: z.number().positive().default(30),
  });

export type CommonConfig = z.output<typeof commonConfig>;

/** Merges a component's own keys into the common ones; unknown keys are refused. */
export function componentConfig<T extends z.ZodRawShape>(own: T) {
  return commonConfig.extend(own).strict();
}

/** Reads and validates a config file. Throws ConfigError listing every problem. */
export async function loadConfig<S extends z.ZodTypeAny>(file: string, schema: S): Promise<z.output<S>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`${file}: cannot read the config file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
  return parseConfig(text, file, schema);
}

export function parseConfig<S extends z.ZodTypeAny>(text: string, file: string, schema: S): z.output<S> {
  const name = basename(file);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => `${name}:${lines.linePos(e.pos[0]).line} ${e.message.split('\n')[0]}`),
    );
  }
  const parsed = schema.safeParse(doc.toJS() ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const at = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
    const line = lineOf(doc.contents, at, lines);
    const where = issue.path.length > 0 ? ` ${formatPath(issue.path)}` : '';
    const unknown = issue.code === 'unrecognized_keys' ? ` (${issue.keys.join(', ')})` : '';
    return `${name}:${line}${where}: ${describe(issue)}${unknown}`;
  });
  throw new ConfigError(file, problems);
}

/** `a.b[2].c` from a zod path. */
export function formatPath(path: Array<string | number>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function describe(issue: z.ZodIssue): string {
  if (issue.code === 'invalid_type') {
    return issue.received === 'undefined' ? 'required' : `expected ${article(issue.expected)}, got ${issue.received}`;
  }
  if (issue.code === 'unrecognized_keys') return 'unknown key';
  return issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** The line of the deepest node that exists on the path (a missing key points at its parent). */
export function lineOf(root: unknown, path: Array<string | number>, lines: LineCounter): number {
  let node = root as Node | null;
  let offset = (node as { range?: [number] } | null)?.range?.[0] ?? 0;
  for (const key of path) {
    let next: unknown;
    if (isMap(node)) next = node.get(key, true);
    else if (isSeq(node)) next = node.get(Number(key), true);
    if (!next) break;
    node = next as Node;
    offset = (node as { range?: [number] }).range?.[0] ?? offset;
  }
  return lines.linePos(offset).line;
}

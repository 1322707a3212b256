// A job's spec.yml (BOSH's job spec, with Ingot's `processes` in monit's place and the
// Debian packages it needs): parsed once, validated with every problem reported at once as
// `kernel/jobs/router/spec.yml:12 properties.router.port: …`.
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { formatPath, lineOf } from '../../kernel/component/config.ts';
import type { JobSpec as LinkJobSpec } from '../manifest/links.ts';
import { ReleaseError } from './errors.ts';

export const NamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const Name = z.string().regex(NamePattern, 'a name is letters, digits, ".", "_" and "-"');
/** `router.port`, `nats.cluster_port`: dotted words. */
export const PropertyNamePattern = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$/;
const DebianPackage = z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, 'a Debian package name is lower-case letters, digits, "+", "-" and "."');
/** A path inside the job's directory: relative, no `..`, no empty segment. */
const JobPath = z
  .string()
  .refine((p) => !p.startsWith('/') && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..'), 'expected a relative path inside the job (no "/" at the start, no "." or ".." segments)')
  .refine((p) => p !== 'spec.json' && p !== 'config/properties.json', 'spec.json and config/properties.json are written by the agent and the renderer');
/** A value that is one placeholder and nothing else: rendered, it keeps the value's type. */
const WHOLE_PLACEHOLDER = /^\(\([^()]*\)\)$/;
const TemplateName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*\.(ya?ml|json)$/, 'a template is a file name ending in .yml, .yaml or .json');

export const PropertyDefinition = z
  .object({
    description: z.string().min(1),
    default: z.unknown().optional(),
    example: z.unknown().optional(),
  })
  .strict();

export const ProcessTemplate = z
  .object({
    name: Name,
    executable: z.string().min(1),
    args: z.array(z.string()).default([]),
    env: z.record(z.string()).default({}),
    /** Polled after each start; the process is running only once it answers 2xx (a URL with placeholders). */
    ready: z.object({ http: z.string().min(1) }).strict().optional(),
    /**
     * How long the process may take to stop after SIGTERM, in seconds (a component's
     * drain_timeout_s); the agent waits that long and a margin before SIGKILL. A number, or a
     * whole placeholder such as ((p:router.drain_timeout_s)), which renders as the property's number.
     */
    stop_timeout_s: z
      .custom<number | string>(
        (v) => (typeof v === 'number' ? v > 0 && Number.isFinite(v) : typeof v === 'string' && WHOLE_PLACEHOLDER.test(v)),
        'expected a positive number of seconds or a whole placeholder such as ((p:job.drain_timeout_s))',
      )
      .optional(),
  })
  .strict();

/** A command the agent runs to its end (an errand, a drain), placeholders allowed. */
const Command = z.object({ executable: z.string().min(1), args: z.array(z.string()).default([]), env: z.record(z.string()).default({}) }).strict();

export const JobSpecSchema = z
  .object({
    name: Name,
    description: z.string().optional(),
    packages: z.array(Name).default([]),
    debian_packages: z.array(DebianPackage).default([]),
    templates: z.record(TemplateName, JobPath).default({}),
    processes: z.array(ProcessTemplate).default([]),
    /** A command `ingot run-errand <job>` runs to its end on the instances that have the job. */
    errand: Command.optional(),
    /**
     * BOSH's bin/drain, as data: a command the agent runs before the job is stopped; it prints an
     * integer (n ≥ 0: wait n seconds, then stop; n < 0: wait -n seconds and ask again with
     * job_check_status). It finds the job's live processes in $INGOT_JOB_PIDS, listed afresh
     * for each call; the agent has stopped monitoring them, so one that exits stays down.
     */
    drain: Command.optional(),
    properties: z.record(z.string().regex(PropertyNamePattern, 'a property name is dotted words such as router.port'), PropertyDefinition).default({}),
    provides: z.array(z.object({ name: Name, type: Name, properties: z.array(z.string()).default([]) }).strict()).default([]),
    consumes: z.array(z.object({ name: Name, type: Name, optional: z.boolean().default(false) }).strict()).default([]),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const declared = new Set(Object.keys(spec.properties));
    spec.provides.forEach((p, i) =>
      p.properties.forEach((name, j) => {
        if (!declared.has(name)) ctx.addIssue({ code: 'custom', path: ['provides', i, 'properties', j], message: `link ${p.name} shares ${name}, which is not in properties` });
      }),
    );
    const dests = new Map<string, string>();
    for (const [src, dest] of Object.entries(spec.templates)) {
      const other = dests.get(dest);
      if (other !== undefined) ctx.addIssue({ code: 'custom', path: ['templates', src], message: `renders to ${dest}, as ${other} does` });
      dests.set(dest, src);
    }
    for (const key of ['provides', 'consumes', 'processes'] as const) {
      const seen = new Set<string>();
      spec[key].forEach((item, i) => {
        if (seen.has(item.name)) ctx.addIssue({ code: 'custom', path: [key, i, 'name'], message: `${item.name} appears twice in ${key}` });
        seen.add(item.name);
      });
    }
    // A property that is a prefix of another (`a` and `a.b`) would make `a.b` unreachable.
    for (const name of declared) {
      for (const other of declared) {
        if (other.startsWith(`${name}.`)) ctx.addIssue({ code: 'custom', path: ['properties', other], message: `${name} is a property too; a property cannot sit inside another` });
      }
    }
  });

export type JobSpec = z.output<typeof JobSpecSchema>;

/** Parses spec.yml text; throws a ReleaseError listing every problem with file and line. */
export function parseJobSpec(text: string, file: string): JobSpec {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ReleaseError(
      'invalid_job_spec',
      doc.errors.map((e) => `${file}:${lines.linePos(e.pos[0]).line} ${e.message.split('\n')[0]}`),
    );
  }
  const parsed = JobSpecSchema.safeParse(doc.toJS() ?? {});
  if (parsed.success) return parsed.data;
  throw new ReleaseError(
    'invalid_job_spec',
    parsed.error.issues.map((issue) => {
      const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
      const where = issue.path.length > 0 ? ` ${formatPath(issue.path)}:` : '';
      const what = issue.code === 'unrecognized_keys' ? `unknown key (${issue.keys.join(', ')})` : issue.code === 'invalid_type' && issue.received === 'undefined' ? 'required' : issue.message;
      return `${file}:${lineOf(doc.contents, path, lines)}${where} ${what}`;
    }),
  );
}

/** What the manifest's link resolver needs to know of a job (orchestrator/manifest/links.ts). */
export function linkSpecOf(spec: JobSpec, release?: string): LinkJobSpec {
  return {
    name: spec.name,
    ...(release === undefined ? {} : { release }),
    provides: spec.provides.map((p) => ({ name: p.name, type: p.type, properties: p.properties })),
    consumes: spec.consumes.map((c) => ({ name: c.name, type: c.type, optional: c.optional })),
    properties: spec.properties,
  };
}


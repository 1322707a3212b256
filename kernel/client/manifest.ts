// Cloud Foundry's application manifest (`manifest.yml`): read once, validated into typed app
// specs, every problem reported at once naming file, line and key
// (`manifest.yml:7 applications[0].memory: "12XB" is not a size …`). The component config
// reader does the YAML → zod → line mapping; this file holds the manifest's schema.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, parseConfig } from '../component/mod.ts';
import { parseSizeMb } from './size.ts';

export type HealthCheckType = 'port' | 'http' | 'process';

/** A service instance a push binds, with the binding's parameters for the broker. */
export interface ServiceRef {
  name: string;
  parameters?: Record<string, unknown>;
}

/** One app as a push wants it: from the manifest, then overridden by flags. */
export interface AppSpec {
  name: string;
  /** Absolute path of the app's bits (directory or archive). */
  path?: string;
  memoryMb?: number;
  diskMb?: number;
  instances?: number;
  buildpacks?: string[];
  stack?: string;
  /** null: the buildpack's own start command. */
  command?: string | null;
  env?: Record<string, string>;
  /** `host.domain[/path]` */
  routes?: string[];
  noRoute?: boolean;
  randomRoute?: boolean;
  /** Service instances of the space to bind at push (manifest `services:`). */
  services?: ServiceRef[];
  healthCheckType?: HealthCheckType;
  healthCheckEndpoint?: string;
  timeoutS?: number;
}

const size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const r = parseSizeMb(v);
  if ('error' in r) {
    ctx.addIssue({ code: 'custom', message: r.error });
    return z.NEVER;
  }
  return r.mb;
});

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name is letters, digits and _, not starting with a digit')
  .refine((k) => !k.startsWith('VCAP_'), 'the platform sets the VCAP_ variables')
  .refine((k) => k !== 'PORT', 'the platform sets PORT');

const envValue = z.union([z.string(), z.number(), z.boolean()]).transform(String);

const route = z
  .object({
    route: z
      .string()
      .min(1)
      .regex(/^[a-z0-9*][a-z0-9.-]*(\/[^\s?#]*)?$/i, 'expected host.domain or host.domain/path'),
    protocol: z.enum(['http1', 'http2']).optional(),
  })
  .strict();

const service = z.union([z.string().min(1), z.object({ name: z.string().min(1), parameters: z.record(z.unknown()).optional(), binding_name: z.string().optional() }).strict()]);

const application = z
  .object({
    name: z.string().min(1).max(255).regex(/^[^\s/][^/]*$/, 'must not begin with whitespace nor contain /'),
    path: z.string().min(1).optional(),
    memory: size.optional(),
    disk_quota: size.optional(),
    instances: z.number().int().min(0).max(1000).optional(),
    buildpacks: z.array(z.string().min(1)).optional(),
    buildpack: z.string().min(1).optional(),
    stack: z.string().min(1).optional(),
    command: z.string().min(1).nullable().optional(),
    env: z.record(envName, envValue).optional(),
    routes: z.array(route).optional(),
    'no-route': z.boolean().optional(),
    'random-route': z.boolean().optional(),
    services: z.array(service).optional(),
    'health-check-type': z.enum(['port', 'http', 'process', 'none']).optional(),
    'health-check-http-endpoint': z.string().regex(/^\//, 'must begin with /').optional(),
    timeout: z.number().int().min(1).max(3600).optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.buildpack !== undefined && a.buildpacks !== undefined) ctx.addIssue({ code: 'custom', path: ['buildpack'], message: 'give buildpacks or buildpack, not both' });
    if (a['no-route'] && a.routes?.length) ctx.addIssue({ code: 'custom', path: ['no-route'], message: 'no-route cannot be combined with routes' });
    if (a['no-route'] && a['random-route']) ctx.addIssue({ code: 'custom', path: ['random-route'], message: 'random-route cannot be combined with no-route' });
    if (a['health-check-http-endpoint'] !== undefined && a['health-check-type'] !== undefined && a['health-check-type'] !== 'http') {
      ctx.addIssue({ code: 'custom', path: ['health-check-http-endpoint'], message: 'only an http health check has an endpoint' });
    }
  });

export const manifestSchema = z
  .object({
    version: z.literal(1).optional(),
    applications: z.array(application).min(1, 'expected at least one application'),
  })
  .strict()
  .superRefine((m, ctx) => {
    const seen = new Map<string, number>();
    m.applications.forEach((a, i) => {
      if (seen.has(a.name)) ctx.addIssue({ code: 'custom', path: ['applications', i, 'name'], message: `"${a.name}" is also applications[${seen.get(a.name)}]` });
      else seen.set(a.name, i);
    });
  });

export interface Manifest {
  file: string;
  applications: AppSpec[];
}

/** Reads and validates a manifest; throws ConfigError (one line per problem, with file:line). */
export async function loadManifest(file: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`${file}: cannot read the manifest (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
  return parseManifest(text, file);
}

export function parseManifest(text: string, file: string): Manifest {
  const parsed = parseConfig(text, file, manifestSchema);
  const base = dirname(resolve(file));
  return {
    file,
    applications: parsed.applications.map((a): AppSpec => {
      const spec: AppSpec = { name: a.name };
      if (a.path !== undefined) spec.path = resolve(base, a.path);
      if (a.memory !== undefined) spec.memoryMb = a.memory;
      if (a.disk_quota !== undefined) spec.diskMb = a.disk_quota;
      if (a.instances !== undefined) spec.instances = a.instances;
      if (a.buildpacks !== undefined) spec.buildpacks = a.buildpacks;
      if (a.buildpack !== undefined) spec.buildpacks = [a.buildpack];
      if (a.stack !== undefined) spec.stack = a.stack;
      if (a.command !== undefined) spec.command = a.command;
      if (a.env !== undefined) spec.env = a.env;
      if (a.routes !== undefined) spec.routes = a.routes.map((r) => r.route);
      if (a['no-route'] !== undefined) spec.noRoute = a['no-route'];
      if (a['random-route'] !== undefined) spec.randomRoute = a['random-route'];
      if (a.services !== undefined) spec.services = a.services.map((s) => (typeof s === 'string' ? { name: s } : { name: s.name, ...(s.parameters ? { parameters: s.parameters } : {}) }));
      const hc = a['health-check-type'];
      if (hc !== undefined) spec.healthCheckType = hc === 'none' ? 'process' : hc;
      if (a['health-check-http-endpoint'] !== undefined) spec.healthCheckEndpoint = a['health-check-http-endpoint'];
      if (a.timeout !== undefined) spec.timeoutS = a.timeout;
      return spec;
    }),
  };
}

/** Flags win over the manifest; undefined flags leave the manifest's value. */
export function overlay(base: AppSpec, flags: Partial<AppSpec>): AppSpec {
  const out: AppSpec = { ...base };
  for (const [k, v] of Object.entries(flags) as Array<[keyof AppSpec, unknown]>) {
    if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  }
  if (flags.noRoute) {
    delete out.routes;
    delete out.randomRoute;
  }
  if (flags.randomRoute) delete out.noRoute;
  return out;
}

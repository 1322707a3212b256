// Raw options in, validated and defaulted options out; nothing downstream re-checks them.
// Validation collects every problem, each naming its path, before failing.

import { isAbsolute, posix, resolve } from 'node:path';
import { z } from 'zod';
import { InvalidConfigError } from './errors.ts';
import { formatCidr, parseCidr, parseIPv4, slotCount } from './ipv4.ts';
import { CONTAINER_ID_PATTERN, PREFIX_PATTERN } from './names.ts';
import type { CompiledHostOptions, ContainerSpec, HostOptions } from './types.ts';

export const DEFAULT_CONTAINER_PORT = 8080;
export const DEFAULT_CPU_SHARES = 1024;
export const DEFAULT_CGROUP_PARENT = 'ingot';
export const DEFAULT_CGROUP_ROOT = '/sys/fs/cgroup';

const port = z.number().int().min(1).max(65535);
const cidr = z.string().refine((s) => parseCidr(s) !== null, { message: 'expected an IPv4 CIDR such as 10.0.0.0/8' });
const egressRule = z.object({ cidr, ports: z.array(port).optional() }).strict();

const hostSchema = z
  .object({
    prefix: z.string().regex(PREFIX_PATTERN, 'expected 1–20 of [a-z0-9-], starting with a letter'),
    dataDir: z.string().min(1),
    isolation: z.enum(['namespaces', 'none']).default('namespaces'),
    network: z
      .object({
        subnet: cidr.refine(
          (s) => {
            const c = parseCidr(s);
            return c === null || slotCount(c) > 0; // a malformed one is reported by cidr already
          },
          { message: 'expected a subnet of /30 or larger' },
        ),
        hostAddress: z.string().refine((s) => parseIPv4(s) !== null, { message: 'expected an IPv4 address' }),
        hostPorts: z.object({ start: port, count: z.number().int().min(1) }).strict()
          .refine((r) => r.start + r.count - 1 <= 65535, { message: 'range ends past port 65535' }),
        containerPort: port.default(DEFAULT_CONTAINER_PORT),
        mapLoopback: z.boolean().default(true),
        deny: z.array(egressRule).default([]),
        allow: z.array(egressRule).default([]),
      })
      .strict(),
    uidRange: z
      .object({ start: z.number().int().min(1000), count: z.number().int().min(1) })
      .strict()
      .refine((r) => r.start + r.count - 1 < 2 ** 31, { message: 'range ends past 2^31' }),
    cgroupParent: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/, 'expected a relative path such as ingot/dea')
      .default(DEFAULT_CGROUP_PARENT),
    cgroupRoot: z.string().default(DEFAULT_CGROUP_ROOT),
  })
  .strict();

const MAX_BINDS = 16;

/** Where a bind may go: inside the container's own writable trees, never over the OS, the
 *  app directory, or anything the launcher mounts itself. */
export function bindTargetProblem(target: string): string | null {
  if (!target.startsWith('/') || posix.normalize(target) !== target || target.endsWith('/')) return 'expected a normalized absolute path';
  if (!/^[A-Za-z0-9_.\/-]+$/.test(target)) return 'expected only [A-Za-z0-9_./-]';
  const under = (dir: string) => target.startsWith(`${dir}/`);
  if (!under('/tmp') && !under('/home/vcap')) return 'expected a path under /tmp or /home/vcap';
  if (target === '/home/vcap/app' || under('/home/vcap/app')) return 'the app directory cannot be bound over';
  return null;
}

const bindSchema = z
  .object({
    source: z.string().refine((p) => isAbsolute(p), { message: 'expected an absolute path' }),
    target: z.string().superRefine((t, ctx) => {
      const problem = bindTargetProblem(t);
      if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
    }),
    readOnly: z.boolean().default(false),
  })
  .strict();

const specSchema = z
  .object({
    id: z.string().regex(CONTAINER_ID_PATTERN, 'expected 1–64 of [A-Za-z0-9_.-]'),
    memoryBytes: z.number().int().min(4 * 1024 * 1024, 'expected at least 4 MiB'),
    diskBytes: z.number().int().min(1),
    pids: z.number().int().min(1),
    cpuShares: z.number().int().min(2).max(262144).default(DEFAULT_CPU_SHARES),
    appDir: z.string().refine((p) => isAbsolute(p), { message: 'expected an absolute path' }).optional(),
    hostname: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'expected a hostname label').optional(),
    env: z.record(z.string()).default({}),
    binds: z.array(bindSchema).max(MAX_BINDS, `expected at most ${MAX_BINDS} binds`).default([]),
  })
  .strict();

export type CompiledContainerSpec = z.output<typeof specSchema>;

function problems(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
}

export function compileHostOptions(raw: HostOptions): CompiledHostOptions {
  const parsed = hostSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidConfigError('container host options', problems(parsed.error));
  const o = parsed.data;
  const subnet = parseCidr(o.network.subnet)!;
  const normalize = (r: { cidr: string; ports?: number[] | undefined }) => ({
    cidr: formatCidr(parseCidr(r.cidr)!),
    ports: [...new Set(r.ports ?? [])].sort((a, b) => a - b),
  });
  return {
    prefix: o.prefix,
    dataDir: resolve(o.dataDir),
    isolation: o.isolation,
    network: {
      subnet,
      subnetText: formatCidr(subnet),
      hostAddress: o.network.hostAddress,
      hostPorts: o.network.hostPorts,
      containerPort: o.network.containerPort,
      mapLoopback: o.network.mapLoopback,
      deny: o.network.deny.map(normalize),
      allow: o.network.allow.map(normalize),
    },
    uidRange: o.uidRange,
    cgroupParent: o.cgroupParent,
    cgroupRoot: o.cgroupRoot,
  };
}

export function compileContainerSpec(raw: ContainerSpec): CompiledContainerSpec {
  const parsed = specSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidConfigError(`container spec${typeof raw?.id === 'string' ? ` ${raw.id}` : ''}`, problems(parsed.error));
  return parsed.data;
}

// The local CPI's config: raw file contents in, a validated and defaulted object out; every
// problem is reported at once, each naming its field. Nothing downstream re-checks.

import { z } from 'zod';
import { formatIPv4, parseCidr } from '../../../kernel/dea/container/ipv4.ts';
import { CloudError } from '../errors.ts';

export const DEFAULT_PREFIX = 'ingot';
export const DEFAULT_BRIDGE = 'ingot0';
/** The range that never leaves this machine (DESIGN.md §4); its unreachable route is kept. */
export const DEFAULT_RESERVED_RANGE = '10.244.0.0/16';
/** The bridge's own network, more specific than the reserved range so its route wins. */
export const DEFAULT_SUBNET = '10.244.0.0/24';
export const DEFAULT_DATA_DIR = '/var/lib/ingot/cpi-local';
export const DEFAULT_CGROUP_PARENT = 'ingot';
/** Room for a 4-hex suffix in 15-character interface names. */
export const PREFIX_MAX = 10;

const schema = z
  .object({
    prefix: z.string().regex(/^[a-z][a-z0-9]{2,}$/, 'expected 3 or more of [a-z0-9] starting with a letter').max(PREFIX_MAX).default(DEFAULT_PREFIX),
    bridge: z.string().regex(/^[a-z][a-z0-9-]*$/).max(15).optional(),
    subnet: z.string().default(DEFAULT_SUBNET),
    reserved_range: z.string().default(DEFAULT_RESERVED_RANGE),
    gateway: z.string().optional(),
    data_dir: z.string().default(DEFAULT_DATA_DIR),
    cgroup_root: z.string().default('/sys/fs/cgroup'),
    cgroup_parent: z.string().default(DEFAULT_CGROUP_PARENT),
    /** argv run inside each VM, daemonised; a string is run by /bin/sh -c. */
    agent_command: z.union([z.string(), z.array(z.string()).nonempty()]).optional(),
    /** The registry proxy of DESIGN.md §4 on the gateway address; registry defaults to the
     *  host npm's (`npm config get registry`). */
    registry_proxy: z.object({ port: z.number().int().min(1).max(65535), registry: z.string().url().optional() }).strict().optional(),
    agent: z
      .object({
        mbus: z.object({ url: z.string(), user: z.string().optional(), password: z.string().optional() }).partial().optional(),
        blobstore: z.object({ url: z.string() }).partial().optional(),
      })
      .default({}),
  })
  .strict();

export interface LocalCpiConfig {
  prefix: string;
  bridge: string;
  subnet: { base: number; bits: number; text: string };
  reservedRange: { base: number; bits: number; text: string };
  gateway: string;
  dataDir: string;
  cgroupRoot: string;
  cgroupParent: string;
  agentCommand: string[] | null;
  registryProxy: { port: number; registry?: string } | null;
  agentDefaults: { mbus?: { url?: string; user?: string; password?: string }; blobstore?: { url?: string } };
}

function within(inner: { base: number; bits: number }, outer: { base: number; bits: number }): boolean {
  if (inner.bits < outer.bits) return false;
  const mask = outer.bits === 0 ? 0 : (0xffffffff << (32 - outer.bits)) >>> 0;
  return ((inner.base & mask) >>> 0) === outer.base;
}

export function compileConfig(raw: unknown, source = 'local CPI config'): LocalCpiConfig {
  const parsed = schema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new CloudError(`Invalid ${source}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  const c = parsed.data;
  const problems: string[] = [];
  const subnet = parseCidr(c.subnet);
  const reserved = parseCidr(c.reserved_range);
  if (!subnet) problems.push(`subnet: expected a.b.c.d/n with no host bits, got "${c.subnet}"`);
  else if (subnet.bits > 29) problems.push(`subnet: /${subnet.bits} is too small for VMs`);
  if (!reserved) problems.push(`reserved_range: expected a.b.c.d/n with no host bits, got "${c.reserved_range}"`);
  if (subnet && reserved && (!within(subnet, reserved) || subnet.bits === reserved.bits)) {
    problems.push(`subnet: ${c.subnet} must lie strictly inside reserved_range ${c.reserved_range}, so the bridge's route wins over the unreachable one`);
  }
  const bridge = c.bridge ?? (c.prefix === DEFAULT_PREFIX ? DEFAULT_BRIDGE : `${c.prefix}br`);
  if (!bridge.startsWith(c.prefix)) problems.push(`bridge: "${bridge}" must start with the prefix "${c.prefix}", so sweep finds it`);
  if (bridge.length > 15) problems.push(`bridge: "${bridge}" is longer than 15 characters`);
  const gateway = c.gateway ?? (subnet ? formatIPv4(subnet.base + 1) : '');
  if (problems.length) throw new CloudError(`Invalid ${source}: ${problems.join('; ')}`);
  let agentCommand: string[] | null = null;
  if (typeof c.agent_command === 'string') agentCommand = ['/bin/sh', '-c', c.agent_command];
  else if (c.agent_command) agentCommand = [...c.agent_command];
  return {
    prefix: c.prefix,
    bridge,
    subnet: { ...subnet!, text: c.subnet },
    reservedRange: { ...reserved!, text: c.reserved_range },
    gateway,
    dataDir: c.data_dir,
    cgroupRoot: c.cgroup_root,
    cgroupParent: c.cgroup_parent,
    agentCommand,
    registryProxy: c.registry_proxy ?? null,
    agentDefaults: c.agent,
  };
}

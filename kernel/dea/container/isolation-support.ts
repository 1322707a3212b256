// Whether this machine can isolate containers, and if not, a sentence saying what is missing.
// A DEA configured for namespaces refuses to start without them rather than run apps
// unisolated. The probe does the I/O; assessing its result is a pure function.

import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { detectCgroupVersion } from './cgroups.ts';
import { systemTool } from './command.ts';
import { DEFAULT_CGROUP_ROOT } from './options.ts';
import type { IsolationSupport } from './types.ts';

/** Each command with the Debian package that provides it. */
export const REQUIRED_TOOLS: Record<string, string> = {
  unshare: 'util-linux',
  nsenter: 'util-linux',
  setpriv: 'util-linux',
  prlimit: 'util-linux',
  mount: 'mount',
  pivot_root: 'util-linux',
  ip: 'iproute2',
  nft: 'nftables',
};

export const REQUIRED_CONTROLLERS = ['memory', 'pids', 'cpu', 'cpuacct'] as const;
export type RequiredController = (typeof REQUIRED_CONTROLLERS)[number];

// Capability bits (linux/capability.h) the container layer exercises.
const CAPABILITIES: Record<string, number> = {
  CAP_CHOWN: 0, CAP_KILL: 5, CAP_SETGID: 6, CAP_SETUID: 7, CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21,
};

export interface IsolationProbe {
  euid: number;
  /** Effective capability names held. */
  capabilities: string[];
  /** Command name → found on PATH. */
  tools: Record<string, boolean>;
  cgroupRoot: string;
  cgroupVersion: 1 | 2 | null;
  /** Controller → usable (v1: its hierarchy is mounted and writable; v2: listed in cgroup.controllers
   *  and the root writable; cpuacct counts as present on v2, where cpu.stat carries usage). */
  controllers: Record<RequiredController, boolean>;
  netnsSupported: boolean;
}

export function assessIsolation(p: IsolationProbe): IsolationSupport {
  const missing: string[] = [];
  const lackingCaps = Object.keys(CAPABILITIES).filter((c) => !p.capabilities.includes(c));
  if (p.euid !== 0 || lackingCaps.length > 0) {
    const who = p.euid === 0 ? 'root' : `uid ${p.euid}`;
    const lacks = lackingCaps.length > 0 ? `, lacking ${lackingCaps.join(', ')}` : '';
    missing.push(`root privileges (running as ${who}${lacks}; namespaces, mounts and cgroups need euid 0 with CAP_SYS_ADMIN and CAP_NET_ADMIN)`);
  }
  for (const [tool, pkg] of Object.entries(REQUIRED_TOOLS)) {
    if (!p.tools[tool]) missing.push(`the ${tool} command (package ${pkg})`);
  }
  if (!p.netnsSupported) missing.push('network namespaces (/proc/self/ns/net)');
  if (p.cgroupVersion === null) {
    missing.push(`a cgroup filesystem at ${p.cgroupRoot}`);
  } else {
    for (const c of REQUIRED_CONTROLLERS) {
      if (p.controllers[c]) continue;
      const where = p.cgroupVersion === 1 ? `${p.cgroupRoot}/${c}` : `${p.cgroupRoot}/cgroup.controllers`;
      missing.push(`a writable ${c} cgroup controller (${where}, cgroup v${p.cgroupVersion})`);
    }
  }
  return { ok: missing.length === 0, missing };
}

/** The sentence a DEA prints when it refuses to start. */
export function isolationRefusal(missing: string[]): string {
  return (
    `Cannot isolate containers with namespaces: missing ${missing.join('; ')}. ` +
    'Run the DEA as root on a host that has them, or set isolation: none (development only, no isolation).'
  );
}

export function parseCapabilities(statusText: string): string[] {
  const line = statusText.split('\n').find((l) => l.startsWith('CapEff:'));
  if (!line) return [];
  const mask = BigInt(`0x${line.slice('CapEff:'.length).trim()}`);
  return Object.entries(CAPABILITIES).filter(([, bit]) => (mask >> BigInt(bit)) & 1n).map(([name]) => name);
}

export async function probeIsolation(options: { cgroupRoot?: string } = {}): Promise<IsolationProbe> {
  const cgroupRoot = options.cgroupRoot ?? DEFAULT_CGROUP_ROOT;
  const tools: Record<string, boolean> = {};
  for (const tool of Object.keys(REQUIRED_TOOLS)) tools[tool] = systemTool(tool) !== null;
  const cgroupVersion = await detectCgroupVersion(cgroupRoot);
  const controllers = { memory: false, pids: false, cpu: false, cpuacct: false } as Record<RequiredController, boolean>;
  if (cgroupVersion === 1) {
    for (const c of REQUIRED_CONTROLLERS) controllers[c] = await canWrite(join(cgroupRoot, c));
  } else if (cgroupVersion === 2) {
    const available = (await readFile(join(cgroupRoot, 'cgroup.controllers'), 'utf8').catch(() => '')).split(/\s+/);
    const writable = await canWrite(cgroupRoot);
    for (const c of REQUIRED_CONTROLLERS) controllers[c] = writable && available.includes(c === 'cpuacct' ? 'cpu' : c);
  }
  return {
    euid: process.geteuid?.() ?? -1,
    capabilities: parseCapabilities(await readFile('/proc/self/status', 'utf8').catch(() => '')),
    tools,
    cgroupRoot,
    cgroupVersion,
    controllers,
    netnsSupported: await canAccess('/proc/self/ns/net'),
  };
}

export async function checkIsolationSupport(options: { cgroupRoot?: string } = {}): Promise<IsolationSupport> {
  return assessIsolation(await probeIsolation(options));
}

async function canWrite(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

async function canAccess(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

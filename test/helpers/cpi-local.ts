// A local CPI for one test file: its own prefix, bridge, subnet and data dir; a way to call it
// only through the external door (the CLI entry, JSON on stdin); a look inside its VMs; and a
// list of whatever kernel objects carry its prefix, to prove nothing is left.

import { spawn, execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { runPrefix, scratchDir } from './tmp.ts';

const execFileP = promisify(execFile);
const ENTRY = fileURLToPath(new URL('../../orchestrator/cpi/main.ts', import.meta.url));

export interface CpiFixture {
  prefix: string;
  bridge: string;
  /** e.g. 10.245.123 — the VMs' /25 is <net>.0/25, the reserved /24 <net>.0/24. */
  net: string;
  subnet: string;
  reservedRange: string;
  gateway: string;
  dir: string;
  configFile: string;
}

/** Test ranges: 10.245.<100–199>.0/24, one per test file; a /24 with any route is taken. */
export const TEST_RANGE = '10.245.0.0/16';

async function freeNet(): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const net = `10.245.${randomInt(100, 200)}`;
    const { stdout } = await execFileP('/usr/sbin/ip', ['route', 'show', 'root', `${net}.0/24`]);
    const { stdout: within } = await execFileP('/usr/sbin/ip', ['route', 'show', 'match', `${net}.0/24`]);
    if (!stdout.trim() && !within.split('\n').some((l) => l.startsWith(net))) return net;
  }
  throw new Error('no free 10.245.x.0/24 for a test CPI');
}

export async function localCpiFixture(extra: Record<string, unknown> = {}): Promise<CpiFixture> {
  const prefix = runPrefix();
  const net = await freeNet();
  const dir = scratchDir(`cpi-${prefix}`);
  const fx: CpiFixture = {
    prefix,
    bridge: `${prefix}b`,
    net,
    subnet: `${net}.0/25`,
    reservedRange: `${net}.0/24`,
    gateway: `${net}.1`,
    dir,
    configFile: join(dir, 'cpi.json'),
  };
  const config = {
    prefix,
    bridge: fx.bridge,
    subnet: fx.subnet,
    reserved_range: fx.reservedRange,
    data_dir: join(dir, 'data'),
    agent: { mbus: { url: 'nats://10.245.0.1:4222', user: 'agent', password: 'secret' }, blobstore: { url: 'http://10.245.0.1:25250' } },
    ...extra,
  };
  await writeFile(fx.configFile, JSON.stringify(config, null, 2));
  return fx;
}

export interface CpiAnswer {
  result: unknown;
  error: { type: string; message: string; ok_to_retry: boolean } | null;
  log: string;
}

/** Sends raw text to the door and parses what it prints. */
export async function callCpiRaw(configFile: string, stdin: string, name = 'local'): Promise<CpiAnswer> {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, name, '--config', configFile], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  child.stdin.end(stdin);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const text = Buffer.concat(out).toString();
  if (code !== 0) throw new Error(`cpi ${name} exited ${code}: ${Buffer.concat(err).toString()}`);
  return JSON.parse(text) as CpiAnswer;
}

export function callCpi(configFile: string, method: string, args: unknown[]): Promise<CpiAnswer> {
  return callCpiRaw(configFile, JSON.stringify({ method, arguments: args, context: { director_uuid: 'test' } }));
}

/** The result of a call that must succeed. */
export async function cpiResult<T>(configFile: string, method: string, args: unknown[]): Promise<T> {
  const answer = await callCpi(configFile, method, args);
  if (answer.error) throw new Error(`${method} failed: ${answer.error.type}: ${answer.error.message}`);
  return answer.result as T;
}

/** Pids inside a VM's network namespace; the lowest is its keeper (started first). */
export async function vmPids(prefix: string, vmCid: string): Promise<number[]> {
  const { stdout } = await execFileP('/usr/sbin/ip', ['netns', 'pids', `${prefix}-${vmCid}`]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number).sort((a, b) => a - b);
}

/** Runs argv inside the VM (its network and mount namespaces). */
export async function execInVm(prefix: string, vmCid: string, argv: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const [keeper] = await vmPids(prefix, vmCid);
  if (!keeper) throw new Error(`VM ${vmCid} has no processes`);
  try {
    const r = await execFileP('/usr/bin/nsenter', ['-t', String(keeper), '--net', '--mount', '--', ...argv], { timeout: 20_000 });
    return { stdout: r.stdout, stderr: r.stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : 1 };
  }
}

/** Everything on the machine that carries the prefix, apart from the shared bridge and table. */
export async function vmLeftovers(prefix: string, pidsSeen: number[] = []): Promise<string[]> {
  const found: string[] = [];
  for (const ns of await readdir('/run/netns').catch(() => [] as string[])) if (ns.startsWith(prefix)) found.push(`netns ${ns}`);
  const { stdout } = await execFileP('/usr/sbin/ip', ['-j', 'link', 'show', 'type', 'veth']);
  for (const l of JSON.parse(stdout || '[]') as Array<{ ifname: string; ifalias?: string }>) {
    if (l.ifname.startsWith(prefix) || l.ifalias?.startsWith(prefix)) found.push(`veth ${l.ifname}`);
  }
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) if (line.includes(prefix)) found.push(`mount ${line}`);
  for (const c of ['memory', 'cpu', 'pids']) {
    for (const vm of await readdir(`/sys/fs/cgroup/${c}/ingot/${prefix}`, { withFileTypes: true }).catch(() => [])) {
      if (vm.isDirectory()) found.push(`cgroup ${c}/ingot/${prefix}/${vm.name}`);
    }
  }
  // Pids seen inside VMs must be gone (or reused by a process outside any VM of this prefix).
  for (const pid of pidsSeen) {
    const stat = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
    if (stat.includes(`/ingot/${prefix}/`)) found.push(`process ${pid}`);
  }
  return found;
}

export async function sweepCpi(fx: CpiFixture): Promise<void> {
  const { sweep } = await import('../../orchestrator/cpi/local/sweep.ts');
  await sweep(fx.prefix, { reservedRange: fx.reservedRange });
}

export function manualNetwork(fx: CpiFixture, host: number): Record<string, unknown> {
  return { default: { type: 'manual', ip: `${fx.net}.${host}`, netmask: '255.255.255.128', gateway: fx.gateway, default: ['dns', 'gateway'], cloud_properties: {} } };
}

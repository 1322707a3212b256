// The processes of a local VM. The keeper is one long-lived process per VM that holds its
// namespaces: `ip netns exec` puts it in the VM's network namespace and `unshare --mount
// --propagation private` gives it a mount namespace of its own, where the VM's data directory
// is bound at /var/vcap (over a tmpfs /var that re-binds the host's /var entries, so nothing is
// created on the host). Everything else enters with `nsenter -t <keeper> --net --mount`.

import { spawn } from 'node:child_process';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CloudError } from '../errors.ts';
import { run, systemTool } from './command.ts';

// Runs inside the keeper's fresh mount namespace. $1 the VM's data dir, $2 a stash dir outside
// /var (paths under /var stop resolving once the tmpfs covers it, so both are bound there first).
const KEEPER_SCRIPT = `set -e
V="$1"; S="$2"
mkdir -p "$S/var" "$S/vcap"
mount --rbind /var "$S/var"
mount --bind "$V" "$S/vcap"
mount -t tmpfs -o mode=755 ingot-var /var
for e in "$S"/var/* "$S"/var/.[!.]*; do
  [ -e "$e" ] || [ -L "$e" ] || continue
  n="\${e##*/}"
  [ "$n" = vcap ] && continue
  if [ -L "$e" ]; then ln -s "$(readlink "$e")" "/var/$n"
  elif [ -d "$e" ]; then mkdir "/var/$n"; mount --rbind "$e" "/var/$n"
  else : > "/var/$n"; mount --bind "$e" "/var/$n"; fi
done
mkdir /var/vcap
mount --move "$S/vcap" /var/vcap
umount -l "$S/var"
# ip netns exec gave the VM a /sys of its own network namespace, which hides the host's cgroup
# mounts: mount the same hierarchies again (same controllers, same trees), as a DEA needs them.
if ! grep -q " /sys/fs/cgroup/" /proc/self/mounts && grep -q " /sys/fs/cgroup" /proc/1/mounts; then
  while read -r dev mp type opts rest; do
    case "$type" in
      tmpfs) [ "$mp" = /sys/fs/cgroup ] && mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup ;;
      cgroup|cgroup2) mkdir -p "$mp"; mount -t "$type" -o "$opts" "$dev" "$mp" ;;
    esac
  done <<MOUNTS
$(grep " /sys/fs/cgroup" /proc/1/mounts)
MOUNTS
fi
echo ready
exec sleep infinity
`;

export interface ProcessId {
  pid: number;
  /** Clock ticks since boot (field 22 of /proc/<pid>/stat): pids are reused, this is not. */
  startTime: number;
}

export function parseStartTime(stat: string): number | null {
  const f = stat.slice(stat.lastIndexOf(')') + 2).trim().split(' ');
  const v = Number(f[19]);
  return f.length >= 20 && Number.isFinite(v) ? v : null;
}

export async function readProcess(pid: number): Promise<{ startTime: number; zombie: boolean } | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const startTime = parseStartTime(stat);
    if (startTime === null) return null;
    return { startTime, zombie: stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z') };
  } catch {
    return null;
  }
}

export async function isAlive(p: ProcessId): Promise<boolean> {
  const s = await readProcess(p.pid);
  return s !== null && !s.zombie && s.startTime === p.startTime;
}

/** Starts the keeper, detached so it outlives this process, and waits until it is ready. */
export async function startKeeper(netns: string, vcapDir: string, stashDir: string, timeoutMs = 15_000): Promise<ProcessId> {
  await mkdir(vcapDir, { recursive: true });
  const child = spawn(
    systemTool('ip'),
    ['netns', 'exec', netns, systemTool('unshare'), '--mount', '--propagation', 'private', '--', '/bin/sh', '-c', KEEPER_SCRIPT, 'keeper', vcapDir, stashDir],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stderr: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready within ${timeoutMs} ms`)), timeoutMs);
      child.stderr!.on('data', (b: Buffer) => stderr.push(b.toString()));
      child.stdout!.on('data', (b: Buffer) => {
        if (b.toString().includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`exited (${signal ?? code}): ${stderr.join('').trim() || 'no output'}`));
      });
    });
  } catch (err) {
    if (child.pid) kill(child.pid);
    await rm(stashDir, { recursive: true, force: true }).catch(() => undefined);
    throw new CloudError(`Starting the VM's keeper process in ${netns}: ${(err as Error).message}`);
  }
  child.removeAllListeners('exit');
  child.stdout!.destroy();
  child.stderr!.destroy();
  child.unref();
  // Only empty directories remain on the host's side; the mounts live in the keeper's namespace.
  await rm(stashDir, { recursive: true, force: true }).catch(() => undefined);
  const info = await readProcess(child.pid!);
  if (!info) throw new CloudError(`Starting the VM's keeper process in ${netns}: it died right after starting`);
  return { pid: child.pid!, startTime: info.startTime };
}

/** Runs a command inside the VM (its network and mount namespaces) and waits for it. */
export async function execInVm(keeper: number, argv: string[], options: { allowFailure?: boolean } = {}) {
  return run(['nsenter', '-t', String(keeper), '--net', '--mount', '--', ...argv], options);
}

export const VM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The command line that runs `argv` inside the VM: a shell first joins the VM's cgroups (so
 * the VM's limits hold for it and everything it starts), then becomes nsenter into the keeper's
 * network and mount namespaces. Pure; `ingot ssh` runs the same line as the agent's start.
 */
export function vmEntryArgv(keeper: number, procsFiles: string[], argv: string[], name = 'vm'): string[] {
  return [
    '/bin/sh',
    '-c',
    'while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift; exec "$@"',
    name,
    ...procsFiles,
    '--',
    systemTool('nsenter'),
    '-t',
    String(keeper),
    '--net',
    '--mount',
    '--',
    ...argv,
  ];
}

/** Starts `argv` inside the VM in a session of its own, in the VM's cgroup before it runs
 *  anything, output appended to files under the VM's /var/vcap/sys/log; does not wait. */
export async function startDaemon(
  keeper: number,
  argv: string[],
  options: { procsFiles: string[]; logDir: string; name: string; env: Record<string, string> },
): Promise<number> {
  await mkdir(options.logDir, { recursive: true });
  const out = await open(join(options.logDir, `${options.name}.stdout.log`), 'a');
  const err = await open(join(options.logDir, `${options.name}.stderr.log`), 'a');
  try {
    const [command, ...args] = vmEntryArgv(keeper, options.procsFiles, argv, options.name);
    const child = spawn(
      command!,
      args,
      {
        detached: true,
        cwd: '/',
        stdio: ['ignore', out.fd, err.fd],
        env: { PATH: VM_PATH, ...options.env },
      },
    );
    child.unref();
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    return child.pid!;
  } finally {
    await out.close();
    await err.close();
  }
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

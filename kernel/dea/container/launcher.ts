// The command lines that start a process in a container. Pure: paths and ids in, argv out.
//
// Namespaced launch, as a chain of execs that all keep the app's environment (so it reaches
// the app exactly as given, and never through argv, which any host user could read):
//   sh (host, root)      writes its own pid to the container's cgroup.procs files first, so
//                        everything after it is limited and accounted; then
//   nsenter --net        enters the container's network namespace;
//   unshare              new pid, mount, uts and ipc namespaces, private mount propagation;
//                        its forked child is pid 1 of the container and dies with it;
//   sh (init, root)      builds a root of read-only binds of the OS on a tmpfs, a fresh /proc,
//                        a minimal /dev, the private /home/vcap, /home/vcap/app and /tmp, and
//                        the spec's extra binds (staging's cache, deps and buildpacks);
//                        pivot_root's into it and detaches the host's tree, sets the hostname;
//   setpriv              drops to the container's uid/gid, no groups, no new privileges;
//   sh (runner, pid 1)   starts the command and forwards TERM/HUP/USR1/USR2 to it (pid 1 of a
//                        namespace only receives signals it handles), exits with its status.
// Shell variables the scripts need are named __ingot_* and unset before the app starts, so
// they never shadow the app's environment.

export interface Tools {
  sh: string;
  nsenter: string;
  unshare: string;
  setpriv: string;
  prlimit: string;
}

export const DEFAULT_TOOLS: Tools = {
  sh: '/bin/sh',
  nsenter: '/usr/bin/nsenter',
  unshare: '/usr/bin/unshare',
  setpriv: '/usr/bin/setpriv',
  prlimit: '/usr/bin/prlimit',
};

/** Host directories of the OS bound read-only into every container, when present. */
export const OS_DIRS = ['usr', 'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32', 'etc'];
export const DEV_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

export interface NamespacedLaunch {
  procsFiles: string[];
  netnsPath: string;
  /** Empty directory the container's root tmpfs is mounted on (inside its own mount ns). */
  rootfs: string;
  home: string;
  app: string;
  tmp: string;
  /** File bound read-only over /etc/hosts. */
  hostsFile: string;
  hostname: string;
  /** More host directories, bound after the rest (targets validated by options.ts). */
  binds?: Array<{ source: string; target: string; readOnly: boolean }>;
  uid: number;
  gid: number;
  /** Working directory inside the container. */
  cwd: string;
  command: string;
}

const JOIN_CGROUPS = [
  'while [ "$1" != -- ]; do',
  '  echo $$ > "$1" || { echo "ingot: cannot join cgroup $1" >&2; exit 125; }',
  '  shift',
  'done',
  'shift',
  'exec "$@"',
].join('\n');

const INIT = [
  'set -eu',
  // pid 1 ignores signals it does not handle: a stop during setup must still end it.
  "trap 'exit 143' TERM",
  '__ingot_root=$1 __ingot_home=$2 __ingot_app=$3 __ingot_tmp=$4 __ingot_hosts=$5 __ingot_hostname=$6',
  'shift 6',
  // Then a count of binds and, for each, source, target and ro|rw.
  '__ingot_nbinds=$1; shift',
  // The app's PATH may lack the system's tools; use ours and give the app back its own.
  'if [ -n "${PATH+set}" ]; then __ingot_path=$PATH; fi',
  'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
  'mount -t tmpfs -o mode=0755,size=1m,nosuid,nodev ingot-root "$__ingot_root"',
  'cd "$__ingot_root"',
  `for __ingot_d in ${OS_DIRS.join(' ')}; do`,
  '  if [ -L "/$__ingot_d" ]; then ln -s "$(readlink "/$__ingot_d")" "$__ingot_d"',
  '  elif [ -d "/$__ingot_d" ]; then mkdir "$__ingot_d"; mount --bind -o ro,nosuid,nodev "/$__ingot_d" "$__ingot_d"',
  '  fi',
  'done',
  'mkdir proc dev tmp home home/vcap .ingot-old-root',
  'mount -t proc -o nosuid,nodev,noexec proc proc',
  'mount -t tmpfs -o mode=0755,size=64k,nosuid,noexec ingot-dev dev',
  `for __ingot_d in ${DEV_NODES.join(' ')}; do`,
  '  : > "dev/$__ingot_d"; mount --bind "/dev/$__ingot_d" "dev/$__ingot_d"',
  'done',
  'ln -s /proc/self/fd dev/fd; ln -s /proc/self/fd/0 dev/stdin',
  'ln -s /proc/self/fd/1 dev/stdout; ln -s /proc/self/fd/2 dev/stderr',
  'mkdir dev/shm; mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev,noexec ingot-shm dev/shm',
  'mount --bind -o nosuid,nodev "$__ingot_home" home/vcap',
  'mount --bind -o nosuid,nodev "$__ingot_app" home/vcap/app',
  'mount --bind -o nosuid,nodev "$__ingot_tmp" tmp',
  'mount --bind -o ro "$__ingot_hosts" etc/hosts',
  'while [ "$__ingot_nbinds" -gt 0 ]; do',
  '  mkdir -p ".$2"; mount --bind -o "$3",nosuid,nodev "$1" ".$2"',
  '  shift 3; __ingot_nbinds=$((__ingot_nbinds - 1))',
  'done',
  'echo "$__ingot_hostname" > /proc/sys/kernel/hostname',
  // The host's tree goes away entirely: nothing of the DEA's files remains reachable.
  'pivot_root . .ingot-old-root',
  'cd /',
  'umount -l /.ingot-old-root',
  'rmdir /.ingot-old-root',
  'mount -o remount,bind,ro /',
  'if [ -n "${__ingot_path+set}" ]; then PATH=$__ingot_path; else unset PATH; fi',
  'unset __ingot_root __ingot_home __ingot_app __ingot_tmp __ingot_hosts __ingot_hostname __ingot_d __ingot_path __ingot_nbinds',
  'exec "$@"',
].join('\n');

const RUNNER = [
  // A signal that arrives before the app has started is remembered and delivered after.
  '__ingot_forward() { __ingot_pending=$1; [ -n "${__ingot_pid:-}" ] && kill -"$1" "$__ingot_pid" 2>/dev/null; }',
  "trap '__ingot_forward TERM' TERM; trap '__ingot_forward HUP' HUP",
  "trap '__ingot_forward USR1' USR1; trap '__ingot_forward USR2' USR2",
  'cd "$1" || exit 126',
  '/bin/sh -c "$2" &',
  '__ingot_pid=$!',
  '[ -n "${__ingot_pending:-}" ] && kill -"$__ingot_pending" "$__ingot_pid" 2>/dev/null',
  // wait returns early when a trapped signal arrives; wait again until the app is gone.
  'while :; do',
  '  wait "$__ingot_pid"; __ingot_status=$?',
  '  kill -0 "$__ingot_pid" 2>/dev/null || break',
  'done',
  // For a DEA that adopted this container after a restart: it is not our parent, so the
  // status reaches it only this way (EXIT_STATUS_FILE, under the container's home).
  'echo "$__ingot_status" > /home/vcap/.ingot-exit-status 2>/dev/null || :',
  'exit "$__ingot_status"',
].join('\n');

/** Where the runner leaves the app's exit status, relative to the container's home. */
export const EXIT_STATUS_FILE = '.ingot-exit-status';

export function namespacedArgv(l: NamespacedLaunch, tools: Tools = DEFAULT_TOOLS): string[] {
  const binds = l.binds ?? [];
  return [
    tools.sh, '-c', JOIN_CGROUPS, 'ingot-launch', ...l.procsFiles, '--',
    tools.nsenter, `--net=${l.netnsPath}`, '--',
    tools.unshare, '--pid', '--mount', '--uts', '--ipc', '--propagation', 'private', '--kill-child=SIGKILL', '--',
    tools.sh, '-c', INIT, 'ingot-init', l.rootfs, l.home, l.app, l.tmp, l.hostsFile, l.hostname,
    String(binds.length), ...binds.flatMap((b) => [b.source, b.target, b.readOnly ? 'ro' : 'rw']),
    tools.setpriv, `--reuid=${l.uid}`, `--regid=${l.gid}`, '--clear-groups', '--no-new-privs', '--',
    '/bin/sh', '-c', RUNNER, 'ingot-run', l.cwd, l.command,
  ];
}

export interface UnisolatedLaunch {
  /** Null when the DEA is not root: the app then runs as the DEA's own user. */
  uid: number | null;
  gid: number | null;
  prlimitArgs: string[];
  command: string;
}

/** Isolation `none` (development only): one process tree and one uid per instance, ulimits. */
export function unisolatedArgv(l: UnisolatedLaunch, tools: Tools = DEFAULT_TOOLS): string[] {
  const drop = l.uid === null ? [] : [tools.setpriv, `--reuid=${l.uid}`, `--regid=${l.gid ?? l.uid}`, '--clear-groups', '--no-new-privs', '--'];
  return [tools.prlimit, ...l.prlimitArgs, '--', ...drop, tools.sh, '-c', l.command];
}

/** /etc/hosts of a container. */
export function hostsFile(hostname: string, address: string | null): string {
  return ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', address ? `${address}\t${hostname}` : `127.0.1.1\t${hostname}`, ''].join('\n');
}

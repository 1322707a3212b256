// The launcher's command lines, exit descriptions and the prlimit options of isolation none.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { describeExit, signalOfStatus } from '../../kernel/dea/container/exit-status.ts';
import { DEFAULT_TOOLS, hostsFile, namespacedArgv, unisolatedArgv, type NamespacedLaunch } from '../../kernel/dea/container/launcher.ts';
import { prlimitArgs } from '../../kernel/dea/container/limits.ts';

const launch: NamespacedLaunch = {
  procsFiles: ['/sys/fs/cgroup/memory/ingot/p/c/cgroup.procs', '/sys/fs/cgroup/pids/ingot/p/c/cgroup.procs'],
  netnsPath: '/run/netns/p-c',
  rootfs: '/data/containers/c/rootfs',
  home: '/data/containers/c/home',
  app: '/data/containers/c/home/app',
  tmp: '/data/containers/c/tmp',
  hostsFile: '/data/containers/c/hosts',
  hostname: 'c',
  uid: 20001,
  gid: 20001,
  cwd: '/home/vcap/app',
  command: 'node server.js',
};

test('the launcher joins the cgroups, then nsenter, unshare, init, setpriv, runner, command', (t) => {
  const argv = namespacedArgv(launch);
  const at = (x: string) => argv.indexOf(x);
  t.is(argv[0], '/bin/sh');
  t.deepEqual(argv.slice(4, 6), launch.procsFiles);
  t.is(argv[6], '--');
  t.is(argv[7], DEFAULT_TOOLS.nsenter);
  t.is(argv[8], '--net=/run/netns/p-c');
  const unshare = at(DEFAULT_TOOLS.unshare);
  t.true(unshare > at(DEFAULT_TOOLS.nsenter));
  t.deepEqual(argv.slice(unshare + 1, unshare + 9), ['--pid', '--mount', '--uts', '--ipc', '--propagation', 'private', '--kill-child=SIGKILL', '--']);
  const setpriv = at(DEFAULT_TOOLS.setpriv);
  t.true(setpriv > unshare);
  t.deepEqual(argv.slice(setpriv + 1, setpriv + 6), ['--reuid=20001', '--regid=20001', '--clear-groups', '--no-new-privs', '--']);
  t.deepEqual(argv.slice(-3), ['ingot-run', '/home/vcap/app', 'node server.js']);
  // Nothing of the app's environment travels in argv.
  t.false(argv.some((a) => a.includes('VCAP_SERVICES')));
});

test('the scripts are valid sh', (t) => {
  const argv = namespacedArgv(launch);
  const scripts = argv.filter((_, i) => argv[i - 1] === '-c');
  t.is(scripts.length, 3);
  for (const s of scripts) {
    const r = spawnSync('/bin/sh', ['-n', '-c', s], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
  }
});

test('the cgroup-joining prelude runs the rest only after every write', (t) => {
  const argv = namespacedArgv(launch);
  const prelude = argv[2]!;
  const r = spawnSync('/bin/sh', ['-c', prelude, 'ingot-launch', '/dev/null', '--', '/bin/echo', 'joined'], { encoding: 'utf8' });
  t.is(r.stdout, 'joined\n');
  const bad = spawnSync('/bin/sh', ['-c', prelude, 'ingot-launch', '/nonexistent/cgroup.procs', '--', '/bin/echo', 'joined'], { encoding: 'utf8' });
  t.is(bad.status, 125);
  t.is(bad.stdout, '');
  t.regex(bad.stderr, /ingot: cannot join cgroup \/nonexistent\/cgroup.procs/);
});

test('the runner passes TERM to the app and exits with its status', (t) => {
  const argv = namespacedArgv(launch);
  const runner = argv[argv.length - 4]!;
  const ok = spawnSync('/bin/sh', ['-c', runner, 'ingot-run', '/', 'exit 7'], { encoding: 'utf8' });
  t.is(ok.status, 7);
  const cwd = spawnSync('/bin/sh', ['-c', runner, 'ingot-run', '/no/such/dir', 'true'], { encoding: 'utf8' });
  t.is(cwd.status, 126);
  const termed = spawnSync('/bin/sh', ['-c', `${runner}`, 'ingot-run', '/', "trap 'echo got-term; exit 3' TERM; kill -TERM $PPID; sleep 5 & wait"], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  t.is(termed.stdout, 'got-term\n');
  t.is(termed.status, 3);
});

test('isolation none: prlimit, then setpriv when root', (t) => {
  const limits = { memoryBytes: 1 << 26, pids: 10, cpuShares: 1024, diskBytes: 1 << 30 };
  t.deepEqual(prlimitArgs(limits), ['--nproc=11', '--nofile=16384', '--core=0']);
  t.deepEqual(unisolatedArgv({ uid: null, gid: null, prlimitArgs: ['--core=0'], command: 'x' }), [DEFAULT_TOOLS.prlimit, '--core=0', '--', DEFAULT_TOOLS.sh, '-c', 'x']);
  const asRoot = unisolatedArgv({ uid: 20001, gid: 20001, prlimitArgs: [], command: 'x' });
  t.deepEqual(asRoot.slice(2, 8), [DEFAULT_TOOLS.setpriv, '--reuid=20001', '--regid=20001', '--clear-groups', '--no-new-privs', '--']);
});

test('/etc/hosts names the container', (t) => {
  t.regex(hostsFile('web-0', '10.254.3.2'), /^10\.254\.3\.2\tweb-0$/m);
  t.regex(hostsFile('web-0', null), /^127\.0\.1\.1\tweb-0$/m);
});

test('exit descriptions: out of memory first, then a stop, then signal or status', (t) => {
  t.deepEqual(describeExit({ code: 137, signal: null, oomKilled: true, stopReason: 'stopped by the DEA' }), {
    exitStatus: 137,
    signal: null,
    reason: 'out of memory',
    description: 'out of memory',
  });
  t.is(describeExit({ code: 143, signal: null, oomKilled: false, stopReason: 'disk quota exceeded' }).description, 'disk quota exceeded');
  t.is(describeExit({ code: 139, signal: null, oomKilled: false, stopReason: null }).description, 'app instance was killed by SIGSEGV');
  t.is(describeExit({ code: null, signal: 'SIGKILL', oomKilled: false, stopReason: null }).reason, 'killed');
  t.deepEqual(describeExit({ code: 3, signal: null, oomKilled: false, stopReason: null }), {
    exitStatus: 3,
    signal: null,
    reason: 'exited',
    description: 'app instance exited with status 3',
  });
  t.is(describeExit({ code: null, signal: null, oomKilled: false, stopReason: null }).reason, 'unknown');
  t.is(signalOfStatus(128), null);
  t.is(signalOfStatus(130), 'SIGINT');
});

test('extra binds follow the hostname as a count and (source, target, ro|rw) triples, before setpriv', (t) => {
  const binds = [
    { source: '/ws/cache', target: '/tmp/cache', readOnly: false },
    { source: '/bp/node', target: '/tmp/buildpacks/0', readOnly: true },
  ];
  const argv = namespacedArgv({ ...launch, binds });
  const at = argv.indexOf('ingot-init') + 7;
  t.deepEqual(argv.slice(at, at + 8), ['2', '/ws/cache', '/tmp/cache', 'rw', '/bp/node', '/tmp/buildpacks/0', 'ro', DEFAULT_TOOLS.setpriv]);
  const plain = namespacedArgv(launch);
  t.deepEqual(plain.slice(at, at + 2), ['0', DEFAULT_TOOLS.setpriv]);
});

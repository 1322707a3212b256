// The isolation check: what is missing, said in one sentence.

import test from 'ava';
import {
  REQUIRED_TOOLS,
  assessIsolation,
  isolationRefusal,
  parseCapabilities,
  type IsolationProbe,
} from '../../kernel/dea/container/isolation-support.ts';

const ALL_CAPS = ['CAP_CHOWN', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN'];

const probe = (more: Partial<IsolationProbe> = {}): IsolationProbe => ({
  euid: 0,
  capabilities: ALL_CAPS,
  tools: Object.fromEntries(Object.keys(REQUIRED_TOOLS).map((k) => [k, true])),
  cgroupRoot: '/sys/fs/cgroup',
  cgroupVersion: 1,
  controllers: { memory: true, pids: true, cpu: true, cpuacct: true },
  netnsSupported: true,
  ...more,
});

test('a root host with every tool and controller is ok', (t) => {
  t.deepEqual(assessIsolation(probe()), { ok: true, missing: [] });
});

test('an unprivileged user is told root is needed, and why', (t) => {
  const r = assessIsolation(probe({ euid: 1000, capabilities: [] }));
  t.false(r.ok);
  t.is(r.missing.length, 1);
  t.regex(r.missing[0]!, /^root privileges \(running as uid 1000, lacking CAP_CHOWN, .*CAP_SYS_ADMIN; namespaces, mounts and cgroups need euid 0/);
});

test('root without CAP_SYS_ADMIN (a container) is not enough', (t) => {
  const r = assessIsolation(probe({ capabilities: ALL_CAPS.filter((c) => c !== 'CAP_SYS_ADMIN') }));
  t.deepEqual(r.missing, [
    'root privileges (running as root, lacking CAP_SYS_ADMIN; namespaces, mounts and cgroups need euid 0 with CAP_SYS_ADMIN and CAP_NET_ADMIN)',
  ]);
});

test('missing tools name their package; missing controllers name their place', (t) => {
  const r = assessIsolation(
    probe({
      tools: { ...probe().tools, nft: false, setpriv: false },
      controllers: { memory: true, pids: false, cpu: true, cpuacct: true },
    }),
  );
  t.deepEqual(r.missing, [
    'the setpriv command (package util-linux)',
    'the nft command (package nftables)',
    'a writable pids cgroup controller (/sys/fs/cgroup/pids, cgroup v1)',
  ]);
});

test('v2 controllers are looked for in cgroup.controllers; no cgroup fs at all is said once', (t) => {
  const v2 = assessIsolation(probe({ cgroupVersion: 2, controllers: { memory: false, pids: true, cpu: true, cpuacct: true } }));
  t.deepEqual(v2.missing, ['a writable memory cgroup controller (/sys/fs/cgroup/cgroup.controllers, cgroup v2)']);
  const none = assessIsolation(probe({ cgroupVersion: null, controllers: { memory: false, pids: false, cpu: false, cpuacct: false } }));
  t.deepEqual(none.missing, ['a cgroup filesystem at /sys/fs/cgroup']);
});

test('the refusal is one sentence naming what is missing and the way out', (t) => {
  t.is(
    isolationRefusal(['the nft command (package nftables)', 'network namespaces (/proc/self/ns/net)']),
    'Cannot isolate containers with namespaces: missing the nft command (package nftables); network namespaces (/proc/self/ns/net). ' +
      'Run the DEA as root on a host that has them, or set isolation: none (development only, no isolation).',
  );
});

test('capabilities are read from CapEff', (t) => {
  t.deepEqual(parseCapabilities('Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n'), ALL_CAPS);
  t.deepEqual(parseCapabilities('CapEff:\t0000000000001000\n'), ['CAP_NET_ADMIN']);
  t.deepEqual(parseCapabilities('nothing here'), []);
});

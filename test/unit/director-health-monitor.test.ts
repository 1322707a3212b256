// The health monitor's pure core: which instances are down, the meltdown decision and its
// window, what cloud-check reports, how the CLI picks resolutions; the config's checks; and
// `-d DEP events` being the platform's command.
import test from 'ava';
import { deploymentVerb } from '../../cli/verbs.ts';
import { ConfigError } from '../../kernel/component/errors.ts';
import { chooseResolutions, RESOLUTION_NAMES, renderEvents, renderProblems } from '../../orchestrator/client/cloud-check-command.ts';
import type { Problem } from '../../orchestrator/client/director-types.ts';
import { parseDirectorConfig } from '../../orchestrator/director/config.ts';
import {
  ALL_RESOLUTIONS,
  detectProblems,
  downInstances,
  meltdownVerdict,
  pruneDown,
  RESOLUTIONS,
  unconfirmedDown,
  type ResurrectorPolicy,
  type WatchedInstance,
} from '../../orchestrator/health-monitor/analysis.ts';

const NOW = 1_000_000;
const watched = (n: number, o: Partial<WatchedInstance> = {}): WatchedInstance => ({
  uuid: `u${n}`,
  label: `router/${n}`,
  agent_id: `agent_${n}`,
  vm_cid: `vm-${n}`,
  vm_created_ms: NOW - 600_000,
  vm_exists: true,
  last_heartbeat_ms: NOW - 1000,
  ...o,
});
const timing = { agentTimeoutMs: 60_000, watchingSinceMs: NOW - 600_000 };

test('a VM the CPI no longer has is down at once, whatever its last heartbeat', (t) => {
  const down = downInstances([watched(0, { vm_exists: false }), watched(1)], NOW, timing);
  t.deepEqual(down.map((d) => `${d.label} ${d.reason}`), ['router/0 missing_vm']);
  t.regex(down[0]!.why, /VM vm-0 of router\/0 is gone/);
});

test('an agent is down only once silent past its timeout', (t) => {
  t.deepEqual(downInstances([watched(0, { last_heartbeat_ms: NOW - 60_000 })], NOW, timing), []);
  const down = downInstances([watched(0, { last_heartbeat_ms: NOW - 60_001 })], NOW, timing);
  t.is(down[0]!.reason, 'unresponsive_agent');
  t.regex(down[0]!.why, /agent agent_0 of router\/0 has not sent a heartbeat for 60 s \(timeout 60 s\)/);
});

test('an agent never heard is given its timeout from its VM’s creation or the monitor’s start, the later', (t) => {
  const unheard = (n: number, createdAgo: number): WatchedInstance => {
    const { last_heartbeat_ms: _, ...rest } = watched(n, { vm_created_ms: NOW - createdAgo });
    return rest;
  };
  t.deepEqual(downInstances([unheard(0, 10_000)], NOW, timing), []);
  const old = unheard(1, 600_000);
  t.is(downInstances([old], NOW, timing).length, 1);
  // A director that just started has not watched long enough to call anyone silent.
  t.deepEqual(downInstances([old], NOW, { ...timing, watchingSinceMs: NOW - 5000 }), []);
});

const policy: ResurrectorPolicy = { minimum_down_jobs: 2, percent_threshold: 0.5, time_threshold: 60 };
const downAt = (...ages: number[]) => new Map(ages.map((age, i) => [`u${i}`, NOW - age * 1000]));

test('meltdown needs both the minimum count and the share, within the window', (t) => {
  t.false(meltdownVerdict(downAt(0), 2, NOW, policy).meltdown, 'one is below the minimum even at 50 %');
  t.true(meltdownVerdict(downAt(0, 0), 4, NOW, policy).meltdown, 'two of four: both thresholds reached');
  t.false(meltdownVerdict(downAt(0, 0), 5, NOW, policy).meltdown, 'two of five is 40 %');
  t.false(meltdownVerdict(downAt(0, 61), 4, NOW, policy).meltdown, 'the second is outside the window');
  t.deepEqual(meltdownVerdict(downAt(0, 10, 20), 4, NOW, policy), { meltdown: true, down: 3, total: 4, share: 0.75 });
  t.false(meltdownVerdict(new Map(), 0, NOW, policy).meltdown, 'an empty deployment never melts');
  // BOSH's defaults: 5 instances and 20 %.
  const bosh = { minimum_down_jobs: 5, percent_threshold: 0.2, time_threshold: 600 };
  t.false(meltdownVerdict(downAt(0, 0, 0, 0), 10, NOW, bosh).meltdown);
  t.true(meltdownVerdict(downAt(0, 0, 0, 0, 0), 25, NOW, bosh).meltdown);
  t.false(meltdownVerdict(downAt(0, 0, 0, 0, 0), 26, NOW, bosh).meltdown);
});

test('pruneDown forgets what left the window and keeps the rest', (t) => {
  const m = pruneDown(downAt(0, 59, 61), NOW, policy);
  t.deepEqual([...m.keys()], ['u0', 'u1']);
});

test('the resurrector waits for a second look at an instance first seen down now', (t) => {
  const down = downInstances([watched(0, { vm_exists: false }), watched(1, { vm_exists: false }), watched(2)], NOW, timing);
  t.deepEqual(unconfirmedDown(down, new Set(['u0'])).map((d) => d.label), ['router/1']);
  t.deepEqual(unconfirmedDown(down, new Set(['u0', 'u1', 'u9'])), []);
});

test('cloud-check: a missing VM, an unresponsive agent, a missing disk; a healthy instance nothing', (t) => {
  const found = detectProblems([
    { uuid: 'a', label: 'router/0', vm: { cid: 'vm-a', agent_id: 'agent_a', exists: false, responsive: false }, disks: [{ cid: 'disk-a', exists: true }] },
    { uuid: 'b', label: 'router/1', vm: { cid: 'vm-b', agent_id: 'agent_b', exists: true, responsive: false }, disks: [] },
    { uuid: 'c', label: 'router/2', vm: { cid: 'vm-c', agent_id: 'agent_c', exists: true, responsive: true }, disks: [{ cid: 'disk-c', exists: false }] },
    { uuid: 'd', label: 'nats/0', vm: { cid: 'vm-d', agent_id: 'agent_d', exists: true, responsive: true }, disks: [{ cid: 'disk-d', exists: true }] },
    { uuid: 'e', label: 'nats/1', vm: null, disks: [] },
  ]);
  t.deepEqual(
    found.map((p) => `${p.type} ${p.resource_id} ${p.data.description}`),
    ['missing_vm a VM vm-a of router/0 is missing', 'unresponsive_agent b router/1 (vm-b) is not responding', 'missing_disk c Disk disk-c of router/2 is missing'],
  );
  t.is(RESOLUTIONS.missing_vm[0], 'recreate_vm');
  t.is(RESOLUTIONS.missing_disk[0], 'delete_disk_reference');
});

test('cloud-check: a disk its answering agent does not list is a mount_info_mismatch; unknown or already a problem, nothing more', (t) => {
  const vm = (n: string, responsive = true) => ({ cid: `vm-${n}`, agent_id: `agent_${n}`, exists: true, responsive });
  const found = detectProblems([
    { uuid: 'a', label: 'router/0', vm: vm('a'), disks: [{ cid: 'disk-a', exists: true, mounted: false }] },
    { uuid: 'b', label: 'router/1', vm: vm('b'), disks: [{ cid: 'disk-b', exists: true, mounted: true }] },
    { uuid: 'c', label: 'router/2', vm: vm('c'), disks: [{ cid: 'disk-c', exists: true }] },
    { uuid: 'd', label: 'router/3', vm: vm('d'), disks: [{ cid: 'disk-d', exists: false, mounted: false }] },
    { uuid: 'e', label: 'router/4', vm: vm('e', false), disks: [{ cid: 'disk-e', exists: true, mounted: false }] },
    { uuid: 'f', label: 'router/5', vm: null, disks: [{ cid: 'disk-f', exists: true, mounted: false }] },
  ]);
  t.deepEqual(
    found.map((p) => `${p.type} ${p.resource_id}`),
    ['mount_info_mismatch a', 'missing_disk d', 'unresponsive_agent e'],
  );
  t.deepEqual(found[0]!.data, {
    instance: 'router/0',
    disk_cid: 'disk-a',
    vm_cid: 'vm-a',
    agent_id: 'agent_a',
    description: 'Disk disk-a of router/0 should be mounted on VM vm-a, but its agent does not list it',
  });
  t.deepEqual([...RESOLUTIONS.mount_info_mismatch], ['reattach_disk', 'reattach_disk_and_reboot', 'ignore']);
});

test('the CLI knows every resolution the director offers', (t) => {
  t.deepEqual([...RESOLUTION_NAMES].sort(), [...ALL_RESOLUTIONS].sort());
});

const problem = (id: number, type: keyof typeof RESOLUTIONS): Problem => ({
  id,
  type,
  description: type,
  instance: null,
  resource_id: 'x',
  resolutions: RESOLUTIONS[type].map((name) => ({ name, plan: name })),
});

test('--auto takes each problem’s default; --resolution applies where offered, else ignore; a wrong name is refused', (t) => {
  const ps = [problem(1, 'missing_vm'), problem(2, 'unresponsive_agent'), problem(3, 'missing_disk')];
  t.deepEqual(chooseResolutions(ps, { auto: true }), { 1: 'recreate_vm', 2: 'recreate_vm', 3: 'delete_disk_reference' });
  t.deepEqual(chooseResolutions(ps, { resolution: 'reboot_vm' }), { 1: 'ignore', 2: 'reboot_vm', 3: 'ignore' });
  const withMount = [...ps, problem(4, 'mount_info_mismatch')];
  t.deepEqual(chooseResolutions(withMount, { auto: true })['4'], 'reattach_disk');
  t.deepEqual(chooseResolutions(withMount, { resolution: 'reattach_disk' }), { 1: 'ignore', 2: 'ignore', 3: 'ignore', 4: 'reattach_disk' });
  t.throws(() => chooseResolutions(ps, { resolution: 'reattach' }), { message: /--resolution reattach: expected one of recreate_vm, reboot_vm/ });
});

const good = ['data_dir: /d', 'admin:', '  user: admin', '  password: secret-password', 'token:', `  secret: ${'s'.repeat(32)}`].join('\n') + '\n';

test('the health monitor’s config: BOSH’s defaults, and every mistake named', (t) => {
  const c = parseDirectorConfig(good);
  t.deepEqual(c.health_monitor, {
    enabled: true,
    resurrection: true,
    agent_timeout_ms: 60_000,
    scan_interval_ms: 10_000,
    resurrector: { minimum_down_jobs: 5, percent_threshold: 0.2, time_threshold: 600 },
  });
  const text = good + ['health_monitor:', '  agent_timeout_ms: 0', '  resurrector:', '    percent_threshold: 20', '    minimum_down_jobs: 0', '    bogus: 1'].join('\n') + '\n';
  let problems: string[] = [];
  try {
    parseDirectorConfig(text);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems = err.problems;
  }
  t.true(problems.some((p) => /health_monitor\.agent_timeout_ms: number must be greater than 0/.test(p)), problems.join('\n'));
  t.true(problems.some((p) => /health_monitor\.resurrector\.percent_threshold: expected a share from 0 to 1/.test(p)), problems.join('\n'));
  t.true(problems.some((p) => /health_monitor\.resurrector\.minimum_down_jobs/.test(p)), problems.join('\n'));
  t.true(problems.some((p) => /unknown key \(bogus\)/.test(p)), problems.join('\n'));
});

test('`-d DEP events` is the platform’s events; without -d it is the app’s', (t) => {
  t.is(deploymentVerb(['-d', 'ingot', 'events']), 'events');
  t.is(deploymentVerb(['events', 'web']), undefined);
});

test('the CLI’s problem and event tables', (t) => {
  const rows = renderProblems([{ ...problem(3, 'missing_vm'), description: 'VM vm-1 of router/1 is missing' }]);
  t.regex(rows.join('\n'), /#\s+Type\s+Description\n3\s+missing_vm\s+VM vm-1 of router\/1 is missing/);
  const ev = renderEvents(
    [{ id: 7, timestamp: '2026-11-27T03:56:46.000Z', user: 'health_monitor', action: 'alert', object_type: 'alert', object_name: 'Skipping resurrection', deployment: 'dd', instance: null, task_id: null, context: { severity: 1, summary: '2 of 4 down' } }],
    { timeZone: 'UTC' },
  );
  t.regex(ev.join('\n'), /7\s+Fri Nov 27 03:56:46 UTC 2026\s+health_monitor\s+alert\s+alert\s+Skipping resurrection\s+dd\s+severity 1: 2 of 4 down/);
});

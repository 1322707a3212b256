// `npm start` end to end (issue 8, DESIGN.md §7): this checkout's scripts/start.sh brings the
// platform up through the local director — manifests/local.yml on namespace VMs, the balancer
// on 127.0.0.1:8080 — a Node app pushed with the CLI answers at http://<name>.localhost:8080;
// a second start changes nothing; stop then start, and kill -9 of every process then start,
// bring the app back; destroy leaves nothing. The platform's names are fixed (the bridge
// ingot0, 10.244.0.0/24, port 8080), so this runs alone, serially, and destroys what it made
// whatever happens. A developer's own running platform is left alone (the file says so).
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from '../helpers/component-process.ts';
import { send } from '../helpers/router-process.ts';
import { scratchDir } from '../helpers/tmp.ts';
import { spawnLoad } from '../../bench/rolling-upgrade/load.ts';
import { ingotCli, rollUnderLoad, runProcess, summaryLine, type RunResult } from '../../bench/rolling-upgrade/roll.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** manifests/local.yml's instances, one VM each. */
const VMS = 15;
const HOME = scratchDir('platform-home');

interface Ctx {
  /** False when a platform was already up on this machine: nothing here may touch it. */
  ours: boolean;
  timings: Record<string, number>;
}
const test = anyTest as TestFn<Ctx>;

function run(args: string[], timeoutMs: number): Promise<RunResult> {
  return runProcess(args, { cwd: ROOT, env: { ...process.env, INGOT_HOME: HOME }, timeoutMs });
}

async function npm(t: ExecutionContext<Ctx>, script: 'start' | 'stop' | 'destroy', timeoutMs = 600_000): Promise<number> {
  const r = await run(['bash', `scripts/${script}.sh`], timeoutMs);
  if (r.code !== 0) t.log(r.out.split('\n').slice(-30).join('\n'));
  t.is(r.code, 0, `npm ${script}`);
  return r.ms;
}

const appStatus = async (name: string): Promise<number> => (await send({ port: 8080, host: `${name}.localhost`, path: '/', timeoutMs: 3000 }).catch(() => ({ status: 0 }))).status;

/** Every process of the platform, as `kill -9` at the end of a session would find them. */
function killEverything(): void {
  const pids = new Set<number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const cgroup = readFileSync(`/proc/${entry}/cgroup`, 'utf8');
      if (cmd.includes(`${ROOT}.ingot-run/platform`) || cmd.includes('director-server') || /\/ingot\/(ingot|dea\d+)\//.test(cgroup)) pids.add(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  for (const ns of execFileSync('/usr/sbin/ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('ingot-vm-'))) {
    const name = ns.split(' ')[0]!;
    for (const p of execFileSync('/usr/sbin/ip', ['netns', 'pids', name], { encoding: 'utf8' }).split('\n').filter(Boolean)) pids.add(Number(p));
  }
  pids.delete(process.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

test.before(async (t) => {
  t.context = { ours: !existsSync('/sys/class/net/ingot0'), timings: {} };
  if (!t.context.ours) t.log('a local platform is already up on this machine (bridge ingot0): these tests leave it alone and check nothing');
});

test.after.always(async (t) => {
  t.timeout(120_000);
  if (!t.context.ours) return;
  await run(['bash', 'scripts/destroy.sh'], 120_000);
  t.log(JSON.stringify(t.context.timings));
});

test.serial('npm start brings the platform up; a pushed Node app answers at <name>.localhost:8080', async (t) => {
  t.timeout(900_000);
  if (!t.context.ours) return t.pass();
  t.context.timings.start_ms = await npm(t, 'start');
  // Every kernel job runs, each in a VM of its own (an IP each); each service's node and gateway
  // share one, as the controllers' database and blobstore do.
  const instances = await run(['node', 'bin/ingot.js', 'instances', '-d', 'ingot', '--ps', '--vitals', '--json'], 60_000);
  t.is(instances.code, 0, instances.out);
  const rows = JSON.parse(instances.out) as Array<{ instance: string; process_state: string; ips: string[] }>;
  t.deepEqual(rows.map((r) => r.instance).sort(), [
    'cloud-controller/0', 'cloud-controller/1', 'database/0', 'dea/0', 'dea/1', 'health-manager/0', 'mysql/0',
    'nats/0', 'nats/1', 'nats/2', 'postgresql/0', 'rabbitmq/0', 'redis/0', 'router/0', 'router/1',
  ]);
  t.true(rows.every((r) => r.process_state === 'running'), JSON.stringify(rows.map((r) => `${r.instance} ${r.process_state}`)));
  t.is(new Set(rows.flatMap((r) => r.ips)).size, VMS, 'a VM, an address');
  const push = await run(['node', 'bin/ingot.js', 'push', 'hello', '-p', 'examples/node-hello'], 300_000);
  t.is(push.code, 0, push.out);
  t.context.timings.push_ms = push.ms;
  const body = await send({ port: 8080, host: 'hello.localhost', path: '/' });
  t.regex(body.body, /^Hello from hello on node v20/);
});

test.serial('a second npm start changes nothing and is quick', async (t) => {
  t.timeout(300_000);
  if (!t.context.ours) return t.pass();
  const r = await run(['bash', 'scripts/start.sh'], 300_000);
  t.is(r.code, 0, r.out);
  t.regex(r.out, /Deployment ingot: no changes\./);
  t.context.timings.warm_start_ms = r.ms;
  t.true(r.ms < 120_000, `a warm start took ${r.ms} ms`);
});

test.serial('operator commands: vms, ssh into a VM, logs, the smoke-tests errand, a router restarted under load', async (t) => {
  t.timeout(600_000);
  if (!t.context.ours) return t.pass();
  const ingot = (args: string[], timeoutMs = 120_000) => run(['node', 'bin/ingot.js', ...args], timeoutMs);

  const vms = await ingot(['vms', '-d', 'ingot', '--json']);
  t.is(vms.code, 0, vms.out);
  const rows = JSON.parse(vms.out) as Array<{ instance: string; vm_cid: string; process_state: string; ips: string[] }>;
  t.is(rows.length, VMS, vms.out);
  t.true(rows.every((r) => r.vm_cid && r.process_state === 'running'), vms.out);

  // ssh runs in the VM: its own address, its own mount namespace, the VM's cgroup.
  const router0 = rows.find((r) => r.instance.startsWith('router/') && r.ips.includes('10.244.0.15'))!;
  const ssh = await ingot(['-d', 'ingot', 'ssh', 'router/0', '-c', 'ip -4 -o addr show; cat /proc/self/cgroup; ls /var/vcap/jobs']);
  t.is(ssh.code, 0, ssh.out);
  t.regex(ssh.out, new RegExp(router0.ips[0]!.replace(/\./g, '\\.')));
  t.regex(ssh.out, new RegExp(router0.vm_cid));
  t.regex(ssh.out, /^router$/m);
  t.is((await ingot(['-d', 'ingot', 'ssh', 'router/0', '-c', 'exit 7'])).code, 7, 'the command\'s exit status');

  const dir = scratchDir('platform-logs');
  const logs = await ingot(['-d', 'ingot', 'logs', 'cloud-controller/0', '--dir', dir]);
  t.is(logs.code, 0, logs.out);
  const tgz = readdirSync(dir).find((f) => /^ingot\.cloud-controller\.0\..*\.tgz$/.test(f));
  t.truthy(tgz, logs.out);
  t.regex(execFileSync('tar', ['-tzf', `${dir}/${tgz}`], { encoding: 'utf8' }), /cloud-controller\/cloud-controller\.stdout\.log/);

  const errand = await ingot(['-d', 'ingot', 'run-errand', 'smoke-tests'], 180_000);
  t.is(errand.code, 0, errand.out);
  t.regex(errand.out, /6 of 6 checks passed/);
  t.regex(errand.out, /Errand smoke-tests succeeded on 1 instance/);

  // A router restarted while requests flow through the balancer: the other one carries them.
  let failed = 0;
  let sent = 0;
  let rolling = true;
  const load = (async () => {
    // About 100 requests a second, bounded: a steady trickle, not a flood.
    while (rolling && sent < 30_000) {
      sent++;
      if ((await appStatus('hello')) !== 200) failed++;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  const restart = await ingot(['-d', 'ingot', 'restart', 'router/1'], 300_000);
  rolling = false;
  await load;
  t.is(restart.code, 0, restart.out);
  t.log(`router/1 restarted in ${restart.ms} ms under ${sent} requests, ${failed} failed`);
  t.is(failed, 0);
});

test.serial('npm stop stops everything; npm start brings the app back', async (t) => {
  t.timeout(900_000);
  if (!t.context.ours) return t.pass();
  await npm(t, 'stop');
  t.is(await appStatus('hello'), 0, 'nothing answers on 8080');
  t.context.timings.restart_ms = await npm(t, 'start');
  const at = Date.now();
  await eventually(async () => (await appStatus('hello')) === 200, 300_000, 'hello answering again');
  t.context.timings.app_back_after_start_ms = Date.now() - at;
});

test.serial('kill -9 of every process, then npm start: the app answers again', async (t) => {
  t.timeout(900_000);
  if (!t.context.ours) return t.pass();
  killEverything();
  await eventually(async () => (await appStatus('hello')) === 0, 30_000, 'nothing answering');
  t.context.timings.start_after_kill_ms = await npm(t, 'start');
  const at = Date.now();
  await eventually(async () => (await appStatus('hello')) === 200, 300_000, 'hello answering again');
  t.context.timings.app_back_after_kill_ms = Date.now() - at;
});

// The short version of bench/rolling-upgrade: a property change on the controllers, the routers
// and the DEAs (an ops file) rolls those six instances — and only those — under ~100 requests a
// second through the balancer, with a push while the roll is on: the controllers roll one at a
// time, so the push always finds one. Last before destroy, so no later start has to roll them back.
test.serial('a deploy rolls the controllers, routers and DEAs under load: no failed request, a push during the roll works, nothing else restarts', async (t) => {
  t.timeout(1_200_000);
  if (!t.context.ours) return t.pass();
  const ingot = ingotCli(ROOT, HOME);
  const ops = join(scratchDir('platform-roll'), 'roll.yml');
  writeFileSync(
    ops,
    [
      '- {type: replace, path: /instance_groups/name=cloud-controller/jobs/name=cloud-controller/properties/cc/drain_timeout_s?, value: 31}',
      '- {type: replace, path: /instance_groups/name=router/jobs/name=router/properties/router/drain_timeout_s?, value: 31}',
      '- {type: replace, path: /instance_groups/name=dea/jobs/name=dea/properties/dea/drain_timeout_s?, value: 31}',
      '',
    ].join('\n'),
  );
  const adminPassword = readFileSync(`${ROOT}.ingot-run/platform/admin.password`, 'utf8').trim();
  const report = await rollUnderLoad({
    root: ROOT,
    ingot,
    appHost: 'hello.localhost',
    deployArgs: ['manifests/local.yml', '-v', `cc_admin_password=${adminPassword}`, '-o', ops],
    pushAfterS: 10,
    push: { name: 'pushed-during-roll', path: 'examples/static-site' },
  });
  t.log(summaryLine(report));
  for (const f of report.load.failures) t.log(`failed at ${f.at_ms} ms: ${f.reason}`);
  t.context.timings.short_roll_ms = Math.round(report.tookS * 1000);
  t.is(report.deployCode, 0, report.deployOutput.slice(-3000));
  t.is(report.push, 'ok', report.pushOutput.slice(-1500));
  t.is(report.load.failed, 0, 'no failed request');
  t.true(report.load.requests > 100, `${report.load.requests} requests`);
  // Only what changed was touched: the controllers', routers' and DEAs' processes are new, every other the same.
  const rolled = (k: string) => /^(cloud-controller|router|dea)\//.test(k);
  t.deepEqual(report.samePid.filter(rolled), [], 'every controller, router and DEA process restarted');
  t.true(report.processes > 0);
  const untouched = report.samePid.length;
  t.true(untouched > 0 && report.samePid.every((k) => !rolled(k)), `${untouched} other processes kept their pids`);
  t.is((await appStatus('pushed-during-roll')), 200);
});

// Issue 11: every part of the platform is redundant or out of the request path. One instance
// of each group in turn — a NATS node first — is drained and stopped, then started again,
// while ~100 requests a second reach the app through the balancer: none fails.
test.serial('a NATS node, then an instance of every other job, stopped one at a time: the app stays reachable', async (t) => {
  t.timeout(1_200_000);
  if (!t.context.ours) return t.pass();
  const ingot = ingotCli(ROOT, HOME);
  const load = spawnLoad({ host: 'hello.localhost', port: 8080, rate: 100, max: 200_000, seconds: 1200 }, ROOT);
  const steps: string[] = [];
  try {
    // The database VM too: apps run on without the controllers' state.
    for (const instance of ['nats/0', 'database/0', 'cloud-controller/0', 'router/0', 'dea/0', 'health-manager/0', 'redis/0', 'postgresql/0', 'mysql/0', 'rabbitmq/0']) {
      const stop = await ingot(['-d', 'ingot', 'stop', instance], 300_000);
      t.is(stop.code, 0, `stop ${instance}: ${stop.out.slice(-1500)}`);
      const start = await ingot(['-d', 'ingot', 'start', instance], 300_000);
      t.is(start.code, 0, `start ${instance}: ${start.out.slice(-1500)}`);
      steps.push(`${instance} ${Math.round(stop.ms / 1000)} s stopping, ${Math.round(start.ms / 1000)} s starting`);
    }
  } finally {
    const result = await load.stop();
    t.log(steps.join('; '));
    t.log(`${result.requests} requests, ${result.failed} failed, max latency ${result.max_latency_ms} ms`);
    for (const f of result.failures) t.log(`failed at ${f.at_ms} ms: ${f.reason}`);
    t.is(result.failed, 0, 'no failed request');
    t.true(result.requests > 100, `${result.requests} requests`);
  }
});

test.serial('npm run destroy leaves no process, namespace, bridge, nftables table or cgroup', async (t) => {
  t.timeout(300_000);
  if (!t.context.ours) return t.pass();
  await npm(t, 'destroy');
  t.false(existsSync('/sys/class/net/ingot0'), 'bridge');
  t.deepEqual(execFileSync('/usr/sbin/ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => /^ingot-/.test(l)), [], 'netns');
  t.notRegex(execFileSync('/usr/sbin/nft', ['list', 'tables'], { encoding: 'utf8' }), /\bingot\b/, 'nft');
  const cgroups = existsSync('/sys/fs/cgroup/pids/ingot') ? readdirSync('/sys/fs/cgroup/pids/ingot').filter((d) => /^(ingot|dea\d+)$/.test(d)) : [];
  t.deepEqual(cgroups, [], 'cgroups');
  t.false(existsSync(`${ROOT}.ingot-run/platform`), 'state');
});

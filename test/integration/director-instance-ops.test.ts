// BOSH's vms, logs, start, stop and restart against real VMs: a real director (its own
// nats-server, SQLite, blobstore) with the local CPI (own prefix, bridge and subnet), real
// agents in namespace VMs, the release built from this repo; nats and two routers deployed.
// vms lists the three with their agents' state; logs of router/0 is a tarball holding the
// router's log; stop router/1 silences it and a re-deploy keeps it stopped; start brings it
// back; restart of the group replaces both router processes one at a time, so one always
// answers. Bad targets and a second state change while one runs are refused in a sentence.
// VMs and processes are swept first and last, whatever happens.
import anyTest, { type TestFn } from 'ava';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tar from 'tar';
import { ConfigStore } from '../../kernel/client/config-store.ts';
import type { CpiFixture } from '../helpers/cpi-local.ts';
import type { DirectorClient, DirectorProcess } from '../helpers/director.ts';
import { kernelManifest, startDeployFixture, stopDeployFixture } from '../helpers/director-deploy-fixture.ts';
import { scratchDir } from '../helpers/tmp.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Context {
  fx: CpiFixture;
  director: DirectorProcess;
  api: DirectorClient;
  releaseVersion: string;
  /** router/0 and router/1 → IP, once deployed. */
  ips: Map<string, string>;
}
const test = anyTest as TestFn<Context>;

function manifest(c: Context, routerExtra: Record<string, unknown> = {}): string {
  return kernelManifest({ releaseVersion: c.releaseVersion, routers: 2, watch: '1000-60000', routerExtra });
}

async function events(c: Context, id: number): Promise<string[]> {
  const out = await c.api.request('GET', `/tasks/${id}/output?type=event`);
  return out.text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((e) => e.state !== 'in_progress')
    .map((e) => `${e.stage} ${e.task} ${e.state}`);
}

/** Queues a task with POST and waits for its end; the task and its event lines. */
async function runTask(c: Context, path: string, body?: Buffer, timeoutMs = 120_000): Promise<{ task: any; lines: string[] }> {
  const r = await c.api.request('POST', path, undefined, body ? { raw: body } : {});
  if (r.status !== 202) throw new Error(`POST ${path}: ${r.status} ${r.text}`);
  const task = await c.api.waitForTask(r.body.id, ['done', 'error', 'cancelled'], timeoutMs);
  return { task, lines: await events(c, r.body.id) };
}

const deploy = (c: Context, text: string) => runTask(c, '/deployments', Buffer.from(text), 240_000);

async function healthz(ip: string): Promise<number | undefined> {
  try {
    return (await fetch(`http://${ip}:8081/healthz`, { signal: AbortSignal.timeout(1000) })).status;
  } catch {
    return undefined;
  }
}

/** GET /deployments/dd/instances?state=true, by instance name. */
async function states(c: Context): Promise<Map<string, any>> {
  const r = await c.api.request('GET', '/deployments/dd/instances?state=true');
  if (r.status !== 200) throw new Error(`instances: ${r.status} ${r.text}`);
  return new Map(r.body.map((row: any) => [row.instance, row]));
}

test.before(async (t) => {
  t.timeout(300_000);
  const { director, releaseVersion } = await startDeployFixture('director-instance-ops', (fx) => (t.context.fx = fx), { watch_poll_ms: 250 });
  t.context.director = director;
  t.context.api = director.client();
  t.context.releaseVersion = releaseVersion;
  const started = Date.now();
  const { task, lines } = await deploy(t.context, manifest(t.context));
  t.log(`deploy ${Date.now() - started} ms: ${task.result}`);
  if (task.state !== 'done') throw new Error(`deploy: ${task.result}\n${lines.join('\n')}`);
  t.context.ips = new Map([...(await states(t.context))].map(([name, row]) => [name, row.ips[0]]));
});

test.after.always(async (t) => {
  const c: Partial<Context> = t.context ?? {};
  await stopDeployFixture(t, c.fx, c.director);
});

test.serial('vms lists each VM with its agent’s state, VM cid and type; 404 for an unknown deployment', async (t) => {
  const c = t.context;
  const r = await c.api.request('GET', '/deployments/dd/vms');
  t.is(r.status, 200, r.text);
  t.deepEqual(r.body.map((v: any) => `${v.instance} ${v.process_state} ${v.vm_type}`), ['nats/0 running small', 'router/0 running small', 'router/1 running small']);
  for (const v of r.body) {
    t.truthy(v.vm_cid);
    t.truthy(v.agent_id);
    t.is(v.az, 'z1');
    t.true(v.ips[0].startsWith(c.fx.net), JSON.stringify(v));
    t.false(Number.isNaN(Date.parse(v.created_at)));
  }
  t.is((await c.api.request('GET', '/deployments/nope/vms')).status, 404);
  t.is((await c.api.request('GET', '/deployments/dd/vms', undefined, { token: null })).status, 401);
});

test.serial('logs of router/0 is a tarball with the router’s log; bad targets and resource ids are refused', async (t) => {
  t.timeout(120_000);
  const c = t.context;
  const { task, lines } = await runTask(c, '/deployments/dd/instances/router/0/logs');
  t.is(task.state, 'done', task.result);
  t.is(task.type, 'fetch_logs');
  t.true(lines.some((l) => l.startsWith('Fetching logs router/0') && l.endsWith('finished')), lines.join('\n'));
  const id = task.result as string;
  t.regex(id, /^[0-9a-f-]{36}$/);
  const res = await fetch(`${c.api.url}/resources/${id}`, { headers: { authorization: `Bearer ${await c.api.login()}` } });
  t.is(res.status, 200);
  const dir = scratchDir('instance-ops-logs');
  const file = join(dir, 'logs.tgz');
  await writeFile(file, Buffer.from(await res.arrayBuffer()));
  const entries: string[] = [];
  await tar.t({ file, onReadEntry: (e) => void entries.push(e.path) });
  t.true(entries.includes('./router/router.stdout.log'), entries.join('\n'));
  await mkdir(join(dir, 'x'));
  await tar.x({ file, cwd: join(dir, 'x') });
  t.true((await readFile(join(dir, 'x', 'router', 'router.stdout.log'), 'utf8')).length >= 0);

  // The instance by its uuid works too.
  const uuid = (await states(c)).get('router/1').id;
  const byUuid = await runTask(c, `/deployments/dd/instances/router/${uuid}/logs`);
  t.is(byUuid.task.state, 'done', byUuid.task.result);

  const missing = await c.api.request('POST', '/deployments/dd/instances/router/7/logs');
  t.is(missing.status, 404);
  t.regex(missing.body.errors[0].detail, /Instance router\/7 is not in deployment dd/);
  const noGroup = await c.api.request('POST', '/deployments/dd/instances/web/0/logs');
  t.is(noGroup.status, 404);
  t.regex(noGroup.body.errors[0].detail, /Instance group web is not in deployment dd/);
  t.is((await c.api.request('POST', '/deployments/nope/instances/router/0/logs')).status, 404);
  t.is((await c.api.request('POST', '/deployments/dd/instances/router/x1/logs')).status, 422);
  // Only ids of fetched logs, and only UUIDs: no path leaves the resources directory.
  t.is((await c.api.request('GET', '/resources/00000000-0000-0000-0000-000000000000')).status, 404);
  t.is((await c.api.request('GET', `/resources/${encodeURIComponent('../director.yml')}`)).status, 400);
  t.is((await c.api.request('GET', `/resources/${id}`, undefined, { token: null })).status, 401);
});

test.serial('stop router/1 silences it, router/0 serves on; a re-deploy keeps it stopped; start brings it back', async (t) => {
  t.timeout(240_000);
  const c = t.context;
  const ip0 = c.ips.get('router/0')!;
  const ip1 = c.ips.get('router/1')!;
  const queued = await c.api.request('POST', '/deployments/dd/jobs/router/1?state=stopped');
  t.is(queued.status, 202, queued.text);
  // A second state change while the first holds the lock: refused, naming the holder.
  const second = await c.api.request('POST', '/deployments/dd/jobs/router/0?state=stopped');
  t.is(second.status, 409, second.text);
  t.regex(second.body.errors[0].detail, new RegExp(`locked by task ${queued.body.id} \\(stop dd router/1\\)`));
  const stopped = await c.api.waitForTask(queued.body.id, ['done', 'error', 'cancelled'], 60_000);
  t.is(stopped.state, 'done', stopped.result);
  t.deepEqual(await events(c, queued.body.id), ['Stopping instance router/1 started', 'Stopping instance router/1 finished']);
  let s = await states(c);
  t.is(s.get('router/1').process_state, 'stopped');
  t.is(s.get('router/1').desired_state, 'stopped');
  t.is(s.get('router/0').process_state, 'running');
  t.is(await healthz(ip1), undefined);
  t.is(await healthz(ip0), 200);

  const same = await deploy(c, manifest(c));
  t.is(same.task.state, 'done', same.task.result);
  t.regex(same.task.result, /No changes/);
  // A change that updates both routers: router/1 gets it but stays stopped.
  const changed = await deploy(c, manifest(c, { drain_timeout_s: 20 }));
  t.is(changed.task.state, 'done', `${changed.task.result}\n${changed.lines.join('\n')}`);
  t.true(changed.lines.includes('Updating instance router/1 finished'), changed.lines.join('\n'));
  s = await states(c);
  t.is(s.get('router/1').process_state, 'stopped');
  t.is(s.get('router/0').process_state, 'running');
  t.is(await healthz(ip1), undefined);

  const started = await runTask(c, '/deployments/dd/jobs/router/1?state=started');
  t.is(started.task.state, 'done', started.task.result);
  t.deepEqual(started.lines, ['Starting instance router/1 started', 'Starting instance router/1 finished']);
  s = await states(c);
  t.is(s.get('router/1').process_state, 'running');
  t.is(s.get('router/1').desired_state, 'started');
  t.is(await healthz(ip1), 200);
});

test.serial('restart of the router group replaces both processes one at a time; one router answers throughout', async (t) => {
  t.timeout(180_000);
  const c = t.context;
  const ips = [c.ips.get('router/0')!, c.ips.get('router/1')!];
  const pids = (s: Map<string, any>) => ['router/0', 'router/1'].map((n) => s.get(n).processes[0].pid as number);
  const before = pids(await states(c));
  t.true(before.every((p) => Number.isInteger(p)), JSON.stringify(before));
  const r = await c.api.request('POST', '/deployments/dd/jobs/router?state=restarted');
  t.is(r.status, 202, r.text);
  const silent: number[] = [];
  let polls = 0;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const task = (await c.api.request('GET', `/tasks/${r.body.id}`)).body;
    if (['done', 'error', 'cancelled'].includes(task.state) || Date.now() > deadline) break;
    const answers = await Promise.all(ips.map((ip) => healthz(ip)));
    polls++;
    if (!answers.includes(200)) silent.push(polls);
    await new Promise((res) => setTimeout(res, 100));
  }
  const task = (await c.api.request('GET', `/tasks/${r.body.id}`)).body;
  t.is(task.state, 'done', task.result);
  t.log(`${polls} polls during the restart`);
  t.true(polls > 5, `${polls} polls`);
  t.deepEqual(silent, [], `no router answered at polls ${silent.join(', ')} of ${polls}`);
  t.deepEqual(await events(c, r.body.id), [
    'Restarting instance router/0 started',
    'Restarting instance router/0 finished',
    'Restarting instance router/1 started',
    'Restarting instance router/1 finished',
  ]);
  const s = await states(c);
  t.deepEqual(['router/0', 'router/1'].map((n) => s.get(n).process_state), ['running', 'running']);
  const after = pids(s);
  t.not(after[0], before[0]);
  t.not(after[1], before[1]);
});

test.serial('a group or index that does not exist, or a bad state, is refused with a sentence', async (t) => {
  const c = t.context;
  const noGroup = await c.api.request('POST', '/deployments/dd/jobs/web?state=stopped');
  t.is(noGroup.status, 404);
  t.regex(noGroup.body.errors[0].detail, /Instance group web is not in deployment dd \(it has nats, router\)/);
  const noIndex = await c.api.request('POST', '/deployments/dd/jobs/router/5?state=stopped');
  t.is(noIndex.status, 404);
  t.regex(noIndex.body.errors[0].detail, /Instance router\/5 is not in deployment dd \(router has 0, 1\)/);
  const badIndex = await c.api.request('POST', '/deployments/dd/jobs/router/first?state=stopped');
  t.is(badIndex.status, 422);
  t.regex(badIndex.body.errors[0].detail, /the index is a number or the instance's uuid/);
  const badState = await c.api.request('POST', '/deployments/dd/jobs/router?state=paused');
  t.is(badState.status, 400);
  t.regex(badState.body.errors[0].detail, /state: expected one of started, stopped, restarted/);
  t.is((await c.api.request('POST', '/deployments/nope/jobs/router?state=stopped')).status, 404);
  t.is((await c.api.request('POST', '/deployments/dd/jobs/router?state=stopped', undefined, { token: null })).status, 401);
  // Nothing was queued by any of these.
  t.deepEqual((await c.api.request('GET', '/tasks?type=change_job_state&state=queued,processing')).body, []);
});

test.serial('the CLI: vms, logs into --dir, start; a missing instance is one sentence', async (t) => {
  t.timeout(120_000);
  const c = t.context;
  const home = scratchDir('instance-ops-home');
  await new ConfigStore(home).saveSection('director', { url: c.api.url, access_token: await c.api.login() });
  // cli/main.ts composes these with the app commands; here they run alone, as it registers them.
  const entry = `const { default: yargs } = await import('yargs');
    const m = await import(${JSON.stringify(join(ROOT, 'orchestrator/client/instance-ops-commands.ts'))});
    try { await m.registerDeploymentVerbCommands(m.registerVmsCommand(yargs(process.argv.slice(1)))).strict().demandCommand(1).fail(false).parseAsync(); }
    catch (err) { console.error('ingot: ' + err.message); process.exit(1); }`;
  const cli = (...args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', entry, '--', ...args], { cwd: ROOT, env: { ...process.env, INGOT_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (b: Buffer) => (stdout += b));
      p.stderr.on('data', (b: Buffer) => (stderr += b));
      p.on('exit', (code) => resolve({ code, stdout, stderr }));
    });

  const vms = await cli('vms', '-d', 'dd');
  t.is(vms.code, 0, vms.stderr);
  t.regex(vms.stdout, /Instance\s+Process State\s+AZ\s+IPs\s+VM CID\s+VM Type\s+Created/);
  t.regex(vms.stdout, /router\/1\/[0-9a-f-]{36}\s+running\s+z1/);
  t.regex(vms.stdout, /3 vms, 3 running/);
  const json = await cli('vms', '--json');
  t.is(json.code, 0, json.stderr);
  t.deepEqual(JSON.parse(json.stdout).map((v: any) => `${v.deployment} ${v.instance}`), ['dd nats/0', 'dd router/0', 'dd router/1']);

  const dir = scratchDir('instance-ops-cli-logs');
  const logs = await cli('-d', 'dd', 'logs', 'router/0', '--dir', dir);
  t.is(logs.code, 0, logs.stderr);
  const m = /Downloaded the logs of dd router\/0 to (\S+)/.exec(logs.stdout);
  t.truthy(m, logs.stdout);
  t.regex(m![1]!, new RegExp(`^${dir}/dd\\.router\\.0\\.\\d{8}-\\d{6}\\.tgz$`));
  const entries: string[] = [];
  await tar.t({ file: m![1]!, onReadEntry: (e) => void entries.push(e.path) });
  t.true(entries.includes('./router/router.stdout.log'), entries.join('\n'));

  const start = await cli('-d', 'dd', 'start', 'router/0');
  t.is(start.code, 0, start.stderr);
  t.regex(start.stdout, /Starting instance router\/0/);
  const missing = await cli('-d', 'dd', 'logs', 'router/9');
  t.is(missing.code, 1);
  t.is(missing.stderr.trim(), 'ingot: Fetching the logs of router/9 of dd: Instance router/9 is not in deployment dd (router has 0, 1)');
});

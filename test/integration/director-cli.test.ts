// The director commands as an operator runs them: the real `ingot` CLI (a child process)
// against a real director process (test/helpers/director.ts, with its dummy `sleep` task type) —
// director, director login, stemcells and releases, cloud-config, tasks followed live,
// cancelled and failed, delete-deployment, and the one-line errors.
import anyTest, { type TestFn } from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { directorConfig, DirectorProcess, killNats, tarball, type DirectorFixture } from '../helpers/director.ts';
import { cliChecks } from '../helpers/cli-checks.ts';
import { INGOT_BIN, runCli } from '../helpers/component-process.ts';
import { scratchDir } from '../helpers/tmp.ts';

interface Ctx {
  fixture: DirectorFixture;
  director: DirectorProcess;
  extra: DirectorProcess[];
  extraFixtures: DirectorFixture[];
}
const test = anyTest as TestFn<Ctx>;

// runCli inherits this process's environment: every CLI run of this file keeps its config here.
const HOME = scratchDir('director-cli-home');
process.env.INGOT_HOME = HOME;
delete process.env.INGOT_DIRECTOR_USERNAME;
delete process.env.INGOT_DIRECTOR_PASSWORD;

const cli = (...args: string[]) => runCli(args, { timeoutMs: 30_000 });
const { ok, refused } = cliChecks(cli);
const config = (): any => JSON.parse(readFileSync(join(HOME, 'config.json'), 'utf8'));

test.before(async (t) => {
  const fixture = await directorConfig();
  t.context = { fixture, director: await DirectorProcess.start(fixture), extra: [], extraFixtures: [] };
});

test.after.always(async (t) => {
  for (const p of t.context.extra ?? []) await p.cleanup();
  for (const f of t.context.extraFixtures ?? []) killNats(f);
  await t.context.director?.cleanup();
});

test.serial('before targeting and logging in, each command says which command to run', async (t) => {
  await refused(t, /no director is targeted; run ingot director URL$/, 'stemcells');
  await refused(t, /no director is targeted; run ingot director URL$/, 'director', 'login', '-u', 'admin', '-p', 'x');
  const r = await ok(t, 'director', t.context.director.url);
  t.regex(r.stdout, /Name:\s+/);
  t.regex(r.stdout, /not logged in; ingot director login/);
  await refused(t, /not logged in to the director .*; run ingot director login$/, 'tasks');
  await refused(t, /login to the director .* as admin failed: Bad credentials/, 'director', 'login', '-u', 'admin', '-p', 'wrong');
  await refused(t, /give -u USER and -p PASSWORD/, 'director', 'login', '-u', 'admin');
});

test.serial('director login keeps its token beside the controller target, apart from it', async (t) => {
  const { admin } = t.context.fixture;
  writeFileSync(join(HOME, 'config.json'), JSON.stringify({ ...config(), api: { url: 'http://api.example.test' } }));
  const r = await ok(t, 'director', 'login', '-u', admin.user, '-p', admin.password);
  t.regex(r.stdout, /Logged in to the director .* as admin\./);
  const c = config();
  t.is(c.api.url, 'http://api.example.test');
  t.is(c.director.url, t.context.director.url);
  t.truthy(c.director.access_token);
  const info = JSON.parse((await ok(t, 'director', '--json')).stdout);
  t.is(info.user, 'admin');
  t.is(info.url, t.context.director.url);
  // Targeting the same director again keeps the session.
  await ok(t, 'director', t.context.director.url);
  t.truthy(config().director.access_token);
});

test.serial('upload-stemcell streams the tarball; stemcells lists it; a second upload is a no-op', async (t) => {
  const file = join(scratchDir('stemcell'), 'stemcell.tgz');
  writeFileSync(file, await tarball({ 'stemcell.MF': 'name: ingot-local\nversion: "1.2"\noperating_system: debian-12\n', image: 'an image' }));
  const up = await ok(t, 'upload-stemcell', file);
  t.regex(up.stdout, /Uploaded stemcell ingot-local\/1\.2 \(debian-12\)/);
  const again = await ok(t, 'upload-stemcell', file);
  t.regex(again.stdout, /already uploaded; nothing to do/);
  const list = await ok(t, 'stemcells');
  t.regex(list.stdout, /^Name\s+Version\s+OS/m);
  t.regex(list.stdout, /^ingot-local\s+1\.2\s+debian-12/m);
  const json = JSON.parse((await ok(t, 'stemcells', '--json')).stdout);
  t.is(json[0].name, 'ingot-local');
  await refused(t, /cannot read .*missing\.tgz \(ENOENT\)/, 'upload-stemcell', join(HOME, 'missing.tgz'));
  const bad = join(scratchDir('stemcell'), 'bad.tgz');
  writeFileSync(bad, 'not a tarball');
  await refused(t, /The stemcell (is not a gzipped tarball|tarball holds no stemcell\.MF)/, 'upload-stemcell', bad);
});

test.serial('upload-release of a small valid tarball; releases lists it', async (t) => {
  const file = join(scratchDir('release'), 'release.tgz');
  writeFileSync(
    file,
    await tarball({
      'release.MF': 'name: ingot\nversion: "0.1.0+dev.1"\njobs:\n  - {name: router, version: abc, fingerprint: abc}\npackages:\n  - {name: ingot, version: def, fingerprint: def, dependencies: []}\n',
      'jobs/router.tgz': 'job',
      'packages/ingot.tgz': 'package',
    }),
  );
  const up = await ok(t, 'upload-release', file);
  t.regex(up.stdout, /Uploaded release ingot\/0\.1\.0\+dev\.1 \(1 job, 1 package\)/);
  const list = await ok(t, 'releases');
  t.regex(list.stdout, /^ingot\s+0\.1\.0\+dev\.1\s+1\s+1/m);
  const noMf = join(scratchDir('release'), 'nomf.tgz');
  writeFileSync(noMf, await tarball({ 'x.txt': 'x' }));
  await refused(t, /The release is invalid: .*no release\.MF/, 'upload-release', noMf);
});

test.serial('update-cloud-config shows the diff and, with -n, goes ahead; cloud-config prints it', async (t) => {
  const dir = scratchDir('cloud-config');
  const v1 = join(dir, 'v1.yml');
  const v2 = join(dir, 'v2.yml');
  const base = (vm: string) =>
    `azs: [{name: z1}]\nvm_types: [{name: ${vm}}]\nnetworks: [{name: default, subnets: [{range: 10.244.0.0/24, gateway: 10.244.0.1, az: z1}]}]\ncompilation: {workers: 1, network: default, vm_type: ${vm}, az: z1}\n`;
  writeFileSync(v1, base('small'));
  writeFileSync(v2, base('large'));
  await refused(t, /no cloud-config has been uploaded; run ingot update-cloud-config PATH/, 'cloud-config');
  // No terminal and no -n: it refuses to go ahead.
  await refused(t, /give -n to go ahead without asking/, 'update-cloud-config', v1);
  const first = await ok(t, 'update-cloud-config', v1, '-n');
  t.regex(first.stdout, /^\+ vm_types: \[\{name: small\}\]$/m);
  t.regex(first.stdout, /Updated the cloud-config \(version \d+\)/);
  const second = await ok(t, 'update-cloud-config', v2, '-n');
  t.regex(second.stdout, /^- vm_types: \[\{name: small\}\]$/m);
  t.regex(second.stdout, /^\+ vm_types: \[\{name: large\}\]$/m);
  t.regex(second.stdout, /^ {2}azs: \[\{name: z1\}\]$/m);
  const same = await ok(t, 'update-cloud-config', v2, '-n');
  t.regex(same.stdout, /unchanged; nothing to do/);
  t.is((await ok(t, 'cloud-config')).stdout, base('large'));
  const invalid = join(dir, 'bad.yml');
  writeFileSync(invalid, 'azs: [{name: z1}]\nvm_types: 3\n');
  await refused(t, /Updating the cloud-config: The cloud-config is invalid: .*cloud-config\.yml:2 vm_types: expected an array/, 'update-cloud-config', invalid, '-n');
});

test.serial('task N follows a running task live, one line per step, to its end', async (t) => {
  const api = t.context.director.client();
  const queued = await api.request('POST', '/test/sleep', { deployment: 'live', steps: 3, step_ms: 2000 });
  t.is(queued.status, 202, queued.text);
  const id = queued.body.id as number;
  // Read the CLI's output as it comes: the first step's line arrives before the task ends (the
  // steps are long enough for a CLI that starts slowly on a busy machine).
  const proc = spawn(process.execPath, [INGOT_BIN, 'task', String(id)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stateAtFirstLine: string | undefined;
  proc.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
    if (stateAtFirstLine === undefined && /Sleeping step 1 \(/.test(stdout)) {
      stateAtFirstLine = 'pending';
      void api.request('GET', `/tasks/${id}`).then((r) => (stateAtFirstLine = r.body.state));
    }
  });
  let stderr = '';
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((r) => proc.on('exit', r));
  t.is(code, 0, `stdout: ${stdout}\nstderr: ${stderr}`);
  t.is(stateAtFirstLine, 'processing');
  const steps = stdout.split('\n').filter((l) => / \| Sleeping /.test(l));
  t.is(steps.length, 3, stdout);
  for (const [n, line] of steps.entries()) t.regex(line, new RegExp(`^Task ${id} \\| \\d\\d:\\d\\d:\\d\\d \\| Sleeping step ${n + 1} \\(00:00:0\\d\\)$`));
  t.regex(stdout, new RegExp(`^Task ${id} Duration 00:00:0\\d$`, 'm'));
  t.regex(stdout, new RegExp(`^Task ${id} done$`, 'm'));
  // Afterwards: the same task shows at once; --result, --event, --json; tasks --recent lists it.
  t.regex((await ok(t, 'task', String(id), '--result')).stdout, /^slept 3 steps$/m);
  const events = (await ok(t, 'task', String(id), '--event')).stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.is(events.length, 6);
  t.is(JSON.parse((await ok(t, 'task', String(id), '--json')).stdout).task.state, 'done');
  t.regex((await ok(t, 'task', String(id), '--debug')).stdout, /step 3 of 3/);
  t.regex((await ok(t, 'tasks', '--recent')).stdout, new RegExp(`^${id}\\s+done\\s+`, 'm'));
  t.regex((await ok(t, 'tasks', '--recent', '5', '-d', 'live', '--json')).stdout, new RegExp(`"id": ${id}`));
  t.regex((await ok(t, 'tasks')).stdout, /No running tasks/);
  await refused(t, /give one of --event, --debug and --result/, 'task', String(id), '--event', '--debug');
  await refused(t, /Task 99999 not found/, 'task', '99999');
});

test.serial('cancel-task stops a running task; following it exits 1 saying so', async (t) => {
  const api = t.context.director.client();
  const queued = await api.request('POST', '/test/sleep', { deployment: 'cancel-me', steps: 100, step_ms: 200 });
  const id = queued.body.id as number;
  await api.waitForTask(id, ['processing']);
  const r = await ok(t, 'cancel-task', String(id));
  t.regex(r.stdout, new RegExp(`Task ${id} (cancelled|is cancelling)`));
  await api.waitForTask(id, ['cancelled']);
  const follow = await refused(t, new RegExp(`task ${id} was cancelled`), 'task', String(id));
  t.regex(follow.stdout, new RegExp(`^Task ${id} cancelled$`, 'm'));
  await refused(t, new RegExp(`Cancelling task ${id}: Task ${id} has already ended \\(cancelled\\)`), 'cancel-task', String(id));
  await refused(t, /task id "x": expected a task number/, 'cancel-task', 'x');
});

test.serial('deployments and delete-deployment -d NAME -n, which follows its task', async (t) => {
  const api = t.context.director.client();
  t.is((await api.request('POST', '/test/deployments/doomed')).status, 201);
  t.regex((await ok(t, 'deployments')).stdout, /^doomed\s+-\s+debian-12\/1\s+none$/m);
  await refused(t, /name the deployment: ingot delete-deployment -d DEPLOYMENT/, 'delete-deployment', '-n');
  await refused(t, /give -n to go ahead without asking/, 'delete-deployment', '-d', 'doomed');
  const r = await ok(t, 'delete-deployment', '-d', 'doomed', '-n');
  t.regex(r.stdout, /\| Deleting deployment doomed \(00:00:00\)$/m);
  t.regex(r.stdout, /^Task \d+ done$/m);
  t.regex((await ok(t, 'deployments')).stdout, /No deployments/);
  await refused(t, /Deployment doomed not found/, 'delete-deployment', '-d', 'doomed', '-n');
});

test.serial('task N of a task that errored (its director died under it) exits 1 with the reason', async (t) => {
  const fixture = await directorConfig();
  t.context.extraFixtures.push(fixture);
  const first = await DirectorProcess.start(fixture);
  t.context.extra.push(first);
  const queued = await first.client().request('POST', '/test/sleep', { deployment: 'dies', steps: 100, step_ms: 100 });
  const id = queued.body.id as number;
  await first.client().waitForTask(id, ['processing']);
  await first.kill('SIGKILL');
  const second = await DirectorProcess.start(fixture);
  t.context.extra.push(second);
  await ok(t, 'director', second.url);
  await ok(t, 'director', 'login', '-u', fixture.admin.user, '-p', fixture.admin.password);
  const r = await refused(t, new RegExp(`task ${id} failed: director restarted while the task ran`), 'task', String(id));
  t.regex(r.stdout, new RegExp(`^Task ${id} \\| \\d\\d:\\d\\d:\\d\\d \\| Error: director restarted while the task ran$`, 'm'));
  t.regex(r.stdout, new RegExp(`^Task ${id} error$`, 'm'));
});

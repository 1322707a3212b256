// `createRelease` on this checkout, for real: the ingot package compiled and packed with its
// production node_modules, nats-server from Debian's package, the jobs from kernel/jobs. Two
// builds give the same fingerprints (the second from the cache), the reader accepts the
// tarball, the unpacked ingot package runs `ingot version` on plain node (no tsx in it), and
// the nats job's rendered config for a three-node cluster passes nats-server's own check.
import anyTest, { type TestFn } from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as tar from 'tar';
import { Supervisor } from '../../orchestrator/agent/supervisor.ts';
import { JobSpecFile } from '../../orchestrator/agent/protocol.ts';
import { createRelease, packRenderedJob, readRelease, renderJob, type CreatedRelease, type ReleaseArchive } from '../../orchestrator/release/mod.ts';
import { freePort } from '../helpers/ports.ts';
import { scratchDir } from '../helpers/tmp.ts';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

interface Ctx {
  dir: string;
  first: CreatedRelease;
  second: CreatedRelease;
  firstMs: number;
  secondMs: number;
  archive: ReleaseArchive;
  /** The same tree released as an explicit version. */
  stamped: CreatedRelease;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  t.timeout(240_000);
  t.context.dir = scratchDir('release-create');
  const outDir = join(t.context.dir, 'out');
  let start = Date.now();
  t.context.first = await createRelease({ repoRoot, outDir });
  t.context.firstMs = Date.now() - start;
  start = Date.now();
  t.context.second = await createRelease({ repoRoot, outDir });
  t.context.secondMs = Date.now() - start;
  t.context.archive = await readRelease(t.context.second.tarball);
  t.context.stamped = await createRelease({ repoRoot, outDir, version: '9.9.9-stamped.1' });
});

/** Module-wide: ava gives after hooks the before hook's context, never what a test added to its own. */
const supervisors: Supervisor[] = [];

test.after.always(async (t) => {
  await Promise.all(supervisors.map((s) => s.stop()));
  if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

test('an unchanged tree gives the same fingerprints, sha1s and version; the rebuild comes from the cache', (t) => {
  const { first, second } = t.context;
  t.log(`first build ${t.context.firstMs} ms, rebuild ${t.context.secondMs} ms`);
  const strip = (r: CreatedRelease) => [...r.jobs, ...r.packages].map(({ name, fingerprint, sha1 }) => ({ name, fingerprint, sha1 }));
  t.deepEqual(strip(second), strip(first));
  t.is(second.version, first.version);
  t.true([...second.jobs, ...second.packages].every((i) => i.cached));
  t.true(t.context.secondMs < 10_000, `the rebuild took ${t.context.secondMs} ms`);
  t.deepEqual(first.jobs.map((j) => j.name), ['blobstore', 'ccdb', 'cloud-controller', 'dea', 'health-manager', 'mysql-node', 'nats', 'postgresql-node', 'rabbitmq-node', 'redis-node', 'router', 'service-gateway', 'smoke-tests']);
  t.deepEqual(first.packages.map((p) => p.name), ['ingot', 'nats-server']);
});

test('the reader accepts the built tarball and finds what release.MF lists', (t) => {
  const { archive, second } = t.context;
  t.is(archive.manifest.name, 'ingot');
  t.is(archive.manifest.version, second.version);
  t.deepEqual(archive.jobs.map((j) => [j.name, j.fingerprint]), second.jobs.map((j) => [j.name, j.fingerprint]));
  t.deepEqual(archive.jobs.find((j) => j.name === 'router')!.spec.packages, ['ingot']);
});

async function unpack(tgz: Uint8Array, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await new Promise<void>((resolve, reject) => {
    const x = tar.x({ cwd: dir });
    x.on('finish', () => resolve()).on('error', reject);
    x.end(Buffer.from(tgz));
  });
}

test('the ingot package runs `ingot version` and `ingot component --help` with plain node', async (t) => {
  const pkg = join(t.context.dir, 'packages', 'ingot');
  await unpack(t.context.archive.packages.find((p) => p.name === 'ingot')!.tarball, pkg);
  t.false(existsSync(join(pkg, 'node_modules', 'tsx')), 'development dependencies stay out of the package');
  t.true(existsSync(join(pkg, 'cli', 'main.js')));
  // No loader, no inherited NODE_OPTIONS: only what the package holds.
  const env = { PATH: `${join(process.execPath, '..')}:/usr/bin:/bin` };
  const direct = await run(process.execPath, [join(pkg, 'bin', 'ingot.js'), 'version', '--json'], { env, cwd: t.context.dir });
  t.is(JSON.parse(direct.stdout).node, process.version);
  const wrapper = await run(join(pkg, 'bin', 'ingot'), ['version'], { env, cwd: '/' });
  t.regex(wrapper.stdout, /^ingot \d+\.\d+\.\d+ \(node v20/);
  const help = await run(join(pkg, 'bin', 'ingot'), ['component', '--help'], { env });
  t.regex(help.stdout, /router/);
});

test('an explicit release version is stamped into the ingot package, which is then a new package that reports it', async (t) => {
  const { first, stamped } = t.context;
  const fingerprint = (r: CreatedRelease, name: string) => r.packages.find((p) => p.name === name)!.fingerprint;
  t.not(fingerprint(stamped, 'ingot'), fingerprint(first, 'ingot'), 'a deploy of the new release updates every job using the package');
  t.is(fingerprint(stamped, 'nats-server'), fingerprint(first, 'nats-server'));
  const pkg = join(t.context.dir, 'packages', 'ingot-stamped');
  await unpack((await readRelease(stamped.tarball)).packages.find((p) => p.name === 'ingot')!.tarball, pkg);
  const version = await run(process.execPath, [join(pkg, 'bin', 'ingot.js'), 'version', '--json'], { env: { PATH: '/usr/bin:/bin' }, cwd: t.context.dir });
  t.is(JSON.parse(version.stdout).version, '9.9.9-stamped.1');
  t.is(JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).type, 'module', 'the rest of package.json stays');
});

test('the nats job renders a three-node cluster config that nats-server accepts', async (t) => {
  const natsPkg = join(t.context.dir, 'packages', 'nats-server');
  await unpack(t.context.archive.packages.find((p) => p.name === 'nats-server')!.tarball, natsPkg);
  const job = t.context.archive.jobs.find((j) => j.name === 'nats')!;
  const link = {
    instances: ['10.244.0.2', '10.244.0.3', '10.244.0.4'].map((address, index) => ({ name: 'nats', index, address, az: 'z1' })),
    properties: { nats: { port: 4222, cluster_port: 6222, user: 'kernel', password: 'p@ss/word' } },
  };
  const root = t.context.dir;
  const files = renderJob(job.spec, job.templates, { nats: { password: 'p@ss/word' } }, { nats: link }, { root, index: 0, address: '10.244.0.2' });
  const confDir = join(root, 'jobs', 'nats', 'config');
  mkdirSync(confDir, { recursive: true });
  writeFileSync(join(confDir, 'nats.conf'), files.files['config/nats.conf']!);
  const proc = JSON.parse(files.files['spec.json']!).processes[0] as { executable: string; args: string[] };
  t.is(proc.executable, join(natsPkg, 'bin', 'nats-server'));
  const checked = await run(proc.executable, [...proc.args, '-t']);
  t.regex(`${checked.stdout}${checked.stderr}`, /configuration file .* is valid/);
});

test('installed as the agent installs them, nats and a router from the release run under the supervisor', async (t) => {
  t.timeout(60_000);
  const root = join(t.context.dir, 'vm');
  const { archive } = t.context;
  for (const p of archive.packages) await unpack(p.tarball, join(root, 'packages', p.name));
  const [natsPort, clusterPort, httpPort, routerPort, statusPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const natsLink = {
    instances: [{ name: 'nats', index: 0, address: '127.0.0.1', az: 'z1' }],
    properties: { nats: { port: natsPort, cluster_port: clusterPort, user: 'kernel', password: 'kernel-secret' } },
  };
  const ctx = { root, index: 0, address: '127.0.0.1' };
  const jobs = [
    renderJob(archive.jobs.find((j) => j.name === 'nats')!.spec, archive.jobs.find((j) => j.name === 'nats')!.templates, { nats: { host: '127.0.0.1', port: natsPort, cluster_port: clusterPort, http_port: httpPort, password: 'kernel-secret' } }, { nats: natsLink }, ctx),
    renderJob(archive.jobs.find((j) => j.name === 'router')!.spec, archive.jobs.find((j) => j.name === 'router')!.templates, { router: { host: '127.0.0.1', port: routerPort, workers: 1, drain_wait_s: 0.1, status: { port: statusPort } } }, { nats: natsLink }, ctx),
  ];
  const processes = [];
  for (const job of jobs) {
    const dir = join(root, 'jobs', job.name);
    await unpack(packRenderedJob(job), dir);
    const spec = JobSpecFile.parse(JSON.parse(readFileSync(join(dir, 'spec.json'), 'utf8')));
    for (const def of spec.processes) processes.push({ job: job.name, def, cwd: dir, env: { INGOT_ROOT: root } });
  }
  const events: unknown[] = [];
  const supervisor = new Supervisor(join(root, 'sys', 'log'), { baseMs: 200, maxMs: 1000, failingCrashes: 5, windowMs: 60_000 }, 5000, (e) => events.push(e));
  supervisors.push(supervisor);
  await supervisor.load(processes);
  supervisor.start();
  const deadline = Date.now() + 30_000;
  let healthy = false;
  while (!healthy && Date.now() < deadline) {
    healthy = await fetch(`http://127.0.0.1:${statusPort}/healthz`).then((r) => r.ok, () => false);
    if (!healthy) await new Promise((r) => setTimeout(r, 200));
  }
  const logs = () => ['nats/nats-server.stderr.log', 'router/router.stdout.log', 'router/router.stderr.log'].map((f) => { try { return `${f}:\n${readFileSync(join(root, 'sys', 'log', f), 'utf8').slice(-2000)}`; } catch { return `${f}: none`; } }).join('\n');
  t.true(healthy, `the router never became healthy; events ${JSON.stringify(events)}\n${logs()}`);
  const res = await fetch(`http://127.0.0.1:${routerPort}/`, { headers: { host: 'nothing.example.com' } });
  t.is(res.status, 404);
  t.deepEqual(events, []);
  // Each process is running once its readiness check (its /healthz) has passed, a probe round after it serves.
  const ready = Date.now() + 10_000;
  while (!supervisor.status().every((p) => p.state === 'running') && Date.now() < ready) await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(supervisor.status().map((p) => `${p.job}/${p.name} ${p.state}`), ['nats/nats-server running', 'router/router running']);
  await supervisor.stop();
});

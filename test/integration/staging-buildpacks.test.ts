// Stages every example app with the built-in buildpacks, as a DEA would: the package is served
// by a loopback blobstore, npm installs from a loopback registry, the droplet is uploaded back,
// unpacked, and its start command — run with bash after the .profile.d scripts — serves HTTP.
import test from 'ava';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { extract } from 'tar';
import { parse } from 'yaml';
import { Stager, type LogStream, type StagingResult } from '../../kernel/dea/staging/mod.ts';
import { startBlobServer, type BlobServer } from '../helpers/blob-server.ts';
import { eventually } from '../helpers/component-process.ts';
import { startNpmRegistry, type NpmRegistry } from '../helpers/npm-registry.ts';
import { freePort } from '../helpers/ports.ts';
import { scratchDir } from '../helpers/tmp.ts';
import { zipDirectory } from '../helpers/zip.ts';

const run = promisify(execFile);
const EXAMPLES = fileURLToPath(new URL('../../examples', import.meta.url));
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const root = scratchDir('staging-bp');
let registry: NpmRegistry;
let blobs: BlobServer;
const started: ChildProcess[] = [];

test.before(async () => {
  [registry, blobs] = await Promise.all([startNpmRegistry(), startBlobServer()]);
});

test.after.always(async () => {
  for (const p of started) killGroup(p);
  await Promise.all([registry?.close(), blobs?.close()]);
  await rm(root, { recursive: true, force: true });
});

// The binary and java examples are built here with the machine's toolchain; without one, those tests skip.
const has = (cmd: string): boolean => spawnSync('bash', ['-c', `command -v ${cmd}`]).status === 0;
const haveCc = has('cc');
const haveJdk = has('javac') && has('jar');

interface Staged {
  result: StagingResult;
  logs: Array<{ line: string; stream: LogStream }>;
  /** The droplet, unpacked: app/, staging_info.yml, … */
  dropletDir: string;
  info: Record<string, string>;
}

/** Stages the app in `appDir` and unpacks the uploaded droplet. */
async function stage(label: string, appDir: string, job: { memory_mb?: number; command?: string; buildpack?: string } = {}): Promise<Staged> {
  blobs.put(`/packages/${label}.zip`, await zipDirectory(appDir));
  const stager = new Stager({ workDir: join(root, 'work', label), npmRegistry: registry.url, timeoutMs: 90_000 });
  const logs: Staged['logs'] = [];
  const result = await stager.stage(
    {
      app_id: `app-${label}`,
      build_id: `build-${label}`,
      package_uri: blobs.url(`/packages/${label}.zip`),
      droplet_upload_uri: blobs.url(`/droplets/${label}`),
      env: { GREETING: 'hi' },
      limits: { memory_mb: job.memory_mb ?? 256, disk_mb: 1024 },
      ...(job.command ? { command: job.command } : {}),
      ...(job.buildpack ? { buildpack: job.buildpack } : {}),
    },
    { onLog: (line, stream) => void logs.push({ line, stream }) },
  );
  const upload = blobs.uploads.get(`/droplets/${label}`);
  if (!upload) throw new Error('no droplet was uploaded');
  if (createHash('sha256').update(upload.body).digest('hex') !== result.droplet_sha256) throw new Error('the uploaded droplet does not match droplet_sha256');
  const dropletDir = join(root, 'droplets', label);
  await mkdir(dropletDir, { recursive: true });
  await writeFile(join(root, 'droplets', `${label}.tgz`), upload.body);
  await extract({ file: join(root, 'droplets', `${label}.tgz`), cwd: dropletDir });
  const info = parse(await readFile(join(dropletDir, 'staging_info.yml'), 'utf8')) as Record<string, string>;
  return { result, logs, dropletDir, info };
}

/** Starts the droplet's start command the way a DEA does, and returns its base URL once it answers. */
async function startDroplet(staged: Staged, memory = '256m'): Promise<{ url: string; output: string[] }> {
  const port = await freePort();
  const appDir = join(staged.dropletDir, 'app');
  const output: string[] = [];
  const script = `for f in .profile.d/*.sh; do [ -f "$f" ] && source "$f"; done\n${staged.result.start_command}`;
  const proc = spawn('bash', ['-c', script], {
    cwd: appDir,
    env: {
      PATH: SYSTEM_PATH,
      HOME: appDir,
      PORT: String(port),
      MEMORY_LIMIT: memory,
      VCAP_APPLICATION: JSON.stringify({ name: 'hello', application_name: 'hello', uris: [], limits: { mem: parseInt(memory, 10) } }),
    },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(proc);
  proc.stdout!.on('data', (c: Buffer) => output.push(c.toString()));
  proc.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      if (proc.exitCode !== null) throw new Error(`the app exited (${proc.exitCode}): ${output.join('')}`);
      return (await fetch(url)).status > 0;
    },
    20_000,
    `the app to answer on ${url}`,
  );
  return { url, output };
}

function killGroup(p: ChildProcess): void {
  try {
    if (p.pid) process.kill(-p.pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

function logText(s: Staged): string {
  return s.logs.map((l) => l.line).join('\n');
}

test('node: npm installs cfenv from the loopback registry, and the app reads its env through it', async (t) => {
  const staged = await stage('node', join(EXAMPLES, 'node-hello'), { memory_mb: 64 });
  t.is(staged.result.detected_buildpack, 'nodejs');
  t.is(staged.result.start_command, 'node server.js');
  t.deepEqual(staged.info, { detected_buildpack: 'nodejs', start_command: 'node server.js', buildpack: 'nodejs' });
  t.true(registry.tarballsServed.includes('cfenv@1.2.6'), 'npm fetched cfenv from the loopback registry');
  t.true(registry.tarballsServed.includes('js-yaml@4.1.1'), 'and its dependencies, at the versions it asks for');
  t.true(existsSync(join(staged.dropletDir, 'app/node_modules/cfenv/package.json')));
  const text = logText(staged);
  t.is(staged.logs[0]!.line, '-----> Downloading app package');
  t.is(staged.logs.at(-1)!.line, '-----> Uploaded droplet');
  t.regex(text, /with npm install from http:\/\/127\.0\.0\.1/);
  t.regex(text, /added \d+ packages/);

  const app = await startDroplet(staged, '64m');
  const env = (await (await fetch(`${app.url}/env`)).json()) as Record<string, unknown>;
  t.is(env.name, 'hello', 'cfenv read VCAP_APPLICATION');
  t.is(env.port, Number(new URL(app.url).port));
  t.is(env.nodeOptions, '--max-old-space-size=48', '75 % of a 64 MB instance');
  t.regex(await (await fetch(app.url)).text(), /Hello from hello on node v20/);
});

test('node: an app with a lock file is installed with npm ci', async (t) => {
  const dir = join(root, 'src', 'node-ci');
  await cp(join(EXAMPLES, 'node-hello'), dir, { recursive: true });
  await run('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund'], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: dir, npm_config_registry: registry.url, npm_config_cache: join(root, 'npm-cache-lock') },
  });
  t.true(existsSync(join(dir, 'package-lock.json')));
  const staged = await stage('node-ci', dir);
  t.regex(logText(staged), /npm ci \(from package-lock\.json\)/);
  t.true(existsSync(join(staged.dropletDir, 'app/node_modules/cfenv/lib/cfenv.js')));
  t.true(existsSync(join(staged.dropletDir, 'app/node_modules/js-yaml/package.json')));
});

test('python: vendored packages on PYTHONPATH, python3 app.py by default', async (t) => {
  const staged = await stage('python', join(EXAMPLES, 'python-hello'));
  t.is(staged.result.detected_buildpack, 'python');
  t.is(staged.result.start_command, 'python3 app.py');
  t.regex(logText(staged), /Using the vendored packages in vendor\/ for: greeting/);
  const app = await startDroplet(staged);
  t.regex(await (await fetch(app.url)).text(), /^Hello from python-hello on python 3\./);
});

test('staticfile: the built-in file server serves the site and hides dotfiles', async (t) => {
  const staged = await stage('static', join(EXAMPLES, 'static-site'));
  t.is(staged.result.detected_buildpack, 'staticfile');
  t.is(staged.result.start_command, 'node .ingot/staticfile/server.cjs');
  const app = await startDroplet(staged);
  const index = await fetch(`${app.url}/`);
  t.is(index.status, 200);
  t.regex(await index.text(), /Hello from a static site on Ingot/);
  const css = await fetch(`${app.url}/css/site.css`);
  t.is(css.headers.get('content-type'), 'text/css; charset=utf-8');
  t.is((await fetch(`${app.url}/.profile.d/staticfile.sh`)).status, 404);
  t.is((await fetch(`${app.url}/%2e%2e/staging_info.yml`)).status, 404);
  t.is((await fetch(`${app.url}/missing.html`)).status, 404);
});

(haveCc ? test : test.skip)('binary: a prebuilt executable runs from the Procfile', async (t) => {
  const dir = join(root, 'src', 'binary');
  await cp(join(EXAMPLES, 'binary-hello'), dir, { recursive: true });
  await run('cc', ['-O2', '-o', join(dir, 'hello-server'), join(dir, 'hello.c')]);
  const staged = await stage('binary', dir);
  t.is(staged.result.detected_buildpack, 'binary');
  t.is(staged.result.start_command, './hello-server');
  const app = await startDroplet(staged);
  t.is(await (await fetch(app.url)).text(), 'Hello from binary-hello\n');
});

(haveJdk ? test : test.skip)('java: a runnable jar runs with a heap of 70 % of the memory limit', async (t) => {
  const src = join(root, 'src', 'java');
  const app = join(root, 'src', 'java-app');
  await mkdir(app, { recursive: true });
  await run('javac', ['-d', join(src, 'build'), join(EXAMPLES, 'java-hello/src/hello/Hello.java')]);
  await run('jar', ['--create', '--file', join(app, 'hello.jar'), '--main-class', 'hello.Hello', '-C', join(src, 'build'), '.']);
  const staged = await stage('java', app, { memory_mb: 256 });
  t.is(staged.result.detected_buildpack, 'java');
  t.is(staged.result.start_command, 'java -Xmx179m -jar hello.jar');
  const running = await startDroplet(staged);
  t.regex(await (await fetch(running.url)).text(), /^Hello from java-hello on java 17.*max heap 1[5-8]\d MB/);
});

test('the start command: the user\'s own wins over the Procfile and the buildpack', async (t) => {
  const dir = join(root, 'src', 'python-procfile');
  await cp(join(EXAMPLES, 'python-hello'), dir, { recursive: true });
  await writeFile(join(dir, 'Procfile'), 'web: python3 -u app.py\n');
  const fromProcfile = await stage('python-procfile', dir);
  t.is(fromProcfile.result.start_command, 'python3 -u app.py');
  const fromUser = await stage('python-user', dir, { command: 'python3 -B app.py' });
  t.is(fromUser.result.start_command, 'python3 -B app.py');
  t.is(fromUser.info.start_command, 'python3 -B app.py');
});

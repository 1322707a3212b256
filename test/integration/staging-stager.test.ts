// The stager end to end with third-party buildpacks (a directory, a git URL) and every way
// staging fails: a malicious package, a failing compile or release, a bad download or upload,
// the deadline, cancellation. Each failure must name its step, and nothing may be written
// outside the app directory.
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { extract } from 'tar';
import { ProcessSandbox, Stager, StagingError, type LogStream, type StagerOptions } from '../../kernel/dea/staging/mod.ts';
import { startBlobServer, type BlobServer } from '../helpers/blob-server.ts';
import { eventually } from '../helpers/component-process.ts';
import { scratchDir } from '../helpers/tmp.ts';
import { maliciousZips, zipBuffer, type ZipEntrySpec } from '../helpers/zip.ts';

const run = promisify(execFile);
const root = scratchDir('staging-stager');
let blobs: BlobServer;

test.before(async () => {
  blobs = await startBlobServer();
  // Searchable by the unprivileged uid of the sandbox test.
  await chmod(root, 0o755);
});
test.after.always(async () => {
  await blobs?.close();
  await rm(root, { recursive: true, force: true });
});

const plainApp: ZipEntrySpec[] = [
  { name: 'README.txt', content: 'an app only a custom buildpack knows\n' },
  { name: 'bin/run', content: '#!/bin/sh\necho running\n', mode: 0o755 },
];

interface Attempt {
  logs: Array<{ line: string; stream: LogStream }>;
  workDir: string;
  uploaded: () => Buffer | undefined;
}

/** Serves `entries` as a package and stages it; `outcome` resolves with the result or the StagingError. */
async function attempt(
  label: string,
  entries: ZipEntrySpec[] | Buffer,
  job: Record<string, unknown> = {},
  options: Partial<StagerOptions> = {},
  stageOpts: { signal?: AbortSignal; onLine?: (line: string) => void } = {},
) {
  blobs.put(`/packages/${label}.zip`, Buffer.isBuffer(entries) ? entries : await zipBuffer(entries));
  const workDir = join(root, 'work', label);
  const stager = new Stager({ workDir, allowLocalBuildpacks: true, timeoutMs: 60_000, ...options });
  const a: Attempt = { logs: [], workDir, uploaded: () => blobs.uploads.get(`/droplets/${label}`)?.body };
  const outcome = stager
    .stage(
      {
        app_id: `app-${label}`,
        build_id: `build-${label}`,
        package_uri: blobs.url(`/packages/${label}.zip`),
        droplet_upload_uri: blobs.url(`/droplets/${label}`),
        env: { FOO: 'from the app' },
        limits: { memory_mb: 128, disk_mb: 512 },
        ...job,
      },
      {
        onLog: (line, stream) => {
          a.logs.push({ line, stream });
          stageOpts.onLine?.(line);
        },
        ...(stageOpts.signal ? { signal: stageOpts.signal } : {}),
      },
    )
    .then(
      (result) => ({ ok: true as const, result }),
      (error: unknown) => ({ ok: false as const, error: error as StagingError }),
    );
  return { ...a, outcome };
}

async function failure(t: { fail(m: string): void }, p: Promise<{ ok: boolean; error?: StagingError }>): Promise<StagingError> {
  const o = await p;
  if (o.ok || !(o.error instanceof StagingError)) {
    t.fail(`expected a StagingError, got ${o.ok ? 'success' : String(o.error)}`);
    throw new Error('unreachable');
  }
  return o.error;
}

/** A buildpack directory from bash script bodies (each gets a shebang and `set -e`). */
async function buildpack(label: string, scripts: Partial<Record<'detect' | 'compile' | 'supply' | 'finalize' | 'release', string>>): Promise<string> {
  const dir = join(root, 'buildpacks', label);
  await mkdir(join(dir, 'bin'), { recursive: true });
  for (const [name, body] of Object.entries(scripts)) {
    await writeFile(join(dir, 'bin', name), `#!/usr/bin/env bash\nset -e\n${body}\n`, { mode: 0o755 });
  }
  return dir;
}

const webRelease = (cmd: string) => `printf -- '---\\ndefault_process_types:\\n  web: ${cmd}\\n'`;

async function unpackDroplet(label: string, body: Buffer): Promise<string> {
  const dir = join(root, 'droplets', label);
  await mkdir(dir, { recursive: true });
  await writeFile(`${dir}.tgz`, body);
  await extract({ file: `${dir}.tgz`, cwd: dir });
  return dir;
}

// ---- third-party buildpacks -------------------------------------------------------------

test('a git buildpack (file:// URL with a tag) runs supply and finalize; deps and profile land in the droplet', async (t) => {
  const src = join(root, 'git-src');
  await mkdir(join(src, 'bin'), { recursive: true });
  const script = (body: string) => `#!/usr/bin/env bash\nset -e\n${body}\n`;
  const files: Record<string, string> = {
    'bin/detect': script('exit 1'),
    // supply: BUILD CACHE DEPS INDEX — installs a tool into deps/<index>, records its environment.
    'bin/supply': script(
      [
        'mkdir -p "$3/$4/bin"',
        'printf "#!/bin/sh\\necho tool says \\$GREETING\\n" > "$3/$4/bin/tool"',
        'chmod +x "$3/$4/bin/tool"',
        'env | sort > "$1/staging-env.txt"',
        'echo "args: $#" >> "$1/staging-env.txt"',
        'echo supplied the tool',
      ].join('\n'),
    ),
    // finalize: BUILD CACHE DEPS INDEX PROFILE — puts the tool on PATH through DEPS_DIR at run time.
    'bin/finalize': script(['echo \'export PATH="$DEPS_DIR/0/bin:$PATH"; export GREETING=hello\' > "$5/custom.sh"', 'echo "finalize args: $#"'].join('\n')),
    'bin/release': script(webRelease('tool')),
  };
  for (const [name, content] of Object.entries(files)) await writeFile(join(src, name), content, { mode: 0o755 });
  const git = (...args: string[]) => run('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: src });
  await git('init', '-q');
  await git('add', '.');
  await git('commit', '-qm', 'a buildpack');
  await git('tag', 'v1');
  // A later commit on the default branch that the tag must keep out.
  await writeFile(join(src, 'bin/release'), script(webRelease('not-the-tagged-release')), { mode: 0o755 });
  await git('commit', '-qam', 'after the tag');
  const bare = join(root, 'bp.git');
  await run('git', ['clone', '-q', '--bare', src, bare]);
  const url = `file://${bare}#v1`;

  const a = await attempt('git', plainApp, { buildpack: url }, { npmRegistry: 'http://127.0.0.1:1/', proxy: 'http://10.244.0.1:3128/', stack: 'bookworm' });
  const o = await a.outcome;
  if (!o.ok) return t.fail(o.error.message);
  t.is(o.result.buildpack, url);
  t.is(o.result.detected_buildpack, url, 'a buildpack asked for is not detected');
  t.is(o.result.start_command, 'tool');
  const text = a.logs.map((l) => l.line).join('\n');
  t.regex(text, new RegExp(`-----> Cloning buildpack file://${bare}#v1`));
  t.regex(text, /supplied the tool/);
  t.regex(text, /finalize args: 5/);

  const droplet = await unpackDroplet('git', a.uploaded()!);
  t.deepEqual((await readdir(droplet)).sort(), ['app', 'deps', 'staging_info.yml']);
  t.true(existsSync(join(droplet, 'deps/0/bin/tool')));
  t.true(existsSync(join(droplet, 'app/.profile.d/000_deps_dir.sh')));
  const env = await readFile(join(droplet, 'app/staging-env.txt'), 'utf8');
  for (const line of ['FOO=from the app', 'CF_STACK=bookworm', 'MEMORY_LIMIT=128m', 'npm_config_registry=http://127.0.0.1:1/', 'https_proxy=http://10.244.0.1:3128/', 'npm_config_proxy=http://10.244.0.1:3128/', 'args: 4']) {
    t.true(env.includes(`${line}\n`), line);
  }
  t.regex(env, /^HOME=.*\/home$/m);
  t.regex(env, /^npm_config_cache=.*\/cache\/npm$/m);

  // The start command runs as a DEA runs it: profile scripts first, from the app directory.
  const appDir = join(droplet, 'app');
  const { stdout } = await run('bash', ['-c', `for f in .profile.d/*.sh; do source "$f"; done; ${o.result.start_command}`], {
    cwd: appDir,
    env: { PATH: '/usr/bin:/bin', HOME: appDir },
  });
  t.is(stdout, 'tool says hello\n');
});

test('a directory buildpack is used as asked; file:// and directory buildpacks need allowLocalBuildpacks', async (t) => {
  const dir = await buildpack('dir-ok', { detect: 'exit 1', compile: 'echo compiled into "$1"', release: webRelease('bin/run') });
  const ok = await (await attempt('dir-ok', plainApp, { buildpack: dir })).outcome;
  t.true(ok.ok);
  if (ok.ok) t.is(ok.result.start_command, 'bin/run');

  const refused = await attempt('dir-refused', plainApp, { buildpack: dir }, { allowLocalBuildpacks: false });
  const e1 = await failure(t, refused.outcome);
  t.is(e1.code, 'buildpack_unavailable');
  t.regex(e1.message, /buildpacks from a directory of the DEA .* are not allowed here/);

  const e2 = await failure(t, (await attempt('git-refused', plainApp, { buildpack: 'file:///srv/bp.git' }, { allowLocalBuildpacks: false })).outcome);
  t.is(e2.code, 'buildpack_unavailable');
  const e3 = await failure(t, (await attempt('git-missing', plainApp, { buildpack: `file://${root}/no-such.git` })).outcome);
  t.is(e3.code, 'buildpack_unavailable');
  t.regex(e3.message, /^Cloning the buildpack file:\/\/.*no-such\.git: /);
  const e4 = await failure(t, (await attempt('name-missing', plainApp, { buildpack: 'cobol' })).outcome);
  t.is(e4.code, 'buildpack_unavailable');
  t.regex(e4.message, /there is no buildpack named cobol/);
});

// ---- unsafe packages --------------------------------------------------------------------

for (const label of ['traversal', 'absolute', 'symlinkAbsolute', 'symlinkUp', 'symlinkChain', 'writeThroughLink', 'linkUnderLink', 'zipBomb'] as const) {
  test(`a malicious package (${label}) is refused with unsafe_archive naming its entry`, async (t) => {
    const { entry, entries } = maliciousZips[label]!;
    const a = await attempt(`evil-${label}`, entries, {}, { keepWorkspace: true });
    const err = await failure(t, a.outcome);
    t.is(err.code, 'unsafe_archive', err.message);
    t.is(err.step, 'unpack');
    t.is(err.entry, entry);
    t.true(a.logs.some((l) => l.stream === 'err' && l.line === `Staging failed: ${err.message}`));
    t.is(a.uploaded(), undefined, 'no droplet');
    // Nothing beside what the stager itself made in its workspace.
    const [ws] = await readdir(a.workDir);
    t.deepEqual((await readdir(join(a.workDir, ws!))).sort(), ['app', 'cache', 'deps', 'home', 'package.zip', 'tmp']);
    t.false(existsSync('/tmp/ingot-evil-absolute'));
    t.false(existsSync('/tmp/ingot-evil-through-link'));
  });
}

test('the message for a ../ entry reads as a sentence', async (t) => {
  const err = await failure(t, (await attempt('evil-sentence', maliciousZips.traversal!.entries)).outcome);
  t.is(err.message, 'Unpacking the app package: entry ../evil leads outside the app directory');
});

test('the unpack limits come from the options and the app\'s disk quota', async (t) => {
  const many = Array.from({ length: 30 }, (_, i) => ({ name: `f${i}.txt`, content: 'x' }));
  const e1 = await failure(t, (await attempt('too-many', many, {}, { archive: { maxEntries: 20 } })).outcome);
  t.is(e1.code, 'unsafe_archive');
  t.is(e1.entry, 'f20.txt');
  const big = [{ name: 'big.bin', content: Buffer.alloc(2 * 1024 * 1024, 1), compress: false }];
  const e2 = await failure(t, (await attempt('over-quota', big, { limits: { memory_mb: 64, disk_mb: 1 } })).outcome);
  t.is(e2.step, 'download', 'the package alone is larger than the disk quota');
  t.is(e2.code, 'download_failed');
});

// ---- buildpack failures -----------------------------------------------------------------

test('a failing compile names the step and the buildpack, after streaming its output', async (t) => {
  const dir = await buildpack('fails', { detect: 'echo failing-bp', compile: 'echo compiling\necho boom >&2\nexit 3', release: webRelease('x') });
  const a = await attempt('compile-fails', plainApp, { buildpack: dir });
  const err = await failure(t, a.outcome);
  t.is(err.code, 'compile_failed');
  t.is(err.step, 'compile');
  t.is(err.exitCode, 3);
  t.is(err.message, `Compiling the app with buildpack ${dir}: bin/compile exited with status 3`);
  const tail = a.logs.slice(-3);
  t.deepEqual(
    tail.slice(0, 2).sort((x, y) => x.stream.localeCompare(y.stream)),
    [
      { line: 'boom', stream: 'err' },
      { line: 'compiling', stream: 'out' },
    ],
  );
  t.deepEqual(tail[2], { line: `Staging failed: ${err.message}`, stream: 'err' });
});

test('a built-in buildpack\'s failure reaches the log: python without vendored packages', async (t) => {
  const a = await attempt('python-unvendored', [
    { name: 'app.py', content: 'import flask\n' },
    { name: 'requirements.txt', content: 'flask==3.0\n' },
  ]);
  const err = await failure(t, a.outcome);
  t.is(err.code, 'compile_failed');
  t.is(err.buildpack, 'python');
  const errLines = a.logs.filter((l) => l.stream === 'err').map((l) => l.line);
  t.true(errLines.some((l) => l.includes('pip install --target vendor -r requirements.txt')));
});

test('release failures and a missing start command are told apart', async (t) => {
  const garbage = await buildpack('bad-release', { compile: 'true', release: "echo 'default_process_types: [web]'" });
  const e1 = await failure(t, (await attempt('bad-release', plainApp, { buildpack: garbage })).outcome);
  t.is(e1.code, 'release_failed');
  t.regex(e1.message, /bin\/release default_process_types is not a mapping/);
  const exits = await buildpack('release-exits', { compile: 'true', release: 'exit 2' });
  const e2 = await failure(t, (await attempt('release-exits', plainApp, { buildpack: exits })).outcome);
  t.is(e2.code, 'release_failed');
  t.regex(e2.message, /bin\/release exited with status 2/);
  const none = await buildpack('no-default', { compile: 'true', release: "printf -- '---\\ndefault_process_types: {}\\n'" });
  const e3 = await failure(t, (await attempt('no-start', plainApp, { buildpack: none })).outcome);
  t.is(e3.code, 'no_start_command');
  const withProcfile = await (await attempt('procfile-start', [...plainApp, { name: 'Procfile', content: 'web: bin/run\n' }], { buildpack: none })).outcome;
  t.true(withProcfile.ok);
});

test('an app no buildpack recognizes', async (t) => {
  const err = await failure(t, (await attempt('undetected', plainApp)).outcome);
  t.is(err.code, 'no_buildpack_detected');
  t.is(err.message, 'Detecting the buildpack: none of nodejs, python, java, staticfile, binary recognized this app');
});

// ---- transfers --------------------------------------------------------------------------

test('download and upload failures, a checksum mismatch, and a retried 503', async (t) => {
  const dir = await buildpack('transfer', { compile: 'true', release: webRelease('bin/run') });
  const zip = await zipBuffer(plainApp);
  const sha = createHash('sha256').update(zip).digest('hex');

  const missing = new Stager({ workDir: join(root, 'work', 'missing'), allowLocalBuildpacks: true });
  const job = (pkg: string, extra: Record<string, unknown> = {}) => ({
    app_id: 'a',
    build_id: `b-${pkg}`,
    package_uri: blobs.url(pkg),
    droplet_upload_uri: blobs.url(`/droplets/t-${pkg}`),
    buildpack: dir,
    env: {},
    limits: { memory_mb: 64, disk_mb: 64 },
    ...extra,
  });
  const e1 = await t.throwsAsync(missing.stage(job('/packages/none.zip')), { instanceOf: StagingError });
  t.is(e1!.code, 'download_failed');
  t.regex(e1!.message, /^Downloading the app package from http:\/\/127\.0\.0\.1:\d+\/packages\/none\.zip: HTTP 404/);

  blobs.put('/packages/t.zip', zip);
  const e2 = await t.throwsAsync(missing.stage(job('/packages/t.zip', { package_sha256: 'a'.repeat(64) })), { instanceOf: StagingError });
  t.is(e2!.code, 'checksum_mismatch');

  blobs.put('/packages/flaky.zip', zip);
  blobs.fail('/packages/flaky.zip', 503, 1);
  const ok = await missing.stage(job('/packages/flaky.zip', { package_sha256: sha }));
  t.is(ok.start_command, 'bin/run');
  const upload = blobs.uploads.get('/droplets/t-/packages/flaky.zip');
  t.is(upload?.method, 'PUT');
  t.is(upload?.headers['content-digest'], `sha-256=:${Buffer.from(ok.droplet_sha256, 'hex').toString('base64')}:`);

  blobs.put('/packages/up.zip', zip);
  blobs.fail('/droplets/t-/packages/up.zip', 403);
  const e3 = await t.throwsAsync(missing.stage(job('/packages/up.zip')), { instanceOf: StagingError });
  t.is(e3!.code, 'upload_failed');
  t.regex(e3!.message, /^Uploading the droplet to .*: HTTP 403 \(injected failure 403\)/);
});

// ---- deadline, cancellation, streaming, sandbox -----------------------------------------

test('the deadline stops a hanging compile, and whatever it started', async (t) => {
  const pidFile = join(root, 'hang.pid');
  const dir = await buildpack('hangs', { compile: `sleep 120 & echo $! > ${pidFile}\necho started\nwait`, release: webRelease('x') });
  const err = await failure(t, (await attempt('hangs', plainApp, { buildpack: dir }, { timeoutMs: 2000 })).outcome);
  t.is(err.code, 'timeout');
  t.is(err.step, 'compile');
  t.is(err.message, 'Staging timed out after 2 s while running bin/compile');
  const pid = Number(await readFile(pidFile, 'utf8'));
  await eventually(() => !alive(pid), 5000, 'the buildpack\'s child to be killed');
  t.pass();
});

test('the deadline covers a download that never answers', async (t) => {
  blobs.hang('/packages/never.zip');
  const stager = new Stager({ workDir: join(root, 'work', 'never'), timeoutMs: 1000 });
  const err = await t.throwsAsync(
    stager.stage({ app_id: 'a', build_id: 'b', package_uri: blobs.url('/packages/never.zip'), droplet_upload_uri: blobs.url('/d'), env: {}, limits: { memory_mb: 64, disk_mb: 64 } }),
    { instanceOf: StagingError },
  );
  t.is(err!.code, 'timeout');
  t.is(err!.step, 'download');
});

test('cancelling stops staging with code cancelled', async (t) => {
  const dir = await buildpack('slow', { compile: 'echo waiting\nsleep 120', release: webRelease('x') });
  const ac = new AbortController();
  const a = await attempt('cancel', plainApp, { buildpack: dir }, {}, { signal: ac.signal, onLine: (l) => l === 'waiting' && ac.abort() });
  const err = await failure(t, a.outcome);
  t.is(err.code, 'cancelled');
  t.is(err.step, 'compile');
});

test('log lines reach onLog while the buildpack is still running', async (t) => {
  // The compile waits for a file the test writes only once it has seen the compile's first line.
  const dir = await buildpack('chatty', {
    compile: 'echo "ready $1"\nfor i in $(seq 1 500); do [ -f "$1/go" ] && break; sleep 0.02; done\n[ -f "$1/go" ] || { echo "never released" >&2; exit 1; }\necho released',
    release: webRelease('x'),
  });
  const a = await attempt('streaming', plainApp, { buildpack: dir }, {}, {
    onLine: (line) => {
      const m = /^ready (.+)$/.exec(line);
      if (m) void writeFile(join(m[1]!, 'go'), '');
    },
  });
  const o = await a.outcome;
  t.true(o.ok, o.ok ? '' : o.error.message);
  const lines = a.logs.map((l) => l.line);
  t.true(lines.indexOf('released') > lines.findIndex((l) => l.startsWith('ready ')));
});

const asRoot = process.getuid?.() === 0;
(asRoot ? test : test.skip)('the process sandbox runs buildpacks as the uid it is given', async (t) => {
  const dir = await buildpack('whoami', { compile: 'id -u > "$1/uid.txt"\ntouch "$2/cached"', release: webRelease('bin/run') });
  await chmod(join(root, 'buildpacks'), 0o755);
  const a = await attempt('uid', plainApp, { buildpack: dir }, { sandbox: ProcessSandbox.factory({ uid: 65534, gid: 65534 }) });
  const o = await a.outcome;
  if (!o.ok) return t.fail(o.error.message);
  const droplet = await unpackDroplet('uid', a.uploaded()!);
  t.is(await readFile(join(droplet, 'app/uid.txt'), 'utf8'), '65534\n');
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

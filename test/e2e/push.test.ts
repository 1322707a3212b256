// Push end to end, as a developer does it, against one local kernel brought up once: a real
// nats-server, router, cloud controller and DEA (namespace containers), with the `ingot` CLI
// talking to the API through the router at a `*.localhost` name. Static site, python and node
// apps from examples/ (node's dependencies from a loopback registry); an unchanged re-push
// uploads nothing; scaling 1 → 3 → 1; a rolling restart under steady traffic drops nothing;
// env changes reach the app on restart; recent and live logs; stop, delete, bad inputs; and
// a controller restart loses nothing. Serial; times are logged, bounds are generous.
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from '../helpers/component-process.ts';
import { ADMIN } from '../helpers/cc-controller.ts';
import { startPlatform, type CliResult, type Platform } from '../helpers/platform.ts';
import { scratchDir } from '../helpers/tmp.ts';

interface Ctx {
  p: Platform;
  timings: Record<string, number>;
}
const test = anyTest as TestFn<Ctx>;
const EXAMPLES = fileURLToPath(new URL('../../examples', import.meta.url));
const ECHO_APP = fileURLToPath(new URL('./fixtures/echo-app', import.meta.url));

test.before(async (t) => {
  t.timeout(120_000);
  const started = Date.now();
  const p = await startPlatform({ label: 'e2e-push' });
  t.context = { p, timings: { platform_up_ms: Date.now() - started } };
  const api = await p.cli(['api', p.apiUrl]);
  if (api.code !== 0) throw new Error(`ingot api: ${api.stderr}`);
  const login = await p.cli(['login', '-u', ADMIN.user, '-p', ADMIN.password]);
  if (login.code !== 0) throw new Error(`ingot login: ${login.stderr}`);
});

test.after.always(async (t) => {
  t.timeout(120_000);
  const started = Date.now();
  await t.context.p?.stop();
  if (t.context.timings) t.log(JSON.stringify({ ...t.context.timings, teardown_ms: Date.now() - started }));
});

async function ingot(t: ExecutionContext<Ctx>, args: string[], timeoutMs = 180_000): Promise<CliResult> {
  const r = await t.context.p.cli(args, timeoutMs);
  if (r.code !== 0) t.log(`ingot ${args.join(' ')} → ${r.code}\n${r.stdout}\n${r.stderr}`);
  t.is(r.code, 0, `ingot ${args.join(' ')}: ${r.stderr.trim()}`);
  return r;
}

async function refused(t: ExecutionContext<Ctx>, args: string[], pattern: RegExp, timeoutMs = 180_000): Promise<CliResult> {
  const r = await t.context.p.cli(args, timeoutMs);
  t.is(r.code, 1, `ingot ${args.join(' ')} should fail: ${r.stdout}`);
  const lines = r.stderr.trimEnd().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.regex(lines.at(-1)!, pattern);
  t.notRegex(r.stderr, /\n\s+at /, 'no stack');
  return r;
}

const json = (r: CliResult): any => JSON.parse(r.stdout);

test.serial('pushes the static site and serves it through the router', async (t) => {
  t.timeout(180_000);
  const { p } = t.context;
  const r = await ingot(t, ['push', 'site', '-p', join(EXAMPLES, 'static-site'), '-m', '64M']);
  t.context.timings.push_static_ms = r.ms;
  t.regex(r.stdout, /Creating app site in space default\/default/);
  t.regex(r.stdout, new RegExp(`Mapping route site\\.${p.appsDomain.replace(/\./g, '\\.')}`));
  t.regex(r.stdout, /Matched 2 files \(.*\): 0 already on the platform/);
  t.regex(r.stdout, /Staging app and tracing logs\.\.\.\n(.*\n)*\s+-----> /, 'the staging log, live');
  t.regex(r.stdout, /1 of 1 instance running/);
  t.regex(r.stdout, /buildpacks:\s+staticfile/);
  t.regex(r.stdout, new RegExp(`url:\\s+http://site\\.${p.appsDomain.replace(/\./g, '\\.')}:${p.router.port}`), 'the summary gives the URL through the router');
  const page = await p.get(p.appHost('site'));
  t.is(page.status, 200);
  t.regex(page.body, /<html/i);
  const css = await p.get(p.appHost('site'), '/css/site.css');
  t.is(css.status, 200);
});

test.serial('pushing the unchanged app again uploads 0 bytes', async (t) => {
  t.timeout(180_000);
  const { p } = t.context;
  const r = await ingot(t, ['push', 'site', '-p', join(EXAMPLES, 'static-site'), '-m', '64M']);
  t.context.timings.repush_static_ms = r.ms;
  t.regex(r.stdout, /Matched 2 files \(.*\): 2 already on the platform/);
  t.regex(r.stdout, /Uploaded 0 bytes/);
  t.regex(r.stdout, /1 of 1 instance running/);
  t.is((await p.get(p.appHost('site'))).status, 200);
});

test.serial('pushes the python app', async (t) => {
  t.timeout(180_000);
  const { p } = t.context;
  const r = await ingot(t, ['push', 'py', '-p', join(EXAMPLES, 'python-hello'), '-m', '64M']);
  t.context.timings.push_python_ms = r.ms;
  t.regex(r.stdout, /buildpacks:\s+python/);
  const res = await p.get(p.appHost('py'));
  t.is(res.status, 200);
  t.regex(res.body, /python-hello/i);
});

test.serial('pushes the node app, its dependencies installed from the loopback registry', async (t) => {
  t.timeout(240_000);
  const { p } = t.context;
  const r = await ingot(t, ['push', 'node', '-p', join(EXAMPLES, 'node-hello'), '-m', '128M']);
  t.context.timings.push_node_ms = r.ms;
  t.regex(r.stdout, /buildpacks:\s+nodejs/);
  t.true(p.registry.tarballsServed.some((x) => x.startsWith('cfenv@')), `cfenv came from the loopback registry (${p.registry.tarballsServed.join(', ')})`);
  const res = await p.get(p.appHost('node'), '/env');
  t.is(res.status, 200, res.body);
  const env = JSON.parse(res.body);
  t.is(env.name, 'node');
  t.true(Array.isArray(env.urls));
  t.is(env.memoryLimit, '128m');
});

test.serial('pushes an app from a manifest, then scales it 1 → 3 → 1', async (t) => {
  t.timeout(240_000);
  const { p } = t.context;
  const dir = scratchDir('e2e-manifest');
  writeFileSync(
    join(dir, 'manifest.yml'),
    ['applications:', '- name: echo', `  path: ${ECHO_APP}`, '  memory: 64M', '  instances: 1', '  env:', '    GREETING: hello', '  health-check-type: http', '  health-check-http-endpoint: /'].join('\n') + '\n',
  );
  const r = await ingot(t, ['push', '-f', join(dir, 'manifest.yml')]);
  t.context.timings.push_echo_ms = r.ms;
  t.is(JSON.parse((await p.get(p.appHost('echo'))).body).greeting, 'hello');

  const up = await ingot(t, ['scale', 'echo', '-i', '3']);
  t.context.timings.scale_up_ms = up.ms;
  t.regex(up.stdout, /3 of 3 instances running/);
  const app = json(await ingot(t, ['app', 'echo', '--json']));
  t.is(app.stats.filter((s: any) => s.state === 'RUNNING').length, 3);
  t.true(app.stats.every((s: any) => s.usage.mem > 0 && s.mem_quota === 64 * 1024 * 1024), 'memory usage and quota per instance');
  // The router spreads requests over the three.
  const seen = new Set<string>();
  await eventually(async () => {
    seen.add(JSON.parse((await p.get(p.appHost('echo'))).body).index);
    return seen.size === 3;
  }, 20_000, 'requests reaching all three instances');
  const table = (await ingot(t, ['app', 'echo'])).stdout;
  t.regex(table, /#2\s+running\s+\S+Z\s+[\d.]+%\s+\S+ of 64M\s+\S+ of 1G/);

  const down = await ingot(t, ['scale', 'echo', '-i', '1']);
  t.context.timings.scale_down_ms = down.ms;
  t.regex(down.stdout, /1 of 1 instance running/);
  await eventually(async () => {
    const indices = new Set<string>();
    for (let i = 0; i < 6; i++) indices.add(JSON.parse((await p.get(p.appHost('echo'))).body).index);
    return indices.size === 1 && indices.has('0');
  }, 20_000, 'only index 0 answering');
  t.pass();
});

test.serial('a rolling restart of 3 instances under a steady trickle of requests fails none', async (t) => {
  t.timeout(240_000);
  const { p } = t.context;
  await ingot(t, ['scale', 'echo', '-i', '3']);
  const before = new Set<string>();
  await eventually(async () => {
    before.add(JSON.parse((await p.get(p.appHost('echo'))).body).version);
    return true;
  });
  let done = false;
  const results: Array<{ status: number; version?: string; error?: string }> = [];
  const trickle = (async () => {
    // Bounded: at most 3000 requests, one every 20 ms, until the restart command returns.
    for (let i = 0; i < 3000 && !done; i++) {
      try {
        const res = await p.get(p.appHost('echo'), '/', 5000);
        results.push({ status: res.status, ...(res.status === 200 ? { version: JSON.parse(res.body).version } : { error: res.body.slice(0, 200) }) });
      } catch (err) {
        results.push({ status: 0, error: (err as Error).message });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const r = await ingot(t, ['restart', 'echo', '--strategy', 'rolling']);
  done = true;
  await trickle;
  t.context.timings.rolling_restart_ms = r.ms;
  t.context.timings.rolling_requests = results.length;
  t.regex(r.stdout, /3 of 3 instances updated and running/);
  const failed = results.filter((x) => x.status !== 200);
  t.deepEqual(failed, [], `${failed.length} of ${results.length} requests failed`);
  t.true(results.length >= 20, `a steady trickle (${results.length} requests)`);
  const versions = new Set(results.map((x) => x.version));
  t.true(versions.size >= 2, 'old and new instances both answered during the rollout');
  const after = json(await ingot(t, ['app', 'echo', '--json']));
  t.true(after.stats.every((s: any) => s.state === 'RUNNING' && !before.has(s.version)), 'every instance runs the new version');
});

test.serial('an env change reaches the app on restart', async (t) => {
  t.timeout(180_000);
  const { p } = t.context;
  await ingot(t, ['set-env', 'echo', 'GREETING', 'bonjour']);
  t.is(JSON.parse((await p.get(p.appHost('echo'))).body).greeting, 'hello', 'not before a restart');
  const r = await ingot(t, ['restart', 'echo']);
  t.context.timings.restart_ms = r.ms;
  t.regex(r.stdout, /3 of 3 instances running/);
  const env = JSON.parse((await p.get(p.appHost('echo'), '/env')).body);
  t.is(env.GREETING, 'bonjour');
  t.is(json(await ingot(t, ['env', 'echo', '--json'])).environment_variables.GREETING, 'bonjour');
});

test.serial('recent logs, and a live log stream', async (t) => {
  t.timeout(120_000);
  const { p } = t.context;
  await p.get(p.appHost('echo'), '/recent-marker');
  const recent = await eventually(async () => {
    const r = await p.cli(['logs', 'echo', '--recent']);
    return /\[APP\/\d\] OUT echo \/recent-marker from index \d/.test(r.stdout) ? r.stdout : undefined;
  }, 15_000, 'the request in the recent logs');
  t.regex(recent, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d\d[+-]\d{4} \[/m, 'cf-style timestamps');
  t.regex(recent, /\[API\] OUT Restarting app echo/);
  t.regex(recent, /\[RTR(\/\d+)?\] OUT /, 'router access lines');
  const stream = p.spawnCli(['logs', 'echo']);
  try {
    await stream.waitFor(/Retrieving logs for app echo/);
    let n = 0;
    // Until the stream is up we cannot know; keep making marked requests until one shows.
    await eventually(async () => {
      await p.get(p.appHost('echo'), `/live-${++n}`);
      return /\[APP\/\d\] OUT echo \/live-\d+ from index/.test(stream.output());
    }, 20_000, 'a live line');
  } finally {
    await stream.stop();
  }
  t.is(stream.proc.exitCode, 0, 'Ctrl-C ends `ingot logs` cleanly');
  t.regex(stream.output(), /^\d{4}-\d\d-\d\dT[\d:.]+[+-]\d{4} \[RTR(\/\d+)?\] OUT /m, 'router lines stream live too');
});

test.serial('bad inputs are refused with one line', async (t) => {
  t.timeout(180_000);
  await refused(t, ['scale', 'echo', '-m', '12XB'], /^ingot: -m 12XB: "12XB" is not a size/);
  await refused(t, ['app', 'nope'], /^ingot: app nope not found in space default\/default$/);
  const dir = scratchDir('e2e-bad');
  writeFileSync(join(dir, 'manifest.yml'), 'applications:\n- name: bad\n  memory: lots\n');
  await refused(t, ['push', '-f', join(dir, 'manifest.yml')], /^ingot: manifest\.yml:3 applications\[0\]\.memory: "lots" is not a size/);
  // Nothing a buildpack recognises: staging fails, with the stager's reason on one line.
  const junk = join(dir, 'junk');
  mkdirSync(junk);
  writeFileSync(join(junk, 'notes.txt'), 'not an app\n');
  const failed = await refused(t, ['push', 'junk', '-p', junk, '-m', '64M'], /^ingot: staging junk failed: .+/);
  t.regex(failed.stdout, /Staging app and tracing logs/);
  // A buildpack nobody has: staging fails and says which.
  await refused(t, ['push', 'nobp', '-p', ECHO_APP, '-m', '64M', '-b', 'no-such-buildpack'], /^ingot: staging nobp failed: .*no-such-buildpack/);
  await ingot(t, ['delete', 'nobp', '-f', '-r']);
  // An app that exits at once: the push reports the crash.
  const crash = await refused(t, ['push', 'crasher', '-p', ECHO_APP, '-m', '64M', '-c', 'python3 -c "import sys; sys.exit(3)"'], /^ingot: crasher crashed while starting: instance 0 exited with status 3/);
  t.context.timings.crash_detected_ms = crash.ms;
  await ingot(t, ['delete', 'crasher', '-f', '-r']);
  await ingot(t, ['delete', 'junk', '-f', '-r']);
});

test.serial('a controller restart loses nothing', async (t) => {
  t.timeout(180_000);
  const { p } = t.context;
  const before = json(await ingot(t, ['apps', '--json']));
  const started = Date.now();
  await p.restartController();
  t.context.timings.controller_restart_ms = Date.now() - started;
  const after = json(await ingot(t, ['apps', '--json']));
  t.deepEqual(
    after.map((a: any) => ({ name: a.name, state: a.state, instances: a.instances, routes: a.routes })),
    before.map((a: any) => ({ name: a.name, state: a.state, instances: a.instances, routes: a.routes })),
  );
  t.is(after.find((a: any) => a.name === 'echo').running, 3);
  t.is((await p.get(p.appHost('echo'))).status, 200);
  t.is(json(await ingot(t, ['env', 'echo', '--json'])).environment_variables.GREETING, 'bonjour');
  // The resource cache survived: the same bits upload nothing.
  const again = await ingot(t, ['push', 'site', '-p', join(EXAMPLES, 'static-site'), '-m', '64M']);
  t.regex(again.stdout, /Uploaded 0 bytes/);
});

test.serial('stop takes the app off the router (404); delete removes it and its routes', async (t) => {
  t.timeout(120_000);
  const { p } = t.context;
  await ingot(t, ['stop', 'site']);
  await eventually(async () => (await p.get(p.appHost('site'))).status === 404, 20_000, 'site → 404');
  const gone = await p.get(p.appHost('site'));
  t.is(gone.headers['x-ingot-router-error'], 'unknown_route');
  await ingot(t, ['delete', 'site', '-f', '-r']);
  await refused(t, ['app', 'site'], /app site not found/);
  t.false(json(await ingot(t, ['routes', '--json'])).some((r: any) => r.host === 'site'));
  const apps = json(await ingot(t, ['apps', '--json'])).map((a: any) => a.name);
  t.deepEqual(apps, ['echo', 'node', 'py']);
});

import test from 'ava';
import type { App, InstanceStats, Process } from '../../kernel/client/api-types.ts';
import { countInstances, describeCounts } from '../../kernel/client/instances.ts';
import { formatLogLine, formatTimestamp } from '../../kernel/client/log-format.ts';
import { PushRenderer } from '../../kernel/client/progress.ts';
import { hostnameFor, splitRoute, type PushEvent } from '../../kernel/client/push.ts';
import { SseParser } from '../../kernel/client/sse.ts';
import { renderSummary, routerBase, routeUrl } from '../../kernel/client/summary.ts';
import { connectTarget } from '../../kernel/client/http.ts';
import { normalizeApiUrl } from '../../kernel/client/commands/auth.ts';

const AT = Date.UTC(2026, 10, 26, 10, 0, 0, 123);

test('log lines print as cf logs does', (t) => {
  t.is(formatLogLine({ source: 'APP', index: 0, stream: 'out', timestamp: AT, line: 'hello' }, 0), '2026-11-26T10:00:00.12+0000 [APP/0] OUT hello');
  t.is(formatLogLine({ source: 'STG', stream: 'err', timestamp: AT, line: 'oops' }, 0), '2026-11-26T10:00:00.12+0000 [STG] ERR oops');
  t.is(formatLogLine({ source: 'RTR', index: 1, stream: 'out', timestamp: AT, line: 'GET /' }, 120), '2026-11-26T12:00:00.12+0200 [RTR/1] OUT GET /');
  t.is(formatTimestamp(AT, -330), '2026-11-26T04:30:00.12-0530');
  t.regex(formatLogLine({ source: 'API', stream: 'out', timestamp: AT, line: 'x' }), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d\d[+-]\d{4} \[API\] OUT x$/);
});

function capture(): { text: () => string; write: (s: string) => void } {
  let out = '';
  return { text: () => out, write: (s: string) => void (out += s) };
}

const counts = (running: number, starting: number, total = 3, crashed = 0) => ({ total, running, starting, crashed, down: total - running - starting - crashed });

test('push progress renders as plain lines when not on a terminal', (t) => {
  const out = capture();
  const err = capture();
  const r = new PushRenderer(out, err, { tty: false });
  const events: PushEvent[] = [
    { type: 'app', name: 'web', created: true, space: 'default/dev' },
    { type: 'route', url: 'web.apps.example.com', created: true },
    { type: 'files', files: 12, bytes: 50_000, ignored: 2, matchedFiles: 10, matchedBytes: 41_000 },
    { type: 'uploaded', files: 2, bytes: 3_300 },
    { type: 'staging', build: 'b1' },
    { type: 'staging-log', line: { app_id: 'a', source: 'STG', stream: 'out', timestamp: AT, line: '-----> Detected buildpack nodejs' } },
    { type: 'staged', droplet: 'd1' },
    { type: 'starting', strategy: 'recreate', instances: 3 },
    { type: 'instances', counts: counts(0, 3), verb: 'running' },
    { type: 'instances', counts: counts(1, 2), verb: 'running' },
    { type: 'instances', counts: counts(3, 0), verb: 'running' },
    { type: 'warning', text: 'careful' },
  ];
  for (const e of events) r.handle(e);
  r.flush();
  t.is(
    out.text(),
    [
      'Creating app web in space default/dev',
      'Mapping route web.apps.example.com',
      'Matched 12 files (48.8K, 2 ignored): 10 already on the platform, 40K skipped',
      'Uploaded 3.2K (2 files, zipped)',
      'Staging app and tracing logs...',
      '   -----> Detected buildpack nodejs',
      'Staged.',
      'Starting 3 instances...',
      '0 of 3 instances running, 3 starting',
      '1 of 3 instances running, 2 starting',
      '3 of 3 instances running',
      '',
    ].join('\n'),
  );
  t.is(err.text(), 'warning: careful\n');
  t.notRegex(out.text(), /\x1b|\r/);
});

test('on a terminal the instance count is rewritten in place', (t) => {
  const out = capture();
  const r = new PushRenderer(out, capture(), { tty: true });
  r.handle({ type: 'instances', counts: counts(1, 2), verb: 'running' });
  r.handle({ type: 'instances', counts: counts(3, 0), verb: 'running' });
  r.handle({ type: 'uploaded', files: 0, bytes: 0 });
  t.is(out.text(), '\r\x1b[2K1 of 3 instances running, 2 starting\r\x1b[2K3 of 3 instances running\nUploaded 0 bytes: every file was already on the platform\n');
});

test('instance counts', (t) => {
  const stats = ['RUNNING', 'STARTING', 'CRASHED', 'DOWN'].map((state, index) => ({ index, state }) as InstanceStats);
  const c = countInstances(stats);
  t.deepEqual(c, { total: 4, running: 1, starting: 1, crashed: 1, down: 1 });
  t.is(describeCounts(c), '1 of 4 instances running, 1 starting, 1 crashed, 1 down');
  t.is(describeCounts(countInstances([{ index: 0, state: 'RUNNING' } as InstanceStats])), '1 of 1 instance running');
});

test('the app summary shows each instance: state, since, cpu, memory, disk', (t) => {
  const app = { guid: 'g', name: 'web', state: 'STARTED', created_at: '', updated_at: '', lifecycle: { type: 'buildpack', data: { buildpacks: [], stack: 'bookworm' } }, relationships: { space: { data: { guid: 's' } } } } as App;
  const process = { guid: 'g', type: 'web', instances: 2, memory_in_mb: 256, disk_in_mb: 1024, command: null, health_check: { type: 'port', data: {} } } as Process;
  const stats = [
    { index: 0, state: 'RUNNING', uptime: 60, mem_quota: 256 * 1024 ** 2, disk_quota: 1024 ** 3, usage: { cpu: 0.012, mem: 21.4 * 1024 ** 2, disk: 4.1 * 1024 ** 2 } },
    { index: 1, state: 'DOWN', uptime: 0, usage: {} },
  ] as InstanceStats[];
  const lines = renderSummary({ app, process, stats, routes: ['web.example.com'], urls: ['http://web.example.com:8080'], droplet: undefined }, AT);
  const text = lines.join('\n');
  t.regex(text, /^name:\s+web$/m);
  t.regex(text, /^requested state:\s+started$/m);
  t.regex(text, /^routes:\s+web\.example\.com$/m);
  t.regex(text, /^url:\s+http:\/\/web\.example\.com:8080$/m);
  t.regex(text, /^instances:\s+1\/2$/m);
  t.regex(text, /^#0\s+running\s+2026-11-26T09:59:00Z\s+1\.2%\s+21\.4M of 256M\s+4\.1M of 1G$/m);
  t.regex(text, /^#1\s+down$/m);
  t.false(lines.some((l) => l !== l.trimEnd()), 'no trailing spaces');
});

test('routes: a host for an app name, and host.domain/path split on the longest domain', (t) => {
  t.is(hostnameFor('My_App.v2'), 'my-app-v2');
  t.is(hostnameFor('---'), 'app');
  const domains = ['example.com', 'apps.example.com'];
  t.deepEqual(splitRoute('web.apps.example.com', domains), { host: 'web', domain: 'apps.example.com', path: '' });
  t.deepEqual(splitRoute('apps.example.com/shop', domains), { host: '', domain: 'apps.example.com', path: '/shop' });
  t.deepEqual(splitRoute('a.b.example.com/x/y', domains), { host: 'a.b', domain: 'example.com', path: '/x/y' });
  t.is(splitRoute('web.other.org', domains), undefined);
});

test('server-sent events: events, comments, lines split across chunks', (t) => {
  const p = new SseParser();
  t.deepEqual(p.push(': connected\n\nevent: log\ndata: {"a"'), [{ kind: 'comment', text: 'connected' }]);
  t.deepEqual(p.push(':1}\n\n'), [{ kind: 'event', event: 'log', data: '{"a":1}' }]);
  t.deepEqual(p.push('data: one\r\ndata: two\r\n\r\n: keepalive\r'), [{ kind: 'event', event: 'message', data: 'one\ntwo' }]);
  t.deepEqual(p.push('\n'), [{ kind: 'comment', text: 'keepalive' }]);
});

test('*.localhost goes to loopback with the name in the Host header', (t) => {
  t.deepEqual(connectTarget(new URL('http://api.localhost:8080/v3')), { hostname: '127.0.0.1', hostHeader: 'api.localhost:8080', servername: 'api.localhost' });
  t.deepEqual(connectTarget(new URL('http://localhost')), { hostname: '127.0.0.1', hostHeader: 'localhost', servername: 'localhost' });
  t.deepEqual(connectTarget(new URL('https://api.example.com')), { hostname: 'api.example.com', hostHeader: 'api.example.com', servername: 'api.example.com' });
});

test('API URLs: a scheme is added (http for local names), trailing slashes dropped', (t) => {
  t.is(normalizeApiUrl('api.localhost:8080'), 'http://api.localhost:8080');
  t.is(normalizeApiUrl('10.0.0.5:9022/'), 'http://10.0.0.5:9022');
  t.is(normalizeApiUrl('api.example.com'), 'https://api.example.com');
  t.is(normalizeApiUrl('http://api.example.com/'), 'http://api.example.com');
  t.throws(() => normalizeApiUrl('ftp://x'), { message: /must be http or https/ });
});

test("app URLs follow the API's scheme and port when the API sits behind the same routers", (t) => {
  const base = routerBase('http://api.sys.localhost:8080', 'sys.localhost')!;
  t.deepEqual(base, { protocol: 'http:', port: '8080' });
  t.is(routeUrl('web.apps.localhost/shop', base), 'http://web.apps.localhost:8080/shop');
  t.is(routeUrl('web.apps.example.com', routerBase('https://api.example.com', 'example.com')!), 'https://web.apps.example.com');
  t.is(routerBase('http://127.0.0.1:9022', 'sys.localhost'), undefined, 'an API reached directly says nothing about the routers');
});

// The component runtime end to end: a component started by `ingot component <name> --config`
// against a real nats-server announces itself, answers discover, serves its status endpoints,
// survives NATS restarts and malformed messages, and refuses a bad config in one line.
import anyTest, { type TestFn } from 'ava';
import { connect, type NatsConnection } from 'nats';
import { INGOT_VERSION } from '../../kernel/component/version.ts';
import { NatsServer } from '../helpers/nats-server.ts';
import { eventually, PROBE_CLI, runCli, startComponentProcess, writeConfig, type StartedComponent } from '../helpers/component-process.ts';

const test = anyTest as TestFn<{ nats: NatsServer; nc: NatsConnection; probe: StartedComponent; announces: Array<Record<string, unknown>> }>;

const STATUS_PASSWORD = 'probe-secret';

test.before(async (t) => {
  const nats = await NatsServer.start();
  const nc = await connect({ servers: nats.url, user: nats.user, pass: nats.password, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const announces: Array<Record<string, unknown>> = [];
  nc.subscribe('vcap.component.announce', { callback: (_e, m) => announces.push(m.json()) });
  await nc.flush();
  const config = writeConfig('probe', {
    nats: nats.componentConfig,
    index: 3,
    status: { host: '127.0.0.1', port: 0, user: 'ingot', password: STATUS_PASSWORD },
    logging: { level: 'info' },
    drain_ms: 300,
  });
  const probe = await startComponentProcess('probe', config, { cli: PROBE_CLI, statusPassword: STATUS_PASSWORD });
  t.context = { nats, nc, probe, announces };
});

test.after.always(async (t) => {
  await t.context.probe?.kill();
  await t.context.nc?.close();
  await t.context.nats?.stop();
});

const varz = async (t: { context: { probe: StartedComponent } }): Promise<Record<string, any>> => {
  const res = await fetch(t.context.probe.statusUrl('/varz'), { headers: { authorization: t.context.probe.auth } });
  return (await res.json()) as Record<string, any>;
};

test.serial('announces itself on vcap.component.announce at start', async (t) => {
  const a = await eventually(() => t.context.announces.find((m) => m.type === 'probe'), 10_000, 'announce');
  t.is(a.index, 3);
  t.deepEqual(a.credentials, ['ingot', STATUS_PASSWORD]);
  // Monitoring reaches /varz at the announced address (here the loopback the status server is bound to).
  const res = await fetch(`http://${String(a.host)}/varz`, { headers: { authorization: t.context.probe.auth } });
  t.is(res.status, 200);
  t.is(((await res.json()) as { version?: string }).version, INGOT_VERSION);
  t.regex(String(a.uptime), /^\d+d:\d+h:\d+m:\d+s$/);
});

test.serial('answers vcap.component.discover, filtered by type', async (t) => {
  const reply = await t.context.nc.request('vcap.component.discover', JSON.stringify({ type: 'probe' }), { timeout: 5000 });
  const me = reply.json<Record<string, unknown>>();
  t.is(me.type, 'probe');
  t.is(me.index, 3);
  await t.throwsAsync(t.context.nc.request('vcap.component.discover', JSON.stringify({ type: 'router' }), { timeout: 300 }));
});

test.serial('serves /healthz openly and /varz, /metrics only with credentials', async (t) => {
  const { probe } = t.context;
  const health = await fetch(probe.statusUrl('/healthz'));
  t.is(health.status, 200);
  t.is(await health.text(), 'ok');
  for (const path of ['/varz', '/metrics']) {
    t.is((await fetch(probe.statusUrl(path))).status, 401, `${path} without credentials`);
    const wrong = 'Basic ' + Buffer.from('ingot:wrong').toString('base64');
    t.is((await fetch(probe.statusUrl(path), { headers: { authorization: wrong } })).status, 401, `${path} with a wrong password`);
  }
  const v = await varz(t);
  t.is(v.type, 'probe');
  t.is(v.index, 3);
  t.truthy(v.uuid);
  t.true(typeof v.mem_bytes === 'number' && v.mem_bytes > 0);
  t.true(typeof v.cpu === 'number');
  t.is(v.heartbeats_seen, 0);
  t.is(v.config.status.password, '[redacted]');
  t.is(v.config.nats.password, '[redacted]');
  const metrics = await (await fetch(probe.statusUrl('/metrics'), { headers: { authorization: probe.auth } })).text();
  t.regex(metrics, /^# TYPE ingot_probe_heartbeats_seen_total counter$/m);
  t.regex(metrics, /^ingot_probe_nats_connected 1$/m);
});

test.serial('drops malformed messages, counts them, and lives on', async (t) => {
  const { nc } = t.context;
  const before = await varz(t);
  const maxPayload = nc.info!.max_payload;
  const garbage = new Uint8Array(maxPayload - 64);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) & 0xff;
  nc.publish('dea.heartbeat', '{"dea_id": "x", "instances": [');
  nc.publish('dea.heartbeat', JSON.stringify({ dea_id: 42, instances: 'none' }));
  nc.publish('dea.heartbeat', garbage);
  nc.publish('dea.heartbeat', new Uint8Array([0xff, 0xfe, 0x00, 0x01]));
  nc.publish('dea.heartbeat', JSON.stringify({ dea_id: 'throw', instances: [] }));
  nc.publish('dea.heartbeat', JSON.stringify({ dea_id: 'dea-1', instances: [] }));
  await nc.flush();
  const after = await eventually(async () => {
    const v = await varz(t);
    return v.heartbeats_seen === before.heartbeats_seen + 2 ? v : undefined;
  }, 10_000, 'valid heartbeats handled');
  t.is(after.bus.invalid['dea.heartbeat'], (before.bus.invalid['dea.heartbeat'] ?? 0) + 4);
  t.is(after.bus.handler_errors, before.bus.handler_errors + 1);
  t.is((await fetch(t.context.probe.statusUrl('/healthz'))).status, 200);
  t.is(t.context.probe.proc.exitCode, null);
});

test.serial('turns unhealthy while NATS is down, then reconnects and re-announces', async (t) => {
  const { nats, probe } = t.context;
  await nats.stop();
  await eventually(async () => (await fetch(probe.statusUrl('/healthz'))).status === 503, 20_000, '/healthz 503 during the outage');
  const announcesBefore = t.context.announces.filter((m) => m.type === 'probe').length;
  await nats.restart();
  await eventually(async () => (await fetch(probe.statusUrl('/healthz'))).status === 200, 20_000, '/healthz 200 after reconnect');
  await eventually(() => t.context.announces.filter((m) => m.type === 'probe').length > announcesBefore, 20_000, 're-announce');
  const v = await varz(t);
  t.true(v.bus.reconnects >= 1);
  t.pass();
});

test.serial('SIGTERM drains for the component, then exits 0', async (t) => {
  const { probe } = t.context;
  probe.proc.kill('SIGTERM');
  await eventually(async () => (await fetch(probe.statusUrl('/healthz'))).status === 503, 5000, '/healthz 503 while draining');
  const { code } = await probe.exited;
  t.is(code, 0);
  t.truthy(probe.logs.find((l) => l.msg === 'probe draining'));
  t.truthy(probe.logs.find((l) => l.msg === 'stopped'));
  t.true(probe.logs.every((l) => l.type === 'probe' && l.index === 3), 'every log line names the type and index');
});

test('the harness nats-server refuses a client without credentials', async (t) => {
  const err = await t.throwsAsync(connect({ servers: t.context.nats.url, reconnect: false, timeout: 3000 }));
  t.regex(String(err?.message ?? err), /authorization|AUTHORIZATION/i);
});

test('a bad config file fails with one line naming file, line and key', async (t) => {
  const file = writeConfig('bad', 'nats:\n  servers: [nats://127.0.0.1:4222]\n  user: u\n  password: p\nstatus:\n  host: 127.0.0.1\n  port: "eighty"\n');
  const { code, stderr } = await runCli(['component', 'probe', '--config', file], { cli: PROBE_CLI });
  t.is(code, 1);
  t.is(stderr.trim().split('\n').length, 1, stderr);
  t.regex(stderr, /^ingot: bad\.yml:7 status\.port: expected a number, got string$/m);
});

test('a missing config file and an unknown component are one-line errors', async (t) => {
  const missing = await runCli(['component', 'probe', '--config', '/nonexistent/x.yml'], { cli: PROBE_CLI });
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^ingot: \/nonexistent\/x\.yml: cannot read the config file \(ENOENT\)\n$/);
  const unknown = await runCli(['component', 'nope', '--config', '/x.yml']);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /^ingot: unknown component "nope"/);
  t.notRegex(unknown.stderr, /\n\s+at /);
});

import test from 'ava';
import { counter, formatUptime, labelled, redact, renderPrometheus } from '../../kernel/component/mod.ts';

test('uptime reads the Cloud Foundry way', (t) => {
  t.is(formatUptime(0), '0d:0h:0m:0s');
  t.is(formatUptime(((2 * 24 + 3) * 3600 + 4 * 60 + 5) * 1000 + 999), '2d:3h:4m:5s');
});

test('redact hides secrets by key and credentials inside URLs', (t) => {
  const out = redact({
    nats: { servers: ['nats://kernel:hunter2@10.0.0.1:4222'], user: 'kernel', password: 'hunter2' },
    status: { password: 'x', port: 1 },
    db: { url: 'postgres://cc:pw@db/cc' },
    client_secret: 's',
    token: 't',
  }) as Record<string, any>;
  t.is(out.nats.password, '[redacted]');
  t.is(out.nats.user, 'kernel');
  t.deepEqual(out.nats.servers, ['nats://[redacted]@10.0.0.1:4222']);
  t.is(out.status.password, '[redacted]');
  t.is(out.status.port, 1);
  t.is(out.db.url, 'postgres://[redacted]@db/cc');
  t.is(out.client_secret, '[redacted]');
  t.is(out.token, '[redacted]');
});

test('prometheus text has HELP, TYPE, escaped labels and sanitized names', (t) => {
  const text = renderPrometheus('ingot_cloud-controller', [
    counter('requests_total', 'Requests served', 12),
    labelled('app_requests_total', 'Per app', 'counter', 'app_id', { 'a"b': 3, c: 4 }),
  ]);
  t.is(
    text,
    [
      '# HELP ingot_cloud_controller_requests_total Requests served',
      '# TYPE ingot_cloud_controller_requests_total counter',
      'ingot_cloud_controller_requests_total 12',
      '# HELP ingot_cloud_controller_app_requests_total Per app',
      '# TYPE ingot_cloud_controller_app_requests_total counter',
      'ingot_cloud_controller_app_requests_total{app_id="a\\"b"} 3',
      'ingot_cloud_controller_app_requests_total{app_id="c"} 4',
      '',
    ].join('\n'),
  );
});

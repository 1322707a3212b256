// The router's numbers (percentiles, rates per app), its access-log line and the limit on
// router lines sent to an app's log stream.
import test from 'ava';
import { formatAccessLine } from '../../kernel/router/access-log.ts';
import { AppLogLimiter } from '../../kernel/router/app-log.ts';
import { bucketUpperMs, latencyBucket, ProxyStats, StatsAggregate } from '../../kernel/router/stats.ts';

test('latency buckets bound a value from above within 8 %', (t) => {
  for (const ms of [0.02, 0.5, 1, 3.7, 250, 9000]) {
    const upper = bucketUpperMs(latencyBucket(ms));
    t.true(upper >= ms && upper <= ms * 1.0801, `${ms} → ${upper}`);
  }
  t.is(latencyBucket(0), 0);
});

test('deltas from workers add up to totals, percentiles and per-app rates', (t) => {
  const agg = new StatsAggregate({ latencyWindowMs: 60_000, rateWindowMs: 10_000 });
  const w1 = new ProxyStats();
  const w2 = new ProxyStats();
  for (let i = 0; i < 98; i++) w1.record(200, 1, 'app-a');
  w1.record(404, 1, undefined);
  w1.routerError('unknown_route');
  w2.record(502, 100, 'app-b');
  w2.routerError('endpoint_failure');
  w2.retry();
  agg.add(w1.take(), 1_000);
  agg.add(w2.take(), 1_000);
  const s = agg.summary(2_000);
  t.is(s.requests, 100);
  t.is(s.responses['2xx'], 98);
  t.is(s.responses['4xx'], 1);
  t.is(s.responses['5xx'], 1);
  t.is(s.router_errors.unknown_route, 1);
  t.is(s.bad_gateways, 1);
  t.is(s.retries, 1);
  t.true(s.latency_ms.p50 >= 1 && s.latency_ms.p50 < 1.1);
  t.true(s.latency_ms.p99 >= 1 && s.latency_ms.p99 < 1.1);
  t.true(s.latency_ms.p999 >= 100);
  t.is(s.apps['app-a']!.requests, 98);
  t.is(s.apps['app-a']!.requests_per_second, 9.8);
  t.is(s.requests_per_second, 10);
  const later = agg.summary(20_000);
  t.is(later.apps['app-a']!.requests_per_second, 0, 'rates cover the recent window only');
  t.is(later.apps['app-a']!.requests, 98, 'totals stay');
  t.is(agg.summary(100_000).latency_ms.p50, 0, 'percentiles cover the latency window only');
  t.deepEqual(w1.take().requests, 0, 'take starts afresh');
});

test('the access line carries host, method, path, status, bytes, time, app, index and request id', (t) => {
  const line = formatAccessLine({
    host: 'app.example.com',
    method: 'POST',
    target: '/a?b="c"',
    minor: 1,
    status: 201,
    bytesReceived: 10,
    bytesSent: 20,
    referer: undefined,
    userAgent: 'curl/8',
    remote: '192.0.2.1:5000',
    backend: '10.0.0.5:61001',
    forwardedFor: '192.0.2.1',
    forwardedProto: 'http',
    requestId: 'rid-1',
    startedAt: Date.UTC(2024, 0, 2, 3, 4, 5, 6),
    durationMs: 12.5,
    appId: 'app-1',
    index: 2,
  });
  t.is(
    line,
    'app.example.com - [2024-01-02T03:04:05.006Z] "POST /a?b=\\"c\\" HTTP/1.1" 201 10 20 "-" "curl/8" "192.0.2.1:5000" "10.0.0.5:61001" ' +
      'x_forwarded_for:"192.0.2.1" x_forwarded_proto:"http" vcap_request_id:"rid-1" response_time:0.012500 app_id:"app-1" app_index:"2"',
  );
});

test('router lines to an app are limited per second, and the dropped ones are counted', (t) => {
  const limiter = new AppLogLimiter(3);
  const admitted = Array.from({ length: 10 }, () => limiter.admit('a', 1_000)).filter(Boolean).length;
  t.is(admitted, 3);
  t.true(limiter.admit('b', 1_500));
  t.deepEqual(limiter.takeDropped(1_900), [], 'the second is not over yet');
  t.true(limiter.admit('a', 2_000), 'a new second, a new allowance');
  t.deepEqual(limiter.takeDropped(2_100), [['a', 7]]);
  t.deepEqual(limiter.takeDropped(5_000), []);
});

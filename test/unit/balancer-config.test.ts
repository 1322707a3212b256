// The balancer's config file: defaults, and errors naming file, line and key.
import test from 'ava';
import { ConfigError } from '../../kernel/component/mod.ts';
import { parseBalancerConfig } from '../../orchestrator/cpi/local/balancer-config.ts';

test('defaults: 127.0.0.1:8080, 250 ms checks, rise 2, /healthz', (t) => {
  const c = parseBalancerConfig('backends:\n  - host: 10.244.0.5\n    port: 80\n    health: { port: 8082 }\n');
  t.deepEqual(c.listen, { host: '127.0.0.1', port: 8080 });
  t.is(c.interval_ms, 250);
  t.is(c.rise, 2);
  t.is(c.status, undefined);
  t.deepEqual(c.backends, [{ host: '10.244.0.5', port: 80, health: { port: 8082, path: '/healthz' } }]);
});

test('a wrong value names file, line and key', (t) => {
  const text = 'listen:\n  port: 9000\nbackends:\n  - host: a\n    port: 80\n    health: { port: 81 }\n  - host: b\n    port: eighty\n    health: { port: 81 }\n';
  const err = t.throws(() => parseBalancerConfig(text, '/etc/balancer.yml'), { instanceOf: ConfigError });
  t.is(err!.message, 'balancer.yml:8 backends[1].port: expected a number, got string');
});

test('every problem is listed, unknown keys too', (t) => {
  const err = t.throws(() => parseBalancerConfig('rise: 0\nbackends:\n  - host: a\n    port: 80\n    helth: {}\n'), { instanceOf: ConfigError });
  t.is(err!.problems.length, 3);
  t.regex(err!.message, /balancer\.yml:1 rise: /);
  t.regex(err!.message, /balancer\.yml:\d backends\[0\]\.health: required/);
  t.regex(err!.message, /balancer\.yml:5 backends\[0\]: unknown key \(helth\)/);
});

test('a timeout longer than the interval is refused', (t) => {
  const err = t.throws(() => parseBalancerConfig('interval_ms: 100\ntimeout_ms: 500\n'), { instanceOf: ConfigError });
  t.regex(err!.message, /timeout_ms: timeout_ms must not exceed interval_ms/);
});

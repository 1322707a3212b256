import test from 'ava';
import { z } from 'zod';
import { ConfigError, componentConfig, parseConfig } from '../../kernel/component/mod.ts';

const schema = componentConfig({ port: z.number().int().default(8080), domains: z.array(z.string()).default([]) });
const good = 'nats:\n  servers: [nats://10.0.0.1:4222]\n  user: u\n  password: p\n';

function problems(text: string): string[] {
  try {
    parseConfig(text, '/etc/ingot/router.yml', schema);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

test('fills defaults for the common keys and the component keys', (t) => {
  const c = parseConfig(good, 'router.yml', schema);
  t.is(c.index, 0);
  t.is(c.status.port, 0);
  t.is(c.logging.level, 'info');
  t.is(c.port, 8080);
  t.deepEqual(c.nats.servers, ['nats://10.0.0.1:4222']);
});

test('names file, line and key for a wrong type', (t) => {
  t.deepEqual(problems(good + 'status:\n  host: 0.0.0.0\n  port: eighty\n'), ['router.yml:7 status.port: expected a number, got string']);
});

test('reports every problem at once', (t) => {
  const p = problems('nats:\n  servers: []\nindex: -1\nport: "x"\nbogus: 1\n');
  t.true(p.length >= 4, p.join('\n'));
  t.true(p.some((l) => l.startsWith('router.yml:2 nats.servers:')));
  t.true(p.some((l) => l.startsWith('router.yml:3 index:')));
  t.true(p.some((l) => l.startsWith('router.yml:4 port:')));
  t.true(p.some((l) => l === 'router.yml:5: unknown key (bogus)'));
});

test('a missing required key points at its parent', (t) => {
  const p = problems('index: 1\nnats:\n  user: u\n  password: p\n');
  t.deepEqual(p, ['router.yml:3 nats.servers: required']);
});

test('the kernel NATS requires credentials', (t) => {
  const p = problems('nats:\n  servers: [nats://10.0.0.1:4222]\n');
  t.deepEqual(p, ['router.yml:2 nats: the kernel NATS requires credentials: set user and password, or token']);
  t.notThrows(() => parseConfig('nats:\n  servers: [nats://h:4222]\n  token: abc\n', 'x.yml', schema));
});

test('server URLs must be nats:// URLs', (t) => {
  const p = problems('nats:\n  servers: [http://x]\n  user: u\n  password: p\n');
  t.is(p[0], 'router.yml:2 nats.servers[0]: expected a nats:// URL such as nats://10.0.0.1:4222');
});

test('YAML syntax errors name the line', (t) => {
  const p = problems('nats:\n  servers: [nats://x:1\n  user: u\n');
  t.regex(p[0]!, /^router\.yml:\d+ /);
});

test('a duplicate key is an error, not a silent override', (t) => {
  const p = problems(good + 'index: 1\nindex: 2\n');
  t.regex(p[0]!, /^router\.yml:6 .*unique/i);
});

test('an empty file reports the required keys', (t) => {
  t.deepEqual(problems(''), ['router.yml:1 nats: required']);
});

import test from 'ava';
import { ConfigError } from '../../kernel/component/errors.ts';
import { parseDirectorConfig } from '../../orchestrator/director/config.ts';

const good = ['data_dir: /var/vcap/store/director', 'admin:', '  user: admin', '  password: secret-password', 'token:', `  secret: ${'s'.repeat(32)}`].join('\n') + '\n';

function problems(text: string): string[] {
  try {
    parseDirectorConfig(text, '/etc/ingot/director.yml');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

test('fills defaults: listen, mbus, tasks, blobstore', (t) => {
  const c = parseDirectorConfig(good);
  t.deepEqual(c.listen, { host: '127.0.0.1', port: 25555 });
  t.is(c.mbus.nats_server, '/usr/sbin/nats-server');
  t.is(c.mbus.port, 4222);
  t.is(c.tasks.max_concurrent, 4);
  t.is(c.token.ttl_s, 3600);
  t.is(c.cpi, 'local');
});

test('names file, line and key for a wrong type', (t) => {
  t.deepEqual(problems(good + 'mbus:\n  port: four\n'), ['director.yml:8 mbus.port: expected a number, got string']);
});

test('reports every problem at once, missing keys and unknown ones included', (t) => {
  const p = problems(['data_dir: /d', 'admin:', '  user: admin', '  password: short', 'listen:', '  port: 99999', 'bogus: 1', 'blobstore:', '  url: ftp://x'].join('\n') + '\n');
  t.true(p.includes('director.yml:4 admin.password: expected at least 8 characters'), p.join('\n'));
  t.true(p.includes('director.yml:6 listen.port: number must be less than or equal to 65535'), p.join('\n'));
  t.true(p.includes('director.yml:1 token: required'), p.join('\n'));
  t.true(p.includes('director.yml:7: unknown key (bogus)'), p.join('\n'));
  t.true(p.some((l) => l.startsWith('director.yml:9 blobstore.url: expected an http:// URL')), p.join('\n'));
});

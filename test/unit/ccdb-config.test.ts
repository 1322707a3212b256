// The ccdb's config: defaults, and every problem named at once with file, line and key.
import test from 'ava';
import { ConfigError, parseConfig } from '../../kernel/component/mod.ts';
import { ccdbConfig } from '../../kernel/ccdb/config.ts';

const nats = 'nats:\n  servers: [nats://10.0.0.1:4222]\n  user: u\n  password: p\n';
const good = `${nats}dir: /var/vcap/store/ccdb\ndatabases:\n  - {name: ccdb, user: cloud_controller, password: secret}\n`;

function problems(text: string): string[] {
  try {
    parseConfig(text, '/var/vcap/jobs/ccdb/config/ccdb.yml', ccdbConfig);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

test('fills the defaults: all addresses, 5432, Debian 15 binaries, run as postgres', (t) => {
  const c = parseConfig(good, 'ccdb.yml', ccdbConfig);
  t.is(c.host, '0.0.0.0');
  t.is(c.port, 5432);
  t.is(c.postgres.bin_dir, '/usr/lib/postgresql/15/bin');
  t.is(c.postgres.run_as, 'postgres');
  t.deepEqual(c.postgres.settings, {});
  t.deepEqual(c.databases, [{ name: 'ccdb', user: 'cloud_controller', password: 'secret' }]);
});

test('dir and databases are required, each named', (t) => {
  t.deepEqual(problems(nats), ['ccdb.yml:1 dir: required', 'ccdb.yml:1 databases: required']);
});

test('every problem is named at once, with its line', (t) => {
  const text = [
    nats.trimEnd(),
    'dir: relative/store', // 5
    'port: 70000', // 6
    'postgres:', // 7
    '  run_as: root', // 8
    '  settings: {port: 1, "Bad-Name": x}', // 9
    'databases:', // 10
    '  - {name: ccdb, user: postgres, password: a}', // 11
    '  - {name: ccdb, user: cc, password: ""}', // 12
    `  - {name: "${'x'.repeat(64)}", user: cc, password: b, extra: 1}`, // 13
    'typo: 1', // 14
    '',
  ].join('\n');
  t.deepEqual(problems(text).sort(), [
    'ccdb.yml:11 databases[0].user: postgres is the cluster\'s superuser; name another role',
    'ccdb.yml:12 databases[1].name: ccdb is also databases[0]',
    'ccdb.yml:12 databases[1].password: string must contain at least 1 character(s)',
    'ccdb.yml:13 databases[2].password: role cc is given another password by an earlier entry; a role has one password',
    'ccdb.yml:13 databases[2]: unknown key (extra)',
    'ccdb.yml:13 databases[2].name: at most 63 bytes (PostgreSQL would cut it)',
    'ccdb.yml:14: unknown key (typo)',
    'ccdb.yml:5 dir: expected an absolute path',
    'ccdb.yml:6 port: number must be less than or equal to 65535',
    'ccdb.yml:8 postgres.run_as: must not be root (PostgreSQL refuses it); name an unprivileged user',
    'ccdb.yml:9 postgres.settings.Bad-Name: a setting name is lower-case letters, digits, "_" and "."',
    'ccdb.yml:9 postgres.settings.port: set by the component itself (host, port, dir)',
  ].sort());
});

test('cross-entry problems: a database twice, a role with two passwords, settings the component owns', (t) => {
  const text = [
    nats.trimEnd(),
    'dir: /store',
    'postgres: {settings: {listen_addresses: "*"}}', // 6
    'databases:',
    '  - {name: ccdb, user: cc, password: one}', // 8
    '  - {name: ccdb, user: other, password: two}', // 9
    '  - {name: uaa, user: cc, password: three}', // 10
    '',
  ].join('\n');
  t.deepEqual(problems(text), [
    'ccdb.yml:9 databases[1].name: ccdb is also databases[0]',
    'ccdb.yml:10 databases[2].password: role cc is given another password by an earlier entry; a role has one password',
    'ccdb.yml:6 postgres.settings.listen_addresses: set by the component itself (host, port, dir)',
  ]);
});

test('an empty databases list is refused', (t) => {
  t.deepEqual(problems(`${nats}dir: /store\ndatabases: []\n`), ['ccdb.yml:6 databases: expected at least one database']);
});

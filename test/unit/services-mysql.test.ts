import test from 'ava';
import { parseConfig } from '../../kernel/component/mod.ts';
import { nodeConfig } from '../../kernel/services/node/config.ts';
import {
  account,
  bindStatements,
  grantPattern,
  killStatement,
  mysqlBindingUser,
  mysqlCredentials,
  mysqlUnitNames,
  planChangeStatements,
  quoteIdent,
  quoteLiteral,
  renderInitFile,
  serverArgs,
  sessionMemoryMb,
} from '../../kernel/services/nodes/mysql/mysql-sql.ts';
import { lenencInt, nativePassword, parseErr, parseHandshake } from '../../kernel/services/nodes/mysql/mysql-wire.ts';
import { configProblems } from '../helpers/services-config.ts';

const nats = 'nats:\n  servers: [nats://10.0.0.1:4222]\n  user: u\n  password: p\n';
const node = (extra = ''): string => `${nats}label: mysql\nplans:\n  default:\n    memory_mb: 64\n    max_clients: 8\ncapacity: 10\nbase_dir: /var/vcap/store/mysql\n${extra}`;
const plan = { memory_mb: 64, max_clients: 4, capacity_units: 1, size_mb: 100 };

test('names: a database and a user per binding, short enough for MariaDB user names', (t) => {
  const n = mysqlUnitNames('4f2a9c1e-0b6d-4e1a-9d3f-7a8b6c5d4e3f');
  t.regex(n.database, /^d_4f2a9c1e0b6d4e1a_[0-9a-f]{12}$/);
  const user = mysqlBindingUser('i-1', 'b-1');
  t.true(user.length <= 32);
  t.not(user, mysqlBindingUser('i-2', 'b-1'));
});

test('quoting: backticks doubled, literals that no sql_mode can reinterpret, GRANT wildcards escaped', (t) => {
  t.is(quoteIdent('we`ird'), '`we``ird`');
  t.is(quoteLiteral('abc_123'), "'abc_123'");
  t.is(quoteLiteral("it's\\"), `X'${Buffer.from("it's\\").toString('hex')}'`);
  t.is(grantPattern('d_ab%c'), '`d\\_ab\\%c`');
  t.is(account('b_x'), "'b_x'@'%'");
  t.throws(() => killStatement('1; DROP DATABASE x'));
  t.is(killStatement('42'), 'KILL CONNECTION 42');
});

test('bind: a user of its own with the plan connection limit, on its database only; born read-only while over size', (t) => {
  const n = mysqlUnitNames('i-1');
  const user = mysqlBindingUser('i-1', 'b-1');
  const sql = bindStatements(n, user, 'abc123', plan, false);
  t.true(sql.includes(`CREATE USER '${user}'@'%' IDENTIFIED BY 'abc123' WITH MAX_USER_CONNECTIONS 4`));
  t.true(sql.includes(`GRANT ALL PRIVILEGES ON ${grantPattern(n.database)}.* TO '${user}'@'%'`));
  t.is(bindStatements(n, user, 'abc123', plan, true).at(-1), `REVOKE INSERT, UPDATE, CREATE ON ${grantPattern(n.database)}.* FROM '${user}'@'%'`);
});

test('a plan change: every user of the unit gets the new connection limit', (t) => {
  const user = mysqlBindingUser('i-1', 'b-1');
  t.deepEqual(planChangeStatements([user], { ...plan, max_clients: 9 }), [`ALTER USER '${user}'@'%' WITH MAX_USER_CONNECTIONS 9`]);
  t.deepEqual(planChangeStatements([], plan), []);
});

test('server: no system config, own socket and port, session memory capped by the strictest plan', (t) => {
  const cfg = parseConfig(node(), 'node.yml', nodeConfig).mysql;
  const args = serverArgs(cfg, '10.0.0.5', { default: plan, big: { ...plan, memory_mb: 1024 } }, { dataDir: '/b/mysql/data', socket: '/b/mysql/s', pidFile: '/b/p', logFile: '/b/l', initFile: '/b/i' });
  t.is(args[0], '/usr/sbin/mariadbd');
  t.is(args[1], '--no-defaults');
  for (const a of ['--datadir=/b/mysql/data', '--port=3307', '--bind-address=10.0.0.5', '--maximum-max-heap-table-size=16M', '--init-file=/b/i']) t.true(args.includes(a), a);
  t.is(sessionMemoryMb({ p: { ...plan, memory_mb: 1, max_clients: 100 } }), 1);
  const init = renderInitFile('secret123');
  t.true(init.includes("ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('secret123')"));
  t.true(init.includes("User = ''"));
});

test('credentials: uri and jdbcUrl with escaped user and password', (t) => {
  const c = mysqlCredentials({ host: 'h', port: 3307, name: 'd_x', username: 'u@x', password: 'p/w' });
  t.is(c.uri, 'mysql://u%40x:p%2Fw@h:3307/d_x');
  t.is(c.jdbcUrl, 'jdbc:mysql://h:3307/d_x?user=u%40x&password=p%2Fw');
});

test('wire: native password scramble, length-encoded integers, ERR packets, the greeting', (t) => {
  const seed = Buffer.from('0123456789abcdefghij');
  t.is(nativePassword('', seed).length, 0);
  t.is(nativePassword('pw', seed).length, 20);
  t.deepEqual(nativePassword('pw', seed), nativePassword('pw', seed));
  t.notDeepEqual(nativePassword('pw', seed), nativePassword('pw', Buffer.from('x'.repeat(20))));
  t.deepEqual(lenencInt(Buffer.from([0xfa]), 0), { value: 250n, end: 1 });
  t.deepEqual(lenencInt(Buffer.from([0xfc, 0x01, 0x02]), 0), { value: 0x0201n, end: 3 });
  const err = parseErr(Buffer.concat([Buffer.from([0xff, 0x1d, 0x04]), Buffer.from('#28000Access denied')]));
  t.is(err.errno, 0x041d);
  t.is(err.sqlState, '28000');
  t.is(err.message, 'Access denied');
  const greeting = Buffer.concat([
    Buffer.from([10]), Buffer.from('10.11.19-MariaDB\0'), Buffer.from([7, 0, 0, 0]), seed.subarray(0, 8), Buffer.from([0]),
    Buffer.from([0xff, 0xf7, 45, 2, 0, 0xff, 0x81, 21]), Buffer.alloc(10), seed.subarray(8), Buffer.from([0]), Buffer.from('mysql_native_password\0'),
  ]);
  const h = parseHandshake(greeting);
  t.is(h.threadId, 7);
  t.deepEqual(h.seed, seed);
  t.is(h.serverVersion, '10.11.19-MariaDB');
});

test('config: mysql defaults and bad values named', (t) => {
  const c = parseConfig(node(), 'node.yml', nodeConfig);
  t.is(c.mysql.port, 3307);
  t.is(c.mysql.run_as, 'mysql');
  t.is(c.mysql.buffer_pool_mb, 64);
  const bad = configProblems(node('mysql:\n  port: 0\n  buffer_pool_mb: 1\n'), 'node.yml', nodeConfig);
  t.true(bad.some((p) => p.includes('mysql.port')), bad.join('\n'));
  t.true(bad.some((p) => p.includes('mysql.buffer_pool_mb')), bad.join('\n'));
});

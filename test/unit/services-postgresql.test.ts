import test from 'ava';
import { parseConfig } from '../../kernel/component/mod.ts';
import { nodeConfig } from '../../kernel/services/node/config.ts';
import {
  bindStatements,
  freezeStatements,
  pgBindingRole,
  pgCredentials,
  pgUnitNames,
  planChangeStatements,
  provisionStatements,
  quoteIdent,
  quoteLiteral,
  renderPgHba,
  sqlName,
  thawStatements,
  workMemKb,
} from '../../kernel/services/nodes/postgresql/pg-sql.ts';
import { configProblems } from '../helpers/services-config.ts';

const nats = 'nats:\n  servers: [nats://10.0.0.1:4222]\n  user: u\n  password: p\n';
const node = (extra = '', plan = '    memory_mb: 64\n'): string => `${nats}label: postgresql\nplans:\n  default:\n${plan}capacity: 10\nbase_dir: /var/vcap/store/pg\n${extra}`;
const plan = { memory_mb: 64, max_clients: 4, capacity_units: 1, size_mb: 100 };

test('names: derived from ids, [a-z0-9_] only, at most 31 characters, distinct per id', (t) => {
  const id = '4F2A9C1E-0B6D-4E1A-9D3F-7A8B6C5D4E3F';
  const n = pgUnitNames(id);
  t.regex(n.database, /^d_4f2a9c1e0b6d4e1a_[0-9a-f]{12}$/);
  t.regex(n.owner, /^o_4f2a9c1e0b6d4e1a_[0-9a-f]{12}$/);
  t.not(pgUnitNames(id.toLowerCase()).database, n.database, 'ids differing in case are different units');
  t.not(pgBindingRole(id, 'b-1'), pgBindingRole(id, 'b-2'));
  t.not(pgBindingRole('i-1', 'b'), pgBindingRole('i-2', 'b'), 'a binding id is scoped by its instance');
  // Hostile ids yield harmless names.
  for (const hostile of ['x"; DROP DATABASE postgres; --', "a'b", '___', 'é'.repeat(100)]) {
    const name = sqlName('d', hostile);
    t.regex(name, /^[a-z0-9_]{1,31}$/);
  }
});

test('quoting: identifiers double-quoted, literals single-quoted, NUL refused', (t) => {
  t.is(quoteIdent('plain'), '"plain"');
  t.is(quoteIdent('we"ird'), '"we""ird"');
  t.is(quoteLiteral("it's"), "'it''s'");
  t.is(quoteLiteral('back\\slash'), "E'back\\\\slash'");
  t.throws(() => quoteIdent(''));
  t.throws(() => quoteIdent('a\0b'));
  t.throws(() => quoteLiteral('a\0b'));
});

test('a plan change: the database’s and each binding role’s connection limits, then the session settings', (t) => {
  const n = pgUnitNames('i-1');
  const sql = planChangeStatements(n, { ...plan, max_clients: 8 }, ['b-1']);
  t.deepEqual(sql.slice(0, 2), [`ALTER DATABASE "${n.database}" CONNECTION LIMIT 8`, `ALTER ROLE "b-1" CONNECTION LIMIT 8`]);
  t.true(sql.includes(`ALTER DATABASE "${n.database}" SET work_mem = '${workMemKb({ ...plan, max_clients: 8 })}kB'`));
  t.true(sql.some((x) => x.includes('temp_file_limit')));
});

test('provision: a clean slate, an owner role, a database closed to PUBLIC with the plan limits', (t) => {
  const n = pgUnitNames('i-1');
  const sql = provisionStatements(n, plan);
  t.is(sql[0], `DROP DATABASE IF EXISTS "${n.database}" WITH (FORCE)`);
  t.true(sql.includes(`CREATE ROLE "${n.owner}" NOLOGIN`));
  t.true(sql.includes(`CREATE DATABASE "${n.database}" OWNER "${n.owner}" CONNECTION LIMIT 4`));
  t.true(sql.includes(`REVOKE ALL ON DATABASE "${n.database}" FROM PUBLIC`));
  t.true(sql.includes(`ALTER DATABASE "${n.database}" SET work_mem = '16384kB'`));
  t.true(sql.includes(`ALTER DATABASE "${n.database}" SET temp_file_limit = '102400kB'`));
  t.is(workMemKb({ ...plan, memory_mb: 1, max_clients: 100 }), 64, 'work_mem has a floor');
});

test('bind: a NOINHERIT login role in the owner, limited, starting its sessions as the owner', (t) => {
  const n = pgUnitNames('i-1');
  const role = pgBindingRole('i-1', 'b-1');
  t.deepEqual(bindStatements(n, role, "pw'x", plan), [
    `CREATE ROLE "${role}" LOGIN NOINHERIT PASSWORD 'pw''x' CONNECTION LIMIT 4 IN ROLE "${n.owner}"`,
    `GRANT CONNECT ON DATABASE "${n.database}" TO "${role}"`,
    `ALTER ROLE "${role}" IN DATABASE "${n.database}" SET role = '${n.owner}'`,
  ]);
});

test('size: freezing hands everything to the frozen role and leaves the owner read, delete and truncate', (t) => {
  const n = pgUnitNames('i-1');
  const sql = freezeStatements(n, ['public', 'app']);
  t.deepEqual([sql[0], sql[1], sql.at(-1)], ['BEGIN', `REASSIGN OWNED BY "${n.owner}" TO "${n.frozen}"`, 'COMMIT'], 'in one transaction');
  t.true(sql.includes(`GRANT SELECT, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA "app" TO "${n.owner}"`));
  t.false(sql.some((s) => /INSERT|UPDATE|CREATE/.test(s)));
  t.deepEqual(thawStatements(n), [`REASSIGN OWNED BY "${n.frozen}" TO "${n.owner}"`]);
});

test('pg_hba: passwords everywhere, nothing trusted', (t) => {
  const hba = renderPgHba();
  t.false(/\btrust\b/.test(hba));
  t.true(hba.includes('host all all 0.0.0.0/0 scram-sha-256'));
});

test('credentials: uri and jdbcUrl with escaped user and password', (t) => {
  const c = pgCredentials({ host: '10.0.0.5', port: 5433, name: 'd_x', username: 'u@x', password: 'p/w' });
  t.is(c.uri, 'postgres://u%40x:p%2Fw@10.0.0.5:5433/d_x');
  t.is(c.jdbcUrl, 'jdbc:postgresql://10.0.0.5:5433/d_x?user=u%40x&password=p%2Fw');
  t.is(c.name, 'd_x');
});

test('config: postgresql defaults, size_mb optional, bad values named', (t) => {
  const c = parseConfig(node(), 'node.yml', nodeConfig);
  t.is(c.postgresql.port, 5433);
  t.is(c.postgresql.run_as, 'postgres');
  t.is(c.postgresql.bin_dir, '/usr/lib/postgresql/15/bin');
  t.is(c.plans.default!.size_mb, undefined);
  t.is(parseConfig(node('', '    memory_mb: 64\n    size_mb: 100\n'), 'node.yml', nodeConfig).plans.default!.size_mb, 100);
  const bad = configProblems(node('postgresql:\n  port: 70000\n  quota_interval_s: 0\n  colour: red\n', '    memory_mb: 64\n    size_mb: 0\n'), 'node.yml', nodeConfig);
  t.true(bad.some((p) => p.includes('postgresql.port')), bad.join('\n'));
  t.true(bad.some((p) => p.includes('postgresql.quota_interval_s')), bad.join('\n'));
  t.true(bad.some((p) => p.includes('colour')), bad.join('\n'));
  t.true(bad.some((p) => p.includes('plans.default.size_mb')), bad.join('\n'));
});

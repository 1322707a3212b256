// The statements the ccdb sends its cluster: what exists is kept, what is missing is made,
// passwords are set anew, and no name or password can step out of its quotes.
import test from 'ava';
import { ensureStatements, redactStatement, renderPgHba, type ClusterState } from '../../kernel/ccdb/sql.ts';

const empty: ClusterState = { roles: new Set(['postgres']), databases: new Map([['postgres', 'postgres']]) };

test('a fresh cluster: the role with LOGIN and its password, then its database, closed to PUBLIC', (t) => {
  t.deepEqual(ensureStatements([{ name: 'ccdb', user: 'cloud_controller', password: 's3cret' }], empty), [
    `CREATE ROLE "cloud_controller" WITH LOGIN PASSWORD 's3cret'`,
    `CREATE DATABASE "ccdb" OWNER "cloud_controller"`,
    `REVOKE ALL ON DATABASE "ccdb" FROM PUBLIC`,
  ]);
});

test('a second start: the password is set again (a rotation takes effect), nothing else', (t) => {
  const state: ClusterState = { roles: new Set(['postgres', 'cloud_controller']), databases: new Map([['ccdb', 'cloud_controller']]) };
  t.deepEqual(ensureStatements([{ name: 'ccdb', user: 'cloud_controller', password: 'rotated' }], state), [`ALTER ROLE "cloud_controller" WITH LOGIN PASSWORD 'rotated'`]);
});

test('a database owned by another role is handed to the configured one; a role shared by two entries is made once', (t) => {
  const state: ClusterState = { roles: new Set(['postgres', 'old']), databases: new Map([['ccdb', 'old']]) };
  t.deepEqual(
    ensureStatements(
      [
        { name: 'ccdb', user: 'cc', password: 'p' },
        { name: 'uaa', user: 'cc', password: 'p' },
      ],
      state,
    ),
    [`CREATE ROLE "cc" WITH LOGIN PASSWORD 'p'`, `ALTER DATABASE "ccdb" OWNER TO "cc"`, `ALTER ROLE "cc" WITH LOGIN PASSWORD 'p'`, `CREATE DATABASE "uaa" OWNER "cc"`, `REVOKE ALL ON DATABASE "uaa" FROM PUBLIC`],
  );
});

test('odd names and passwords stay inside their quotes', (t) => {
  const statements = ensureStatements([{ name: 'cc"; DROP DATABASE postgres; --', user: `ro'le"x`, password: `it's'; DROP ROLE postgres; -- \\` }], empty);
  t.deepEqual(statements, [
    `CREATE ROLE "ro'le""x" WITH LOGIN PASSWORD E'it''s''; DROP ROLE postgres; -- \\\\'`,
    `CREATE DATABASE "cc""; DROP DATABASE postgres; --" OWNER "ro'le""x"`,
    `REVOKE ALL ON DATABASE "cc""; DROP DATABASE postgres; --" FROM PUBLIC`,
  ]);
  // Every statement is one statement: no quote left open, nothing after it.
  for (const sql of statements) {
    const unquoted = sql.replace(/E?'(?:[^'\\]|''|\\\\)*'|"(?:[^"]|"")*"/g, '');
    t.false(/[;'"]/.test(unquoted), `${sql} → ${unquoted}`);
  }
});

test('a password never reaches a log line', (t) => {
  t.is(redactStatement(`ALTER ROLE "a" WITH LOGIN PASSWORD E'it''s \\\\ x'`), 'ALTER ROLE "a" WITH LOGIN PASSWORD …');
  t.is(redactStatement(`CREATE ROLE "a" WITH LOGIN PASSWORD 'plain'`), 'CREATE ROLE "a" WITH LOGIN PASSWORD …');
});

test('pg_hba.conf trusts nothing: SCRAM passwords on the socket and over TCP from anywhere', (t) => {
  const rules = renderPgHba().split('\n').filter((l) => l && !l.startsWith('#'));
  t.deepEqual(rules, ['local all all scram-sha-256', 'host all all 0.0.0.0/0 scram-sha-256', 'host all all ::/0 scram-sha-256']);
});

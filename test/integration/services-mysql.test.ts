// The MySQL service (MariaDB) end to end below the controller: a real service node owning a
// real mariadbd, a real gateway, a real nats-server; apps are played by wire-protocol
// sessions (mysql-wire.ts) using a binding's credentials. The restart test gets a world of
// its own.
import anyTest, { type TestFn } from 'ava';
import { MysqlClient, MysqlError, type QueryResult } from '../../kernel/services/nodes/mysql/mysql-wire.ts';
import { osbClient } from '../helpers/osb-conformance.ts';
import { planIdOf, updateInstance } from '../helpers/services-processes.ts';
import {
  bindSql,
  checkRestartAndUnprovision,
  instanceWithRow,
  provisionSql,
  refusedSoon,
  soon,
  succeedsSoon,
  sqlSuite,
  type SqlCredentials,
} from '../helpers/services-sql.ts';

const test = anyTest as TestFn<unknown>;
const sessions: MysqlClient[] = [];
const worlds = sqlSuite(test, 'mysql', () => {
  for (const s of sessions) s.close();
});

/** An app's session with a binding's credentials, in its database unless told another. */
async function connect(creds: SqlCredentials, database = creds.name): Promise<MysqlClient> {
  const s = await MysqlClient.connect({ host: creds.host, port: creds.port, user: creds.username, password: creds.password, database });
  sessions.push(s);
  return s;
}

async function query(creds: SqlCredentials, sql: string): Promise<QueryResult> {
  const s = await connect(creds);
  try {
    return await s.query(sql);
  } finally {
    s.close();
  }
}

test('a binding creates, writes and reads; a second binding shares the data; another instance cannot reach it', async (t) => {
  const { gateway } = await worlds.shared();
  const id = await provisionSql(gateway);
  const first = (await bindSql(gateway, id)).creds;
  t.regex(first.uri, /^mysql:\/\/b_[a-z0-9_]+:[0-9a-f]+@127\.0\.0\.1:\d+\/d_[a-z0-9_]+$/);
  t.regex(first.jdbcUrl, /^jdbc:mysql:\/\/127\.0\.0\.1:\d+\/d_/);
  await query(first, 'CREATE TABLE notes (id int AUTO_INCREMENT PRIMARY KEY, body text)');
  await query(first, "INSERT INTO notes (body) VALUES ('hello')");
  t.deepEqual((await query(first, 'SELECT body FROM notes')).rows, [{ body: 'hello' }]);

  const second = (await bindSql(gateway, id)).creds;
  t.not(second.username, first.username, 'each binding is a user of its own');
  t.not(second.password, first.password);
  await query(second, "INSERT INTO notes (body) VALUES ('again')");
  t.deepEqual((await query(second, 'SELECT body FROM notes ORDER BY id')).rows.map((r) => r.body), ['hello', 'again']);

  const other = (await bindSql(gateway, await provisionSql(gateway))).creds;
  t.not(other.name, first.name);
  const refused = await t.throwsAsync(connect(other, first.name), { instanceOf: MysqlError });
  t.is(refused?.errno, 1044, refused?.message); // access denied to database
  const s = await connect(other);
  await t.throwsAsync(s.query(`SELECT * FROM \`${first.name}\`.notes`), { instanceOf: MysqlError, message: /denied/ });
  // Nor can a binding see other databases, make users or read files.
  t.deepEqual((await s.query('SHOW DATABASES')).rows.map((r) => r.Database).sort(), ['information_schema', other.name].sort());
  await t.throwsAsync(s.query("CREATE USER 'intruder'@'%'"), { instanceOf: MysqlError, message: /denied/ });
  s.close();
});

test("the plan's connection limit is enforced: the n+1th connection is refused", async (t) => {
  const { gateway } = await worlds.shared();
  const { creds } = await bindSql(gateway, await provisionSql(gateway));
  const open = [await connect(creds), await connect(creds), await connect(creds)]; // max_clients: 3
  const refused = await t.throwsAsync(connect(creds), { instanceOf: MysqlError });
  t.is(refused?.errno, 1226, refused?.message); // max_user_connections
  open[0]!.close();
  await soon(async () => (await connect(creds)) !== undefined, 'a connection once one closed');
});

/** The session's user's MAX_USER_CONNECTIONS, as SHOW GRANTS tells it (0 when none is set). */
async function maxUserConnections(s: MysqlClient): Promise<number> {
  const grants = (await s.query('SHOW GRANTS')).rows.flatMap((r) => Object.values(r)).join('\n');
  return Number(/MAX_USER_CONNECTIONS (\d+)/.exec(grants)?.[1] ?? 0);
}

test('a plan change (OSB PATCH) applies the new connection limit to the running instance, sessions, data and bindings kept; back to default lowers it', async (t) => {
  const { gateway } = await worlds.shared();
  const { id, creds } = await instanceWithRow(gateway, async (c, sql) => (await query(c, sql)).rows);
  const open = [await connect(creds), await connect(creds), await connect(creds)]; // default: 3
  t.is(await maxUserConnections(open[0]!), 3);
  t.is((await t.throwsAsync(connect(creds), { instanceOf: MysqlError }))?.errno, 1226);

  await updateInstance(gateway, id, planIdOf('mysql', 'large'));
  // Three more sessions now (large: 6), while the first three stay open.
  const more = [await connect(creds), await connect(creds), await connect(creds)];
  t.is((await t.throwsAsync(connect(creds), { instanceOf: MysqlError }))?.errno, 1226);
  t.is(await maxUserConnections(more[0]!), 6);
  t.deepEqual((await open[0]!.query('SELECT v FROM kept')).rows, [{ v: 'before' }]);
  for (const s of [...open, ...more]) s.close();
  // A binding made after the change gets the new plan's limit too.
  const later = await connect((await bindSql(gateway, id)).creds);
  t.is(await maxUserConnections(later), 6);
  later.close();

  // No rule refuses a smaller plan: its limit applies, the data stays.
  await updateInstance(gateway, id, planIdOf('mysql', 'default'));
  const back = await soon(() => connect(creds), 'a session once the others closed');
  t.is(await maxUserConnections(back), 3);
  t.deepEqual((await back.query('SELECT v FROM kept')).rows, [{ v: 'before' }]);
  back.close();
});

test('unbind: the open session is killed and the credentials are refused', async (t) => {
  const { gateway } = await worlds.shared();
  const id = await provisionSql(gateway);
  const { bindingId, creds } = await bindSql(gateway, id);
  const keep = (await bindSql(gateway, id)).creds;
  const open = await connect(creds);
  await open.query('CREATE TABLE kept (v int)');
  t.is((await osbClient(gateway.broker).unbind(id, bindingId)).status, 200);
  await t.throwsAsync(open.query('SELECT 1'));
  const refused = await t.throwsAsync(connect(creds), { instanceOf: MysqlError });
  t.is(refused?.errno, 1045, refused?.message); // access denied for user
  t.deepEqual((await query(keep, 'SELECT count(*) AS n FROM kept')).rows, [{ n: '0' }]);
});

const refusedWrite = (err: unknown): err is MysqlError => err instanceof MysqlError && err.errno === 1142; // INSERT command denied

/** Fills a table `blobs` it makes until the node notices the default plan's size is exceeded; the refusal. */
async function fillUntilRevoked(creds: SqlCredentials): Promise<MysqlError> {
  await query(creds, 'CREATE TABLE blobs (b longtext)');
  // 1 MB a statement, on a fresh session each (the node kills sessions when it revokes),
  // until the node notices the 4 MB plan is exceeded and refuses.
  return refusedSoon(() => query(creds, 'INSERT INTO blobs SELECT REPEAT(SHA2(RAND(), 256), 16384)'), refusedWrite, 'writes refused over the size');
}

test("the plan's size is enforced: writes are revoked while over it and restored under it", async (t) => {
  const { gateway } = await worlds.shared();
  const { creds } = await bindSql(gateway, await provisionSql(gateway));
  const denied = await fillUntilRevoked(creds);
  t.is(denied.errno, 1142, denied.message); // INSERT command denied
  t.true(Number((await query(creds, 'SELECT count(*) AS n FROM blobs')).rows[0]!.n) > 0, 'reads still work');
  await t.throwsAsync(query(creds, 'CREATE TABLE more (v int)'), { instanceOf: MysqlError });
  await query(creds, 'TRUNCATE TABLE blobs');
  await succeedsSoon(() => query(creds, "INSERT INTO blobs VALUES ('x')"), 'writes back under the size');
  t.pass();
});

test('a plan change to a larger size gives a full database its writes back; back to the smaller size revokes them again', async (t) => {
  const { gateway } = await worlds.shared();
  const id = await provisionSql(gateway);
  const { creds } = await bindSql(gateway, id);
  await fillUntilRevoked(creds);
  await updateInstance(gateway, id, planIdOf('mysql', 'large'));
  await succeedsSoon(() => query(creds, "INSERT INTO blobs VALUES ('x')"), 'writes back under the larger size');
  await updateInstance(gateway, id, planIdOf('mysql', 'default'));
  t.is((await refusedSoon(() => query(creds, "INSERT INTO blobs VALUES ('y')"), refusedWrite, 'writes revoked again over the smaller size')).errno, 1142);
});

test('a node killed and started again keeps the data and the bindings; a killed server comes back; unprovision drops the database', async (t) => {
  await checkRestartAndUnprovision(t, await worlds.own('restart'), {
    rows: async (creds, sql) => (await query(creds, sql)).rows,
    connect,
    refusal: /Access denied for user/,
  });
});

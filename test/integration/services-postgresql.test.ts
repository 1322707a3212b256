// The PostgreSQL service end to end below the controller: a real service node owning a real
// PostgreSQL cluster, a real gateway, a real nats-server; apps are played by `pg` clients
// using a binding's credentials. The restart test gets a world of its own.
import anyTest, { type TestFn } from 'ava';
import pg from 'pg';
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
const clients: pg.Client[] = [];
const worlds = sqlSuite(test, 'postgresql', () => Promise.allSettled(clients.map((c) => c.end())).then(() => undefined));

/** An app's connection with a binding's credentials (its uri, as an app would use it). */
async function connect(creds: SqlCredentials, database?: string): Promise<pg.Client> {
  // The uri as an app would use it; another database only by taking the parts apart.
  const target = database ? { host: creds.host, port: creds.port, user: creds.username, password: creds.password, database } : { connectionString: creds.uri };
  const c = new pg.Client({ ...target, connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined); // a terminated session shows up as the next query's error
  await c.connect();
  clients.push(c);
  return c;
}

async function query(creds: SqlCredentials, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = await connect(creds);
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

test('a binding creates, writes and reads; a second binding shares the data; another instance cannot connect', async (t) => {
  const { gateway } = await worlds.shared();
  const id = await provisionSql(gateway);
  const first = (await bindSql(gateway, id)).creds;
  t.regex(first.uri, /^postgres:\/\/b_[a-z0-9_]+:[0-9a-f]+@127\.0\.0\.1:\d+\/d_[a-z0-9_]+$/);
  t.regex(first.jdbcUrl, /^jdbc:postgresql:\/\/127\.0\.0\.1:\d+\/d_/);
  await query(first, 'CREATE TABLE notes (id serial PRIMARY KEY, body text)');
  await query(first, 'INSERT INTO notes (body) VALUES ($1)', ['hello']);
  t.deepEqual((await query(first, 'SELECT body FROM notes')).rows, [{ body: 'hello' }]);

  const second = (await bindSql(gateway, id)).creds;
  t.not(second.username, first.username, 'each binding is a role of its own');
  t.not(second.password, first.password);
  await query(second, 'INSERT INTO notes (body) VALUES ($1)', ['again']);
  t.deepEqual((await query(second, 'SELECT body FROM notes ORDER BY id')).rows.map((r) => r.body), ['hello', 'again']);
  // Objects belong to the instance's owner role, not to the binding that made them.
  t.regex((await query(second, "SELECT tableowner FROM pg_tables WHERE tablename = 'notes'")).rows[0].tableowner, /^o_/);

  const other = (await bindSql(gateway, await provisionSql(gateway))).creds;
  t.not(other.name, first.name);
  const refused = await t.throwsAsync(connect(other, first.name));
  t.regex(refused?.message ?? '', /permission denied for database|not have CONNECT privilege/, String(refused?.message));
  // Nor is a binding a superuser, or able to make roles.
  await t.throwsAsync(query(first, 'CREATE ROLE intruder LOGIN'), { message: /permission denied/ });
});

test("the plan's connection limit is enforced: the n+1th connection is refused", async (t) => {
  const { gateway } = await worlds.shared();
  const id = await provisionSql(gateway);
  const { creds } = await bindSql(gateway, id);
  const other = (await bindSql(gateway, id)).creds;
  const open = [await connect(creds), await connect(creds), await connect(other)]; // max_clients: 3
  const refused = await t.throwsAsync(connect(creds));
  t.regex(refused!.message, /too many connections/);
  await open[0]!.end();
  await soon(async () => (await connect(creds)) !== undefined, 'a connection once one closed');
});

/** The limits a binding's sessions start with: its role's and its database's connection limits, work_mem. */
async function sessionLimits(c: pg.Client): Promise<{ role: number; database: number; work_mem: string }> {
  const sql = "SELECT (SELECT rolconnlimit FROM pg_roles WHERE rolname = session_user) AS role, (SELECT datconnlimit FROM pg_database WHERE datname = current_database()) AS database, current_setting('work_mem') AS work_mem";
  return (await c.query(sql)).rows[0];
}

test('a plan change (OSB PATCH) applies the new limits to the running instance, sessions, data and bindings kept; back to default lowers them', async (t) => {
  const { gateway } = await worlds.shared();
  const { id, creds } = await instanceWithRow(gateway, async (c, sql) => (await query(c, sql)).rows);
  const open = [await connect(creds), await connect(creds), await connect(creds)]; // default: 3
  t.deepEqual(await sessionLimits(open[0]!), { role: 3, database: 3, work_mem: '5461kB' }); // 16 MB / 3
  await t.throwsAsync(connect(creds), { message: /too many connections/ });

  await updateInstance(gateway, id, planIdOf('postgresql', 'large'));
  // Three more sessions now (large: 6), the open ones untouched; new sessions get the new work_mem.
  const more = [await connect(creds), await connect(creds), await connect(creds)];
  await t.throwsAsync(connect(creds), { message: /too many connections/ });
  t.deepEqual(await sessionLimits(more[0]!), { role: 6, database: 6, work_mem: '10922kB' }); // 64 MB / 6
  t.deepEqual((await open[0]!.query('SELECT v FROM kept')).rows, [{ v: 'before' }]);
  await Promise.all([...open, ...more].map((c) => c.end()));
  // A binding made after the change gets the new plan's limit too.
  const later = (await bindSql(gateway, id)).creds;
  t.is((await query(later, 'SELECT rolconnlimit FROM pg_roles WHERE rolname = session_user')).rows[0].rolconnlimit, 6);

  // No rule refuses a smaller plan: its limits apply, the data stays.
  await updateInstance(gateway, id, planIdOf('postgresql', 'default'));
  const back = await connect(creds);
  t.deepEqual(await sessionLimits(back), { role: 3, database: 3, work_mem: '5461kB' });
  t.deepEqual((await back.query('SELECT v FROM kept')).rows, [{ v: 'before' }]);
  await back.end();
});

test('unbind: the open session is terminated and the credentials are refused', async (t) => {
  const { gateway } = await worlds.shared();
  const id = await provisionSql(gateway);
  const { bindingId, creds } = await bindSql(gateway, id);
  const keep = (await bindSql(gateway, id)).creds;
  const open = await connect(creds);
  await open.query('CREATE TABLE kept (v int)');
  t.is((await osbClient(gateway.broker).unbind(id, bindingId)).status, 200);
  await t.throwsAsync(open.query('SELECT 1'), { message: /terminat|not queryable/ });
  await t.throwsAsync(connect(creds), { message: /password authentication failed/ });
  // What the binding made stays with the instance.
  t.is((await query(keep, 'SELECT count(*)::int AS n FROM kept')).rows[0].n, 0);
});

const refusedWrite = (err: unknown): err is Error => err instanceof Error && /permission denied/.test(err.message);

/** Fills a table `blobs` it makes until the node notices the default plan's size is exceeded; the refusal. */
async function fillUntilFrozen(c: pg.Client): Promise<Error> {
  await c.query('CREATE TABLE blobs (b text)');
  // About 1.3 MB a statement, until the node notices the 12 MB plan is exceeded (an empty
  // database is about 7.5 MB) and refuses.
  return refusedSoon(() => c.query('INSERT INTO blobs SELECT md5(random()::text) FROM generate_series(1, 20000)'), refusedWrite, 'writes refused over the size');
}

test("the plan's size is enforced: writes are revoked while over it and restored under it", async (t) => {
  const { gateway } = await worlds.shared();
  const { creds } = await bindSql(gateway, await provisionSql(gateway));
  const c = await connect(creds);
  const denied = await fillUntilFrozen(c);
  t.regex(denied.message, /permission denied/);
  t.true((await c.query('SELECT count(*)::int AS n FROM blobs')).rows[0].n > 0, 'reads still work');
  await t.throwsAsync(c.query('CREATE TABLE more (v int)'), { message: /permission denied/ });
  await c.query('TRUNCATE blobs');
  await succeedsSoon(() => c.query("INSERT INTO blobs VALUES ('x')"), 'writes back under the size');
  t.pass();
});

test('a plan change to a larger size lifts the freeze of a full database; back to the smaller size freezes it again', async (t) => {
  const { gateway } = await worlds.shared();
  const id = await provisionSql(gateway);
  const { creds } = await bindSql(gateway, id);
  const c = await connect(creds);
  await fillUntilFrozen(c);
  await updateInstance(gateway, id, planIdOf('postgresql', 'large'));
  await succeedsSoon(() => c.query("INSERT INTO blobs VALUES ('x')"), 'writes back under the larger size');
  await updateInstance(gateway, id, planIdOf('postgresql', 'default'));
  t.regex((await refusedSoon(() => c.query("INSERT INTO blobs VALUES ('y')"), refusedWrite, 'writes refused again over the smaller size')).message, /permission denied/);
});

test('a node killed and started again keeps the data and the bindings; a killed server comes back; unprovision drops the database', async (t) => {
  await checkRestartAndUnprovision(t, await worlds.own('restart'), {
    rows: async (creds, sql) => (await query(creds, sql)).rows,
    connect,
    refusal: /does not exist|password authentication failed/,
  });
});

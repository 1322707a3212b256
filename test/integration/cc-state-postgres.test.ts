// The controller store's cases (test/helpers/cc-state-cases.ts) on PostgreSQL: a private
// cluster started by the harness, a new database per case. And what only PostgreSQL has: a
// connection refused or a wrong password is one sentence naming host:port/database, never the
// password.
import anyTest, { type TestFn } from 'ava';
import { DbError, openStore } from '../../kernel/cloud-controller/db/mod.ts';
import { numberPlaceholders } from '../../kernel/cloud-controller/db/postgres.ts';
import { registerStoreCases } from '../helpers/cc-state-cases.ts';
import { PostgresCluster } from '../helpers/postgres.ts';
import { freePort } from '../helpers/ports.ts';

const test = anyTest as TestFn<unknown>;
let cluster: PostgresCluster | undefined;
let databases = 0;

test.serial.before(async () => {
  cluster = await PostgresCluster.start();
});

test.serial.after.always(async () => {
  await cluster?.stop();
});

registerStoreCases(test, { engine: 'postgres', database: () => cluster!.createDatabase(`cc_state_${++databases}`) });

test('postgres: the unix socket in ?host= serves the store too', async (t) => {
  const url = await cluster!.createDatabase('cc_socket');
  const store = await openStore(cluster!.socketUrl('cc_socket'));
  t.teardown(() => store.close());
  t.true(url.includes('127.0.0.1'));
  t.is(await store.users.count(), 0);
});

test('postgres: a refused connection and a wrong password are sentences without the password', async (t) => {
  const port = await freePort();
  const refused = await t.throwsAsync(openStore(`postgres://cc:s3cret-pw@127.0.0.1:${port}/ingot`), { instanceOf: DbError });
  t.is(refused.code, 'open_failed');
  t.is(refused.message, `Connecting to PostgreSQL at 127.0.0.1:${port}/ingot: connect ECONNREFUSED 127.0.0.1:${port}`);
  const wrong = await t.throwsAsync(openStore(`postgres://postgres:s3cret-pw@127.0.0.1:${cluster!.port}/postgres`), { instanceOf: DbError });
  t.regex(wrong.message, new RegExp(`^Connecting to PostgreSQL at 127\\.0\\.0\\.1:${cluster!.port}/postgres: password authentication failed`));
  t.notRegex(wrong.message, /s3cret/);
});

test('placeholders: ? becomes $n outside quotes only', (t) => {
  t.is(numberPlaceholders(`SELECT a FROM t WHERE b = ? AND c = 'x?''?' AND "d?" IN (?, ?)`), `SELECT a FROM t WHERE b = $1 AND c = 'x?''?' AND "d?" IN ($2, $3)`);
});

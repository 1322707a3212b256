// The ccdb as a real process on a real PostgreSQL cluster (Debian's binaries) and a real
// nats-server: it makes its databases, keeps their data across restarts, takes a rotated
// password, survives kill -9 of itself and of its server, stops its server on SIGTERM,
// refuses a bad config in one line, and carries a real cloud controller.
import anyTest, { type TestFn } from 'ava';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DatabaseEntry } from '../../kernel/ccdb/config.ts';
import { Ccdb } from '../helpers/ccdb.ts';
import { startController, type Controller } from '../helpers/cc-controller.ts';
import { eventually, runCli, writeConfig } from '../helpers/component-process.ts';
import { NatsServer } from '../helpers/nats-server.ts';

const test = anyTest as TestFn<unknown>;

/** An app's own database, with a name and a password that need quoting. */
const APP: DatabaseEntry = { name: "app's db", user: 'app"user', password: `it's a "secret" \\ with quotes` };
/** The controllers' database, as the release job makes it. */
const CC: DatabaseEntry = { name: 'ccdb', user: 'cloud_controller', password: 'cc-secret-pw' };

// Module-level, so after.always cleans up whatever a failing test left.
let nats: NatsServer | undefined;
let ccdb: Ccdb | undefined;
let other: Ccdb | undefined;
let controller: Controller | undefined;
const scratch: string[] = [];

test.before(async () => {
  nats = await NatsServer.start();
  ccdb = await Ccdb.create(nats, [APP, CC]);
  // What a crash during initdb leaves: the next start must redo it, not trust it.
  mkdirSync(join(ccdb.dir, 'data.initdb'), { recursive: true });
  writeFileSync(join(ccdb.dir, 'data.initdb', 'PG_VERSION'), '15\n');
});

test.after.always(async () => {
  await controller?.kill();
  if (controller) for (const dir of [controller.dir, dirname(controller.configFile)]) rmSync(dir, { recursive: true, force: true });
  await ccdb?.destroy();
  await other?.destroy();
  await nats?.stop();
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

const world = () => ({ db: ccdb!, nats: nats! });

test.serial('it starts (redoing a half-done initdb), turns healthy, and its role writes to its own database', async (t) => {
  const { db } = world();
  await db.start();
  t.is((await db.status('/healthz')).status, 200);
  t.false(existsSync(join(db.dir, 'data.initdb')), 'the leftover is gone');
  t.true(existsSync(join(db.dataDir, 'PG_VERSION')));
  await db.withClient(APP, async (c) => {
    await c.query('CREATE TABLE notes (id serial PRIMARY KEY, body text)');
    await c.query('INSERT INTO notes (body) VALUES ($1)', ['kept']);
    t.is((await c.query('SELECT current_user AS u, current_database() AS d')).rows[0].u, APP.user);
    // The numbers are the probe's (every 0.5 s): this session shows up at the next one.
    const varz = await eventually(async () => {
      const body = (await db.status('/varz')).body;
      return body.connections >= 1 && body;
    }, 5000, 'this session counted in /varz');
    t.deepEqual(varz.databases.map((d: { name: string }) => d.name).sort(), [APP.name, CC.name, 'postgres'].sort());
    t.is(varz.databases.find((d: { name: string }) => d.name === APP.name).owner, APP.user);
    t.true(varz.server.running && varz.server.accepting_connections);
    t.is(typeof varz.server.uptime_s, 'number');
    t.is(varz.config.databases[0].password, '[redacted]');
  });
  // Closed to other roles: the controllers' role cannot enter the app's database.
  await t.throwsAsync(db.withClient({ ...CC, name: APP.name }, async () => undefined), { message: /permission denied for database/ });
  // The superuser cannot be reached without its password (nothing is trusted).
  await t.throwsAsync(db.withClient({ name: 'postgres', user: 'postgres', password: 'guess' }, async () => undefined), { message: /password authentication failed/ });
});

test.serial('SIGTERM stops the server with it; a start keeps the data', async (t) => {
  const { db } = world();
  await db.proc!.kill('SIGTERM');
  t.deepEqual(await db.proc!.exited, { code: 0, signal: null });
  t.deepEqual(await db.postgresPids(), [], 'no postgres process of the cluster outlives the component');
  await db.start();
  t.is((await db.status('/healthz')).status, 200);
  t.deepEqual((await db.withClient(APP, (c) => c.query('SELECT body FROM notes'))).rows, [{ body: 'kept' }]);
});

test.serial('a changed password works after a restart, and the old one is refused', async (t) => {
  const { db } = world();
  const old = APP.password;
  const rotated: DatabaseEntry = { ...APP, password: `rotated'"\\pw` };
  db.databases = [rotated, CC];
  await db.proc!.kill('SIGTERM');
  await db.start();
  t.deepEqual((await db.withClient(rotated, (c) => c.query('SELECT body FROM notes'))).rows, [{ body: 'kept' }]);
  await t.throwsAsync(db.withClient(APP, async () => undefined, old), { message: /password authentication failed/ });
  // Back to the password the other tests use.
  db.databases = [APP, CC];
  await db.proc!.kill('SIGTERM');
  await db.start();
  await db.withClient(APP, (c) => c.query('SELECT 1'));
});

test.serial('kill -9 of the component: its server follows, and the next start works', async (t) => {
  const { db } = world();
  const old = (await db.status('/varz')).body.server.pid as number;
  await db.proc!.kill('SIGKILL');
  // Started at once: the old server may still be shutting down on its parent-death signal.
  await db.start();
  t.is((await db.status('/healthz')).status, 200);
  t.not((await db.status('/varz')).body.server.pid, old);
  // Gone, or a zombie waiting for init to reap it (which has no working directory any more).
  t.false((await db.postgresPids()).includes(old), 'the old server is gone');
  t.deepEqual((await db.withClient(APP, (c) => c.query('SELECT body FROM notes'))).rows, [{ body: 'kept' }]);
});

test.serial('kill -9 of the server: the component says so and exits non-zero; the next start works', async (t) => {
  const { db } = world();
  const pid = (await db.status('/varz')).body.server.pid as number;
  t.true(Number.isInteger(pid));
  process.kill(pid, 'SIGKILL');
  const exit = await db.proc!.exited;
  t.is(exit.code, 1);
  const said = await db.proc!.waitForLog((l) => l.msg === 'postgres exited; the ccdb stops', 1000);
  t.is(said.signal, 'SIGKILL');
  t.true(Array.isArray(said.last_lines));
  // Its postmaster.pid stays behind, and maybe a backend still holding the shared memory.
  await db.start();
  t.is((await db.status('/healthz')).status, 200);
  t.deepEqual((await db.withClient(APP, (c) => c.query('SELECT body FROM notes'))).rows, [{ body: 'kept' }]);
});

test.serial('/healthz is 503 while the server does not accept connections', async (t) => {
  const { db } = world();
  // SIGSTOP holds the postmaster: sessions cannot start, but it is not dead.
  const pid = (await db.status('/varz')).body.server.pid as number;
  process.kill(pid, 'SIGSTOP');
  try {
    await eventually(async () => (await db.status('/healthz')).status === 503, 15_000, '/healthz 503');
    t.pass();
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await eventually(async () => (await db.status('/healthz')).status === 200, 15_000, '/healthz 200 again');
});

test.serial('a real cloud controller runs on it: login and create an app', async (t) => {
  const { db } = world();
  controller = await startController(world().nats, { db: { url: db.url(CC) } });
  const app = await controller.admin.post('/v3/apps', { name: 'on-ccdb' });
  t.is(app.status, 201, JSON.stringify(app.body));
  t.is((await controller.admin.get(`/v3/apps/${app.body.guid}`)).body.name, 'on-ccdb');
  // The controller's tables are in the ccdb, owned by its role.
  const tables = await db.withClient(CC, (c) => c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user"));
  t.true(tables.rows[0]!.n > 0);
});

test('a bad config is refused with a one-line message naming every problem', async (t) => {
  const file = writeConfig('ccdb-bad', { nats: world().nats.componentConfig, port: 'five', databases: [] });
  scratch.push(dirname(file));
  const r = await runCli(['component', 'ccdb', '--config', file]);
  t.not(r.code, 0);
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0]!, /dir: required/);
  t.regex(lines[0]!, /port: expected a number, got string/);
  t.regex(lines[0]!, /databases: expected at least one database/);
});

test('a server that cannot start (its port taken) fails the start in one line with its last words, and leaves nothing running', async (t) => {
  other = await Ccdb.create(world().nats, [CC], world().db.port);
  const r = await runCli(['component', 'ccdb', '--config', other.writeConfig()], { timeoutMs: 60_000 });
  t.not(r.code, 0);
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0]!, /^ingot: postgres exited at start \(1\): .*(could not bind|could not create any TCP\/IP sockets)/);
  t.deepEqual(await other.postgresPids(), []);
});

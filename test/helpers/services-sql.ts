// A database service for tests (PostgreSQL or MySQL), on the shared service processes
// (services-processes.ts): a world is a nats-server of its own, one node whose server
// listens on a free port, and one gateway that hears it. The suites of both backends share
// these worlds and the checks below.
import type { ExecutionContext, TestFn } from 'ava';
import { readFile } from 'node:fs/promises';
import { eventually } from './component-process.ts';
import { NatsServer } from './nats-server.ts';
import { osbClient, registerOsbConformance, type BrokerUnderTest } from './osb-conformance.ts';
import { freePort } from './ports.ts';
import { bindInstance, pidsUnder, provisionInstance, restartServiceNode, startServiceGateway, startServiceNode } from './services-processes.ts';
import { gatewayHears, type RunningGateway, type RunningNode } from './services-redis.ts';

export type SqlLabel = 'postgresql' | 'mysql';

/**
 * Small plans: few connections (to feel the limit), a size just above an empty database's;
 * `large` is what a plan change moves an instance to: twice the connections, another work_mem
 * for PostgreSQL, and room above what a database the small size froze may have grown to.
 */
export const SQL_PLANS: Record<SqlLabel, Record<'default' | 'large', { memory_mb: number; max_clients: number; size_mb: number }>> = {
  // An empty PostgreSQL 15 database is about 7.5 MB; an empty MariaDB one a few kB.
  postgresql: { default: { memory_mb: 16, max_clients: 3, size_mb: 12 }, large: { memory_mb: 64, max_clients: 6, size_mb: 32 } },
  mysql: { default: { memory_mb: 16, max_clients: 3, size_mb: 4 }, large: { memory_mb: 32, max_clients: 6, size_mb: 16 } },
};

/** Each label's server, as /proc/<pid>/cmdline's first word (a postmaster keeps its argv; its backends do not). */
const SERVER_PROGRAM: Record<SqlLabel, RegExp> = { postgresql: /\/postgres$/, mysql: /mariadbd$/ };

/** A first start runs initdb or mariadb-install-db: give it time. */
const NODE_READY_MS = 90_000;

export interface SqlWorld {
  label: SqlLabel;
  nats: NatsServer;
  node: RunningNode;
  gateway: RunningGateway;
}

export interface SqlCredentials {
  host: string;
  port: number;
  name: string;
  username: string;
  password: string;
  uri: string;
  jdbcUrl: string;
}

/** One node and one gateway that hears it, on `nats` (the world's own: stopSqlWorld stops it). */
export async function startSqlWorld(label: SqlLabel, name: string, nats: NatsServer): Promise<SqlWorld> {
  const plans = SQL_PLANS[label];
  const node = await startServiceNode(nats, {
    label,
    nodeId: `${name}-node`,
    plans,
    extra: { [label]: { port: await freePort(), quota_interval_s: 0.5 } },
    readyTimeoutMs: NODE_READY_MS,
  });
  const gateway = await startServiceGateway(nats, { label, name, description: `${label}, a database per instance`, tags: [label, 'relational'], plans });
  await gatewayHears(gateway, [node.nodeId]);
  return { label, nats, node, gateway };
}

export function restartSqlNode(node: RunningNode): Promise<RunningNode> {
  return restartServiceNode(node, NODE_READY_MS);
}

export const provisionSql = provisionInstance;
export const bindSql = (gateway: RunningGateway, instanceId: string) => bindInstance<SqlCredentials>(gateway, instanceId);

/** The pids of the label's servers whose command line names `dir` (a node's base_dir). */
export function sqlServerPidsUnder(label: SqlLabel, dir: string): Promise<number[]> {
  return pidsUnder(dir, SERVER_PROGRAM[label]);
}

/** Stops a world's processes; whatever happened, no server of its node outlives the test. */
export async function stopSqlWorld(world: SqlWorld): Promise<void> {
  await world.gateway.proc.kill('SIGTERM');
  await world.node.proc.kill('SIGTERM');
  await world.nats.stop();
  for (const pid of await sqlServerPidsUnder(world.label, world.node.baseDir)) process.kill(pid, 'SIGKILL');
}

/** Waits for an expectation about a database that a timer on the node brings about. */
export function soon<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 20_000): Promise<T> {
  return eventually(check, timeoutMs, what);
}

/** Repeats `attempt` until the server refuses it as `isRefusal` says (other failures: tried again); the refusal. */
export function refusedSoon<E extends Error>(attempt: () => Promise<unknown>, isRefusal: (err: unknown) => err is E, what: string): Promise<E> {
  return soon(async () => {
    try {
      await attempt();
      return false;
    } catch (err) {
      if (isRefusal(err)) return err;
      throw err; // e.g. a session the node killed mid-statement: try again
    }
  }, what, 60_000);
}

/** Repeats `attempt` until it succeeds. */
export async function succeedsSoon(attempt: () => Promise<unknown>, what: string): Promise<void> {
  await soon(async () => (await attempt(), true), what);
}

/** How a suite plays an app against its database. */
export interface SqlApp {
  /** One statement on a fresh session with a binding's credentials; its rows. */
  rows(creds: SqlCredentials, sql: string): Promise<Array<Record<string, unknown>>>;
  /** A session with these credentials; rejects when the server refuses them. */
  connect(creds: SqlCredentials): Promise<unknown>;
  /** What the refusal of removed credentials says. */
  refusal: RegExp;
}

/** A new instance, bound, with a table `kept` holding the row 'before': what a plan change must keep. */
export async function instanceWithRow(gateway: RunningGateway, rows: SqlApp['rows']): Promise<{ id: string; creds: SqlCredentials }> {
  const id = await provisionSql(gateway);
  const { creds } = await bindSql(gateway, id);
  await rows(creds, 'CREATE TABLE kept (v text)');
  await rows(creds, "INSERT INTO kept VALUES ('before')");
  return { id, creds };
}

/**
 * The node's promises about its server, checked on a world of their own: it never runs as
 * root; a killed node takes its server with it and a restarted one brings it back with the
 * data and the bindings; a killed server comes back on its own; unprovision drops the
 * database and its credentials; SIGTERM stops the node and its server cleanly.
 */
export async function checkRestartAndUnprovision(t: ExecutionContext, w: SqlWorld, app: SqlApp): Promise<void> {
  const servers = () => sqlServerPidsUnder(w.label, w.node.baseDir);
  const id = await provisionSql(w.gateway);
  const { creds } = await bindSql(w.gateway, id);
  await app.rows(creds, 'CREATE TABLE kv (k varchar(64) PRIMARY KEY, v text)');
  await app.rows(creds, "INSERT INTO kv VALUES ('survives', 'yes')");
  const [pid] = await servers();
  t.truthy(pid, 'the server names base_dir on its command line');
  if (process.getuid?.() === 0) t.not(/^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1], '0', 'never root');

  await w.node.proc.kill('SIGKILL');
  await eventually(async () => (await servers()).length === 0, 30_000, 'the server stopping with its node');
  w.node = await restartSqlNode(w.node);
  t.deepEqual(await app.rows(creds, "SELECT v FROM kv WHERE k = 'survives'"), [{ v: 'yes' }]);

  const [before] = await servers();
  process.kill(before!, 'SIGKILL');
  await eventually(async () => (await servers()).some((p) => p !== before), 30_000, 'a new server');
  t.deepEqual(await soon(() => app.rows(creds, 'SELECT v FROM kv'), 'the restarted server answering'), [{ v: 'yes' }]);

  t.is((await osbClient(w.gateway.broker).deprovision(id)).status, 200);
  await t.throwsAsync(app.connect(creds), { message: app.refusal });

  await w.node.proc.kill('SIGTERM');
  t.deepEqual(await w.node.proc.exited, { code: 0, signal: null });
  t.deepEqual(await servers(), []);
}

/**
 * A suite's worlds, each with a nats-server of its own (so a gateway hears only its own
 * world's node): `shared()` is made once, for the tests that do not disturb it and for the
 * OSB conformance suite, registered here against its gateway; `own(name)` is for a test that
 * kills things. Every world stops after the suite, after the conformance suite's clean-up
 * (which needs the gateway) and after `cleanUp` (the suite's own sessions).
 */
export function sqlSuite(test: TestFn<unknown>, label: SqlLabel, cleanUp: () => Promise<void> | void): { shared(): Promise<SqlWorld>; own(name: string): Promise<SqlWorld> } {
  const worlds: SqlWorld[] = [];
  let shared: Promise<SqlWorld> | undefined;
  let broker: BrokerUnderTest | undefined;
  const own = async (name: string): Promise<SqlWorld> => {
    const w = await startSqlWorld(label, name, await NatsServer.start());
    worlds.push(w);
    return w;
  };
  const sharedWorld = (): Promise<SqlWorld> => (shared ??= own(`${label}-shared`));
  test.before(async () => {
    broker = (await sharedWorld()).gateway.broker;
  });
  registerOsbConformance(test, () => {
    if (!broker) throw new Error('the shared world is not up');
    return broker;
  });
  test.after.always(async () => {
    await cleanUp();
    for (const w of worlds) await stopSqlWorld(w);
  });
  return { shared: sharedWorld, own };
}

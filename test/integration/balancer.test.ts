// The local balancer (orchestrator/cpi/local/balancer.ts) as a real child process in front of
// real HTTP backends whose health endpoints the test flips to 503, as a draining router's does.
// The long-lived connections are WebSockets: what a router must keep carrying while it drains.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, get, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { stringify } from 'yaml';
import { eventually, INGOT_BIN, runCli } from '../helpers/component-process.ts';
import type { BalancerStatus } from '../../orchestrator/cpi/local/balancer.ts';
import { NatsServer } from '../helpers/nats-server.ts';
import { freePort } from '../helpers/ports.ts';
import { send, startRouter, type RouterUnderTest } from '../helpers/router-process.ts';
import { scratchDir } from '../helpers/tmp.ts';


/** A backend: answers its name on any request, echoes `name:message` on a WebSocket; its health endpoint can be flipped to 503. */
class Backend {
  healthy = true;
  port = 0;
  healthPort = 0;
  private readonly server: Server;
  private readonly health: Server;
  private readonly wss: WebSocketServer;

  constructor(readonly name: string) {
    this.server = createServer((_req, res) => res.end(name));
    this.server.keepAliveTimeout = 60_000;
    this.wss = new WebSocketServer({ server: this.server });
    this.wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`${name}:${m.toString()}`)));
    this.health = createServer((_req, res) => res.writeHead(this.healthy ? 200 : 503).end(this.healthy ? 'ok' : 'draining'));
  }

  async listen(): Promise<this> {
    for (const s of [this.server, this.health]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    this.healthPort = (this.health.address() as AddressInfo).port;
    return this;
  }

  get entry(): { host: string; port: number; health: { port: number } } {
    return { host: '127.0.0.1', port: this.port, health: { port: this.healthPort } };
  }

  close(): void {
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    this.server.close();
    this.health.close();
  }
}

const dir = scratchDir('balancer');
const configFile = join(dir, 'balancer.yml');
const a = new Backend('a');
const b = new Backend('b');
const c = new Backend('c');
let port = 0;
let statusPort = 0;
let proc: ChildProcess | undefined;
let output = '';
const sockets: WebSocket[] = [];
const cleanups: Array<() => Promise<void> | void> = [];

/** `ingot balancer --config FILE` as a child process, killed at the end; `output()` is what it wrote so far. */
function startBalancer(file: string): { proc: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [INGOT_BIN, 'balancer', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  cleanups.push(() => void child.kill('SIGKILL'));
  return { proc: child, output: () => out };
}

function writeBalancerConfig(backends: Backend[]): void {
  writeFileSync(
    configFile,
    stringify({ listen: { port }, status: { port: statusPort }, interval_ms: 250, timeout_ms: 200, rise: 2, drain_timeout_s: 2, backends: backends.map((x) => x.entry) }),
  );
}

type Varz = BalancerStatus;

async function varz(): Promise<Varz> {
  const res = await fetch(`http://127.0.0.1:${statusPort}/varz`);
  return (await res.json()) as Varz;
}

/** One request on a new connection through the balancer: the name of the backend that answered. */
function once(): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 3 s')));
    req.on('error', reject);
  });
}

async function tally(n: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const name = await once();
    seen[name] = (seen[name] ?? 0) + 1;
  }
  return seen;
}

/** A WebSocket through the balancer and the backend it landed on. */
async function openSocket(): Promise<{ ws: WebSocket; backend: string }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  sockets.push(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const answer = await say(ws, 'hello');
  return { ws, backend: answer.split(':')[0]! };
}

function say(ws: WebSocket, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no echo of ${message} within 3 s`)), 3000);
    ws.once('message', (m) => {
      clearTimeout(timer);
      resolve(m.toString());
    });
    ws.send(message);
  });
}

/** One WebSocket on each of the given backends (others opened on the way are closed). */
async function socketsOn(...names: string[]): Promise<Record<string, WebSocket>> {
  const out: Record<string, WebSocket> = {};
  for (let i = 0; i < 10 && Object.keys(out).length < names.length; i++) {
    const { ws, backend } = await openSocket();
    if (names.includes(backend) && !out[backend]) out[backend] = ws;
    else ws.close();
  }
  if (Object.keys(out).length < names.length) throw new Error(`no WebSocket reached each of ${names.join(', ')}`);
  return out;
}

test.before(async () => {
  await Promise.all([a.listen(), b.listen(), c.listen()]);
  port = await freePort();
  statusPort = await freePort();
  writeBalancerConfig([a, b]);
  proc = startBalancer(configFile).proc;
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await eventually(async () => (await varz()).healthy === 2, 20_000, `the balancer up with both backends (output: ${output})`);
});

test.after.always(async () => {
  for (const ws of sockets) ws.terminate();
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  for (const x of [a, b, c]) x.close();
  rmSync(dir, { recursive: true, force: true });
});

test.serial('new connections spread over both backends', async (t) => {
  const seen = await tally(20);
  t.deepEqual(Object.keys(seen).sort(), ['a', 'b']);
  t.is(seen.a, 10, 'round robin among ties');
});

test.serial('a backend turning 503 gets no new connection within 1 s; a WebSocket through it keeps working; back on 200 it is used again', async (t) => {
  // One open connection on each keeps least-connections tied, so both would get new ones.
  const ws = await socketsOn('a', 'b');
  t.deepEqual(Object.keys(await tally(8)).sort(), ['a', 'b']);

  const flipped = Date.now();
  a.healthy = false;
  await eventually(async () => (await varz()).backends.find((x) => x.port === a.port)?.health === 'down', 2000, 'a out of rotation');
  const detected = Date.now() - flipped;
  t.log(`taken out ${detected} ms after the flip`);
  t.true(detected < 1000, `taken out after ${detected} ms`);
  await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - flipped))));
  t.deepEqual(await tally(10), { b: 10 });
  t.is(await say(ws.a!, 'still there'), 'a:still there');
  t.is((await varz()).backends.find((x) => x.port === a.port)?.active, 1, 'the open connection is counted, not cut');

  a.healthy = true;
  await eventually(async () => (await tally(2)).a !== undefined, 3000, 'a used again');
  t.pass();
});

test.serial('SIGHUP applies a new backend list and keeps open connections', async (t) => {
  const { ws } = await (async () => {
    const open = await socketsOn('a');
    return { ws: open.a! };
  })();
  writeBalancerConfig([b, c]);
  proc!.kill('SIGHUP');
  await eventually(
    async () => {
      const v = await varz();
      return v.backends.map((x) => `${x.port}:${x.health}`).join(' ') === `${b.port}:up ${c.port}:up`;
    },
    3000,
    'the list [b, c] applied',
  );
  const seen = await tally(12);
  t.deepEqual(Object.keys(seen).sort(), ['b', 'c']);
  t.is(await say(ws, 'after reload'), 'a:after reload');
});

test.serial('a bad rewrite on SIGHUP keeps the current backends', async (t) => {
  writeFileSync(configFile, 'backends:\n  - host: 127.0.0.1\n    port: nope\n');
  proc!.kill('SIGHUP');
  await eventually(() => output.includes('reloading the config failed'), 3000, 'the reload refused');
  t.regex(output, /balancer\.yml:3 backends\[0\]\.port: expected a number/);
  t.deepEqual(Object.keys(await tally(4)).sort(), ['b', 'c']);
  writeBalancerConfig([b, c]);
});

test.serial('a backend that passes its check but refuses connections is taken out, and the client served by another', async (t) => {
  const ghost = { host: '127.0.0.1', port: await freePort(), health: { port: b.healthPort } };
  writeFileSync(configFile, stringify({ listen: { port }, status: { port: statusPort }, rise: 50, drain_timeout_s: 2, backends: [b.entry, ghost] }));
  proc!.kill('SIGHUP');
  await eventually(async () => (await varz()).backends.map((x) => `${x.port}:${x.health}`).join(' ') === `${b.port}:up ${ghost.port}:up`, 3000, 'the ghost in rotation');
  t.deepEqual(await tally(6), { b: 6 });
  const ghostState = (await varz()).backends[1]!;
  t.is(ghostState.health, 'down');
  t.regex(ghostState.last_error ?? '', /^connecting: .*ECONNREFUSED/);
  writeBalancerConfig([b, c]);
  proc!.kill('SIGHUP');
  await eventually(async () => (await varz()).backends.map((x) => `${x.port}:${x.health}`).join(' ') === `${b.port}:up ${c.port}:up`, 3000, '[b, c] again');
});

test.serial('with no backend up a new connection is closed at once', async (t) => {
  b.healthy = false;
  c.healthy = false;
  await eventually(async () => (await varz()).healthy === 0, 2000, 'no backend up');
  const started = Date.now();
  const outcome = await new Promise<string>((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let data = '';
    s.on('data', (d) => (data += d.toString()));
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
    s.on('close', () => resolve(`closed ${JSON.stringify(data)}`));
    s.setTimeout(3000, () => {
      s.destroy();
      resolve('hung');
    });
  });
  const took = Date.now() - started;
  t.not(outcome, 'hung');
  t.log(`${outcome} after ${took} ms`);
  t.true(took < 500, `closed after ${took} ms (${outcome})`);
  await t.throwsAsync(once());
  t.true((await varz()).totals.refused >= 2);
  b.healthy = true;
  c.healthy = true;
  await eventually(async () => (await varz()).healthy === 2, 3000, 'both back');
});

test.serial('a bad config is one line naming file:line and key', async (t) => {
  const bad = join(dirname(configFile), 'bad.yml');
  writeFileSync(bad, 'listen:\n  port: 8080\nbackends:\n  - host: 127.0.0.1\n    port: eighty\n    health: { port: 81 }\n');
  const { code, stderr } = await runCli(['balancer', '--config', bad]);
  t.is(code, 1);
  t.is(stderr, 'ingot: bad.yml:5 backends[0].port: expected a number, got string\n');
});

test.serial('a draining router (real, SIGTERM) gets no new connection within 1 s while requests keep succeeding', async (t) => {
  const nats = await NatsServer.start();
  cleanups.push(() => nats.stop());
  const routers: RouterUnderTest[] = [];
  for (const label of ['balancer-ra', 'balancer-rb']) {
    const r = await startRouter(label, { drain_wait_s: 3, drain_timeout_s: 10 }, nats);
    cleanups.push(() => r.stop());
    routers.push(r);
  }
  const [ra, rb] = routers as [RouterUnderTest, RouterUnderTest];
  const app = createServer((_req, res) => res.end('app'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  cleanups.push(() => void app.close());
  await ra.register((app.address() as AddressInfo).port, ['app.localhost']);
  for (const r of routers) await eventually(async () => (await r.get('app.localhost')).status === 200, 10_000, 'the route in each router');

  const file = join(dir, 'routers.yml');
  const listenPort = await freePort();
  const routerStatus = await freePort();
  writeFileSync(
    file,
    stringify({
      listen: { port: listenPort },
      status: { port: routerStatus },
      backends: routers.map((r) => ({ host: '127.0.0.1', port: r.port, health: { port: r.router.statusPort } })),
    }),
  );
  const balancer = startBalancer(file);
  const status = async (): Promise<Varz> => (await fetch(`http://127.0.0.1:${routerStatus}/varz`)).json() as Promise<Varz>;
  await eventually(async () => (await status()).healthy === 2, 20_000, `both routers in rotation (output: ${balancer.output()})`);
  const through = () => send({ port: listenPort, host: 'app.localhost' });
  for (let i = 0; i < 6; i++) t.is((await through()).body, 'app');
  t.deepEqual((await status()).backends.map((x) => x.total), [3, 3]);

  const terminated = Date.now();
  ra.router.proc.kill('SIGTERM');
  await eventually(async () => (await status()).backends[0]!.health === 'down', 2000, 'the draining router out of rotation');
  const detected = Date.now() - terminated;
  t.log(`draining router out ${detected} ms after SIGTERM`);
  t.true(detected < 1000);
  const before = (await status()).backends[0]!.total;
  for (let i = 0; i < 10; i++) t.is((await through()).status, 200);
  t.is((await status()).backends[0]!.total, before, 'no new connection reached the draining router');
});

test.serial('SIGTERM stops accepting and waits a bounded time for open connections', async (t) => {
  const { ws } = await openSocket();
  const exited = new Promise<number | null>((r) => proc!.once('exit', (code) => r(code)));
  const started = Date.now();
  proc!.kill('SIGTERM');
  await eventually(() => output.includes('stopping'), 3000, 'the balancer stopping');
  await t.throwsAsync(once(), undefined, 'no new connection after SIGTERM');
  t.is((await say(ws, 'draining')).endsWith(':draining'), true, 'open connections keep working while it waits');
  t.is(await exited, 0);
  const took = Date.now() - started;
  t.true(took >= 1500 && took < 5000, `exited after ${took} ms (drain_timeout_s 2)`);
});

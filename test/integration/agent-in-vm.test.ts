// The agent in a VM: the local CPI creates a namespace VM whose agent_command is the real agent;
// the mbus (a real nats-server with per-agent authorization) and the blobstore listen only on
// the bridge's gateway address, as a director's would. Over the mbus the agent answers ping,
// applies and starts a job served at the VM's own address, restarts it after kill -9, drains
// it, reports a crashing job failing; deleting the VM leaves nothing on the machine.
import anyTest, { type TestFn } from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { renderAuthorization } from '../../orchestrator/agent/permissions.ts';
import type { AgentState } from '../../orchestrator/agent/protocol.ts';
import { compileConfig } from '../../orchestrator/cpi/local/config.ts';
import { ensureHostNetwork } from '../../orchestrator/cpi/local/host-network.ts';
import { nodeProcessJob, publishSpec } from '../helpers/agent-fixtures.ts';
import { DirectorClient, waitFor } from '../helpers/agent-process.ts';
import type { BlobServer } from '../helpers/blob-server.ts';
import { cpiResult, localCpiFixture, manualNetwork, sweepCpi, vmLeftovers, vmPids, type CpiFixture } from '../helpers/cpi-local.ts';
import { freePort } from '../helpers/ports.ts';

const execFileP = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const AGENT_MAIN = join(ROOT, 'orchestrator/agent/main.ts');
const NATS_SERVER = process.env.NATS_SERVER ?? '/usr/sbin/nats-server';
const AGENT_ID = 'agent-in-vm-1';
const VM_HOST = 20;
// The daemonised agent starts in /, where `--import tsx` would not resolve: start it in the repo.
const AGENT_COMMAND = `cd '${ROOT}' && exec '${process.execPath}' --import tsx '${AGENT_MAIN}' --settings /var/vcap/bosh/settings.json`;

// Listens on every address of the VM, so the host reaches it at the VM's static IP.
const VM_HTTP_SERVER_JS = `
const { readFileSync } = require('node:fs');
const props = JSON.parse(readFileSync(process.env.INGOT_JOB_PROPERTIES, 'utf8'));
require('node:http').createServer((req, res) => res.end('hello from ' + props.greeting)).listen(props.port, '0.0.0.0');
process.on('SIGTERM', () => process.exit(0));
`;

interface Context {
  fx: CpiFixture;
  nats: ChildProcess;
  blobs: BlobServer;
  director: DirectorClient;
  stemcell: string;
  vms: string[];
  pidsSeen: number[];
}

const test = anyTest as TestFn<Context>;

/** A nats-server on the gateway with the rendered authorization: the director and this agent. */
async function startMbus(host: string, port: number, director: { user: string; password: string }, agent: { user: string; password: string }, dir: string): Promise<ChildProcess> {
  const conf = join(dir, 'nats.conf');
  await writeFile(conf, `listen: ${host}:${port}\nmax_payload: 1048576\n` + renderAuthorization({ director, agents: [{ agent_id: AGENT_ID, ...agent }] }));
  const proc = spawn(NATS_SERVER, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server did not start within 10 s:\n${output}`)), 10_000);
    const onData = (c: Buffer): void => {
      output += c.toString();
      if (output.includes('Server is ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${code}:\n${output}`));
    });
  });
  proc.stdout!.resume();
  proc.stderr!.resume();
  return proc;
}

/** A blobstore that serves GETs on the gateway address only (nothing on loopback). */
async function startGatewayBlobstore(host: string): Promise<BlobServer> {
  const blobs = new Map<string, Buffer>();
  const requests: BlobServer['requests'] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push({ method: req.method ?? 'GET', path });
    const blob = blobs.get(path);
    if (!blob) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length }).end(blob);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: (path) => `http://${host}:${port}${path}`,
    put: (path, body) => void blobs.set(path, body),
    fail: () => {
      throw new Error('not supported by the gateway blobstore');
    },
    hang: () => {
      throw new Error('not supported by the gateway blobstore');
    },
    uploads: new Map(),
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

test.before(async (t) => {
  const fx = await localCpiFixture({ agent_command: AGENT_COMMAND });
  t.context = { fx, vms: [], pidsSeen: [] } as unknown as Context;
  // The bridge (and its gateway address) exist before the first VM, so the mbus can bind there.
  await ensureHostNetwork(compileConfig(JSON.parse(await readFile(fx.configFile, 'utf8'))));
  const director = { user: 'director', password: randomBytes(12).toString('hex') };
  const agent = { user: `agent-${AGENT_ID}`, password: randomBytes(12).toString('hex') };
  const natsPort = await freePort(fx.gateway);
  t.context.nats = await startMbus(fx.gateway, natsPort, director, agent, fx.dir);
  const mbusUrl = `nats://${fx.gateway}:${natsPort}`;
  t.context.blobs = await startGatewayBlobstore(fx.gateway);
  t.context.director = await DirectorClient.connect(mbusUrl, director.user, director.password);
  const image = join(fx.dir, 'image');
  await writeFile(image, 'local stemcell image\n');
  t.context.stemcell = await cpiResult<string>(fx.configFile, 'create_stemcell', [image, {}]);
  // The director's env carries this agent's own credentials; the CPI writes them into settings.json.
  const env = { bosh: { mbus: { url: mbusUrl, ...agent }, blobstore: { url: t.context.blobs.url('') } } };
  const started = Date.now();
  const vm = await cpiResult<string>(fx.configFile, 'create_vm', [AGENT_ID, t.context.stemcell, { memory_mb: 512 }, manualNetwork(fx, VM_HOST), [], env]);
  t.context.vms.push(vm);
  t.log(`create_vm took ${Date.now() - started} ms`);
});

async function stopServers(c: Partial<Context>): Promise<void> {
  await c.director?.close().catch(() => undefined);
  await c.blobs?.close();
  const nats = c.nats;
  if (nats && nats.exitCode === null && nats.signalCode === null) {
    const exited = new Promise<void>((r) => nats.once('exit', () => r()));
    nats.kill('SIGKILL');
    await exited;
  }
}

test.after.always(async (t) => {
  const c: Partial<Context> = t.context ?? {};
  if (c.fx) for (const vm of c.vms ?? []) await cpiResult(c.fx.configFile, 'delete_vm', [vm]).catch(() => undefined);
  await stopServers(c);
  if (c.fx) {
    await sweepCpi(c.fx);
    await rm(c.fx.dir, { recursive: true, force: true });
  }
});

async function get(url: string): Promise<string | undefined> {
  try {
    return await (await fetch(url, { signal: AbortSignal.timeout(2000) })).text();
  } catch {
    return undefined;
  }
}

/** True when the agent answers pong within timeoutMs (a request sent before it subscribed is lost). */
async function ping(t: { context: Context }, timeoutMs: number): Promise<boolean> {
  const r = await t.context.director.request(AGENT_ID, { method: 'ping', arguments: [] }, timeoutMs).catch(() => null);
  return r !== null && 'value' in r && r.value === 'pong';
}

async function state(t: { context: Context }): Promise<AgentState> {
  return (await t.context.director.call(AGENT_ID, 'get_state')) as AgentState;
}

async function rememberPids(t: { context: Context }): Promise<void> {
  t.context.pidsSeen.push(...(await vmPids(t.context.fx.prefix, t.context.vms[0]!)));
}

test.serial('the agent in the VM answers ping over the mbus on the gateway', async (t) => {
  const started = Date.now();
  t.is(await waitFor('the agent in the VM to answer ping', async () => await ping(t, 1000), 60_000), true);
  t.log(`first pong ${Date.now() - started} ms after create_vm returned`);
  // The CPI wrote the director's per-agent credentials and the gateway addresses into the VM.
  const settings = JSON.parse(await readFile(join(t.context.fx.dir, 'data', 'vms', t.context.vms[0]!, 'vcap', 'bosh', 'settings.json'), 'utf8')) as {
    agent_id: string;
    mbus: { url: string; user: string };
    blobstore: { url: string };
  };
  t.like(settings, { agent_id: AGENT_ID, mbus: { user: `agent-${AGENT_ID}` } });
  t.true(settings.mbus.url.startsWith(`nats://${t.context.fx.gateway}:`));
  t.true(settings.blobstore.url.startsWith(`http://${t.context.fx.gateway}:`));
  // The agent really runs inside the VM: its pid is in the VM's network namespace.
  const pids = await vmPids(t.context.fx.prefix, t.context.vms[0]!);
  const cmdlines = await Promise.all(pids.map((p) => readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')));
  t.true(cmdlines.some((c) => c.includes(AGENT_MAIN)), 'the agent process is in the VM');
  await rememberPids(t);
});

test.serial('applies a job from the blobstore, serves at the VM address, restarts it after kill -9, drains it', async (t) => {
  t.timeout(120_000);
  const { director, blobs, fx } = t.context;
  // The VM has a network namespace of its own: a fixed port cannot clash with the host's.
  const port = 18080;
  const url = `http://${fx.net}.${VM_HOST}:${port}/`;
  const spec = await publishSpec(blobs, {
    name: 'web',
    jobs: [nodeProcessJob('web', VM_HTTP_SERVER_JS, { 'bin/drain': '#!/bin/sh\necho 1\n' }, { port, greeting: 'the vm' })],
  });
  let started = Date.now();
  t.deepEqual(await director.task(AGENT_ID, 'apply', [spec], 60_000), { value: 'applied' });
  t.true(blobs.requests.some((r) => r.path === `/${(spec.jobs as Array<{ blobstore_id: string }>)[0]!.blobstore_id}`), 'the agent fetched the job from the gateway blobstore');
  t.is(await director.call(AGENT_ID, 'start'), 'started');
  t.is(await waitFor('the job to serve at the VM address', () => get(url), 30_000), 'hello from the vm');
  t.log(`apply + start + first answer ${Date.now() - started} ms`);
  const before = await waitFor('the process to be running', async () => {
    const s = await state(t);
    return s.job_state === 'running' && s.processes[0]?.pid ? s.processes[0] : undefined;
  });
  await rememberPids(t);

  started = Date.now();
  process.kill(before.pid!, 'SIGKILL');
  const after = await waitFor(
    'the process to be restarted',
    async () => {
      const p = (await state(t)).processes[0];
      return p && p.state === 'running' && p.pid && p.pid !== before.pid && p.restarts > before.restarts ? p : undefined;
    },
    30_000,
  );
  t.is(await waitFor('the job to serve again', () => get(url), 30_000), 'hello from the vm');
  t.log(`restart after kill -9: ${Date.now() - started} ms (pid ${before.pid} → ${after.pid})`);
  await rememberPids(t);

  started = Date.now();
  t.deepEqual(await director.task(AGENT_ID, 'drain', ['update'], 30_000), { value: 1 });
  t.true(Date.now() - started >= 1000, 'drain waited the second bin/drain printed');
  t.deepEqual(await director.task(AGENT_ID, 'stop', [], 30_000), { value: 'stopped' });
  t.is(await get(url), undefined, 'stopped job no longer serves');
});

test.serial('a job that keeps crashing is reported failing', async (t) => {
  t.timeout(120_000);
  const { director, blobs } = t.context;
  const spec = await publishSpec(blobs, { name: 'crashy', jobs: [nodeProcessJob('crashy', 'process.exit(3)')] });
  t.deepEqual(await director.task(AGENT_ID, 'apply', [spec], 60_000), { value: 'applied' });
  const started = Date.now();
  t.is(await director.call(AGENT_ID, 'start'), 'started');
  // Default tuning: 5 crashes within 60 s, backing off from 1 s — about 15 s.
  const s = await waitFor(
    'the process to be failing',
    async () => {
      // job_state is `failing` whenever a process is not running; the process's own state
      // turns `failing` only after repeated crashes.
      const s = await state(t);
      return s.processes[0]?.state === 'failing' ? s : undefined;
    },
    90_000,
  );
  t.log(`failing after ${Date.now() - started} ms, ${s.processes[0]?.restarts} restarts`);
  t.is(s.job_state, 'failing');
  t.true((s.processes[0]?.restarts ?? 0) >= 4);
  t.deepEqual(await director.task(AGENT_ID, 'stop', [], 30_000), { value: 'stopped' });
});

test.serial('deleting the VM leaves nothing behind, and the sweep removes the bridge', async (t) => {
  const { fx } = t.context;
  await rememberPids(t);
  const vm = t.context.vms[0]!;
  const started = Date.now();
  await cpiResult(fx.configFile, 'delete_vm', [vm]);
  t.context.vms = [];
  t.log(`delete_vm took ${Date.now() - started} ms`);
  t.deepEqual(await vmLeftovers(fx.prefix, t.context.pidsSeen), []);
  t.is(await cpiResult<boolean>(fx.configFile, 'has_vm', [vm]), false);
  t.false(await ping(t, 2000), 'no agent answers after delete_vm');

  // What the VMs shared: the mbus and blobstore on the gateway, then the bridge and its routes.
  await stopServers(t.context);
  await sweepCpi(fx);
  t.is((await execFileP('/usr/sbin/ip', ['link', 'show', fx.bridge]).catch(() => ({ stdout: '' }))).stdout, '');
  const { stdout: routes } = await execFileP('/usr/sbin/ip', ['route', 'show', 'match', `${fx.net}.0/24`]);
  t.false(routes.split('\n').some((l) => l.includes(fx.net)), routes);
});

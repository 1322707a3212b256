// Three real DEA processes on one nats-server: the delay taint spreads an app's instances
// evenly over them (the controller takes the first dea.discover reply); one DEA stages and
// runs the binary, java and node examples; and an instance cannot reach a service listening
// on the host's own address (as NATS would be), while its DEA is connected.
import anyTest, { type TestFn } from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { chmod, cp, mkdir, writeFile } from 'node:fs/promises';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connect, type NatsConnection } from 'nats';
import { NatsServer } from '../helpers/nats-server.ts';
import { eventually, startComponentProcess, writeConfig, type StartedComponent } from '../helpers/component-process.ts';
import { buildDroplet, deaStartMessage, type BuiltDroplet } from '../helpers/droplets.ts';
import { startBlobServer, type BlobServer } from '../helpers/blob-server.ts';
import { startNpmRegistry, type NpmRegistry } from '../helpers/npm-registry.ts';
import { zipDirectory } from '../helpers/zip.ts';
import { hostAddress } from '../helpers/host-address.ts';
import { runPrefix, scratchDir } from '../helpers/tmp.ts';
import { freePort } from '../helpers/ports.ts';
import { KERNEL_BLOCKS } from '../helpers/kernel-blocks.ts';

const run = promisify(execFile);
const APP_DIR = fileURLToPath(new URL('../fixtures/apps/probe-app', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../examples', import.meta.url));
const STATUS_PASSWORD = 'dea-cluster-secret';
const DEAS = 3;

interface Dea {
  index: number;
  proc: StartedComponent;
  id: string;
}

interface Ctx {
  nats: NatsServer;
  nc: NatsConnection;
  blobs: BlobServer;
  registry: NpmRegistry;
  droplet: BuiltDroplet;
  deas: Dea[];
  host: string;
  messages: Array<{ subject: string; data: any; at: number }>;
  /** Scratch directories to remove at the end. */
  dirs: string[];
}
const test = anyTest as TestFn<Ctx>;

const has = (cmd: string): boolean => spawnSync('bash', ['-c', `command -v ${cmd}`]).status === 0;

test.before(async (t) => {
  t.timeout(120_000);
  const dirs: string[] = [];
  const nats = await NatsServer.start();
  dirs.push(dirname((nats as unknown as { configFile: string }).configFile));
  const nc = await connect({ servers: nats.url, user: nats.user, pass: nats.password });
  const messages: Ctx['messages'] = [];
  for (const s of ['router.register', 'router.unregister', 'droplet.exited', 'logs.*']) {
    nc.subscribe(s, { callback: (_e, m) => messages.push({ subject: m.subject, data: m.json(), at: Date.now() }) });
  }
  await nc.flush();
  const host = hostAddress();
  // The registry on the host's address: buildpacks run in containers, whose 127.0.0.1 is their own.
  const [blobs, registry] = await Promise.all([startBlobServer(), startNpmRegistry({ host })]);
  const droplet = await buildDroplet(APP_DIR, 'node server.js');
  dirs.push(dirname(droplet.file));
  blobs.put('/droplets/probe', readFileSync(droplet.file));
  const octet = KERNEL_BLOCKS.deaCluster.subnetOctet();
  const portBase = KERNEL_BLOCKS.deaCluster.portBase();
  // Partial context first, so that after.always can clean up whatever did start.
  const deas: Dea[] = [];
  t.context = { nats, nc, blobs, registry, droplet, deas, host, messages, dirs };
  await Promise.all(
    Array.from({ length: DEAS }, async (_, i) => {
      const baseDir = scratchDir(`dea-cluster-${i}`);
      dirs.push(baseDir);
      const configFile = writeConfig(`dea-cluster-cfg${i}`, {
        nats: { ...nats.componentConfig, servers: [nats.url] },
        index: i,
        local_ip: host,
        status: { host: '127.0.0.1', port: await freePort(), user: 'ingot', password: STATUS_PASSWORD },
        base_dir: baseDir,
        prefix: `${runPrefix()}${i}`,
        memory_mb: 2048,
        network: {
          subnet: `10.254.${octet}.${i * 64}/26`,
          host_ports: { start: portBase + i * 10, count: 10 },
          allow: [{ cidr: `${host}/32`, ports: [registry.port] }],
        },
        uid_range: { start: 21_000 + i * 100, count: 50 },
        heartbeat_interval_s: 1,
        advertise_interval_s: 1,
        stop_grace_s: 2,
        health_check_timeout_s: 60,
        drain_timeout_s: 20,
        // Only DEA 0 stages, so staging requests are handled by one known DEA.
        staging: i === 0 ? { enabled: true, npm_registry: registry.url, timeout_s: 180, memory_mb: 512, allow_local_buildpacks: true } : { enabled: false },
      });
      dirs.push(dirname(configFile));
      const proc = await startComponentProcess('dea', configFile, { statusPassword: STATUS_PASSWORD, readyTimeoutMs: 60_000 });
      deas.push({ index: i, proc, id: '' });
    }),
  );
  deas.sort((a, b) => a.index - b.index);
  // Learn each DEA's id (its index is the id's prefix) from the discover replies.
  const inbox = `_INBOX.ids-${randomUUID()}`;
  const ids = new Set<string>();
  const sub = nc.subscribe(inbox, { callback: (_e, m) => ids.add(m.json<{ dea_id: string }>().dea_id) });
  await eventually(() => {
    nc.publish('dea.discover', JSON.stringify({ app_id: randomUUID(), memory_mb: 1, disk_mb: 1, stack: 'bookworm' }), { reply: inbox });
    return ids.size >= DEAS;
  }, 30_000, 'a discover reply from every DEA');
  sub.unsubscribe();
  for (const d of deas) d.id = [...ids].find((id) => id.startsWith(`${d.index}-`))!;
  t.truthy(deas.every((d) => d.id), `ids ${[...ids].join(', ')}`);
});

test.after.always(async (t) => {
  const { deas, nc, nats, blobs, registry, dirs } = t.context ?? ({} as Partial<Ctx>);
  await Promise.all(
    (deas ?? []).map(async (d) => {
      if (d.proc.proc.exitCode === null && d.proc.proc.signalCode === null) {
        d.proc.proc.kill('SIGTERM');
        await Promise.race([d.proc.exited, new Promise((r) => setTimeout(r, 30_000))]);
        await d.proc.kill();
      }
    }),
  );
  await nc?.close();
  await nats?.stop();
  await Promise.all([blobs?.close(), registry?.close()]);
  for (const d of dirs ?? []) rmSync(d, { recursive: true, force: true });
});

function startMessage(t: { context: Ctx }, appId: string, index: number, over: Record<string, unknown> = {}) {
  return deaStartMessage({ uri: t.context.blobs.url('/droplets/probe'), sha256: t.context.droplet.sha256 }, appId, index, over);
}

type StartMsg = ReturnType<typeof startMessage>;

async function awaitRegister(t: { context: Ctx }, msg: StartMsg, timeoutMs = 90_000): Promise<{ host: string; port: number }> {
  const reg = await eventually(
    () => t.context.messages.find((m) => m.subject === 'router.register' && m.data.instance_id === msg.instance_id)?.data,
    timeoutMs,
    `router.register of ${msg.instance_id}`,
  );
  return { host: reg.host, port: reg.port };
}

/** dea.discover, taking the first reply (as the controller does), then dea.<id>.start. */
async function discoverAndStart(t: { context: Ctx }, msg: StartMsg): Promise<{ deaId: string; host: string; port: number }> {
  const { nc } = t.context;
  const reply = await nc.request('dea.discover', JSON.stringify({ app_id: msg.app_id, memory_mb: msg.limits.memory_mb, disk_mb: msg.limits.disk_mb, stack: 'bookworm' }), { timeout: 5000 });
  const { dea_id } = reply.json<{ dea_id: string }>();
  nc.publish(`dea.${dea_id}.start`, JSON.stringify(msg));
  return { deaId: dea_id, ...(await awaitRegister(t, msg)) };
}

async function findDroplet(t: { context: Ctx }, appId: string, settleMs = 1500): Promise<any[]> {
  const { nc } = t.context;
  const replies: any[] = [];
  const inbox = `_INBOX.find-${randomUUID()}`;
  const sub = nc.subscribe(inbox, { callback: (_e, m) => replies.push(m.json()) });
  await nc.flush();
  nc.publish('dea.find.droplet', JSON.stringify({ app_id: appId }), { reply: inbox });
  await new Promise((r) => setTimeout(r, settleMs));
  sub.unsubscribe();
  return replies;
}

async function stage(t: { context: Ctx }, appId: string, appDir: string, memoryMb: number, buildpack?: string): Promise<{ uri: string; sha256: string; staged: any }> {
  const staged = await requestStaging(t, appId, appDir, memoryMb, buildpack);
  if (staged.state !== 'STAGED') throw new Error(`staging ${appId} failed: ${staged.error}`);
  const { blobs } = t.context;
  const upload = blobs.uploads.get(`/droplets/${appId}`);
  if (!upload) throw new Error('no droplet was uploaded');
  blobs.put(`/droplets/${appId}`, upload.body);
  return { uri: blobs.url(`/droplets/${appId}`), sha256: staged.droplet_sha256, staged };
}

/** Asks for a staging and returns the reply, whatever its state. */
async function requestStaging(t: { context: Ctx }, appId: string, appDir: string, memoryMb: number, buildpack?: string): Promise<any> {
  const { nc, blobs } = t.context;
  blobs.put(`/packages/${appId}`, await zipDirectory(appDir));
  const reply = await nc.request(
    'staging.request',
    JSON.stringify({
      app_id: appId,
      build_id: `b-${appId}`,
      package_uri: blobs.url(`/packages/${appId}`),
      droplet_upload_uri: blobs.url(`/droplets/${appId}`),
      env: {},
      limits: { memory_mb: memoryMb, disk_mb: 1024 },
      ...(buildpack ? { buildpack } : {}),
    }),
    { timeout: 150_000 },
  );
  return reply.json<any>();
}

/** Starts a staged droplet on DEA 0 (the one that staged it). */
async function startOnDea0(t: { context: Ctx }, appId: string, droplet: { uri: string; sha256: string }, memoryMb: number) {
  const msg = startMessage(t, appId, 0, { droplet_uri: droplet.uri, droplet_sha256: droplet.sha256, limits: { memory_mb: memoryMb, disk_mb: 1024 } });
  t.context.nc.publish(`dea.${t.context.deas[0]!.id}.start`, JSON.stringify(msg));
  return { msg, at: await awaitRegister(t, msg) };
}

const get = async (url: string): Promise<{ status: number; text: string }> => {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, text: await res.text() };
};

test.serial('six sequential placements of one app spread 2-2-2 over three DEAs', async (t) => {
  t.timeout(240_000);
  const appId = randomUUID();
  const placed: string[] = [];
  for (let i = 0; i < 6; i++) {
    const msg = startMessage(t, appId, i);
    const at = await discoverAndStart(t, msg);
    placed.push(at.deaId);
    t.is((await get(`http://${at.host}:${at.port}/`)).text, `hello ${i}`);
  }
  t.log(`placements: ${placed.map((id) => id.split('-')[0]).join(' ')}`);
  const replies = await findDroplet(t, appId);
  t.is(replies.length, 6, 'every instance is found');
  const perDea = new Map<string, number>();
  for (const r of replies) {
    t.is(r.state, 'RUNNING');
    perDea.set(r.dea_id, (perDea.get(r.dea_id) ?? 0) + 1);
  }
  t.deepEqual(
    t.context.deas.map((d) => perDea.get(d.id) ?? 0),
    [2, 2, 2],
    `find.droplet replies per DEA: ${JSON.stringify(Object.fromEntries(perDea))}`,
  );
  t.context.nc.publish('dea.stop', JSON.stringify({ app_id: appId }));
  await eventually(() => t.context.messages.filter((m) => m.subject === 'droplet.exited' && m.data.app_id === appId && m.data.reason === 'STOPPED').length === 6, 30_000, 'six STOPPED');
});

test.serial('one DEA stages and runs the binary example', async (t) => {
  t.timeout(240_000);
  const dir = scratchDir('dea-cluster-binary');
  t.context.dirs.push(dir);
  await cp(join(EXAMPLES, 'binary-hello'), dir, { recursive: true });
  await run('cc', ['-O2', '-o', join(dir, 'hello-server'), join(dir, 'hello.c')]);
  const appId = randomUUID();
  const droplet = await stage(t, appId, dir, 128);
  t.is(droplet.staged.detected_buildpack, 'binary');
  const { at } = await startOnDea0(t, appId, droplet, 128);
  t.is(at.host, t.context.host);
  t.is((await get(`http://${at.host}:${at.port}/`)).text, 'Hello from binary-hello\n');
  t.context.nc.publish('dea.stop', JSON.stringify({ app_id: appId }));
});

test.serial('one DEA stages and runs the java example', async (t) => {
  t.timeout(240_000);
  if (!has('javac') || !has('jar')) {
    t.log('SKIPPED: javac/jar are not installed, so the java example cannot be built');
    t.pass();
    return;
  }
  const src = scratchDir('dea-cluster-java');
  t.context.dirs.push(src);
  const app = join(src, 'app');
  await mkdir(app, { recursive: true });
  await run('javac', ['-d', join(src, 'build'), join(EXAMPLES, 'java-hello/src/hello/Hello.java')]);
  await run('jar', ['--create', '--file', join(app, 'hello.jar'), '--main-class', 'hello.Hello', '-C', join(src, 'build'), '.']);
  const appId = randomUUID();
  const droplet = await stage(t, appId, app, 256);
  t.is(droplet.staged.detected_buildpack, 'java');
  const { at } = await startOnDea0(t, appId, droplet, 256);
  t.regex((await get(`http://${at.host}:${at.port}/`)).text, /^Hello from java-hello on java/);
  t.context.nc.publish('dea.stop', JSON.stringify({ app_id: appId }));
});

test.serial('one DEA stages node-hello (npm from the loopback registry) and runs it at 64 MB', async (t) => {
  t.timeout(240_000);
  const appId = randomUUID();
  const droplet = await stage(t, appId, join(EXAMPLES, 'node-hello'), 64);
  t.is(droplet.staged.detected_buildpack, 'nodejs');
  t.true(t.context.registry.tarballsServed.includes('cfenv@1.2.6'), 'npm installed from the loopback registry');
  const { msg, at } = await startOnDea0(t, appId, droplet, 64);
  const url = `http://${at.host}:${at.port}`;
  t.regex((await get(`${url}/`)).text, /^Hello from app-\w+ on node v20/);
  const env = JSON.parse((await get(`${url}/env`)).text);
  t.is(env.memoryLimit, '64m');
  t.is(env.nodeOptions, '--max-old-space-size=48');
  // It stays up: still RUNNING and answering some seconds later, and never exited.
  await new Promise((r) => setTimeout(r, 8000));
  const [found] = await findDroplet(t, appId);
  t.is(found?.state, 'RUNNING');
  t.is(found?.dea_id, t.context.deas[0]!.id);
  t.regex((await get(`${url}/`)).text, /^Hello from/);
  t.falsy(t.context.messages.find((m) => m.subject === 'droplet.exited' && m.data.instance_id === msg.instance_id));
  t.context.nc.publish('dea.stop', JSON.stringify({ app_id: appId }));
});

test.serial('buildpacks run in a container: their own uid and processes, no view of the DEA, no reach to the host but the registry', async (t) => {
  t.timeout(120_000);
  const { host, registry } = t.context;
  const sockets = new Set<Socket>();
  const listener: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => listener.listen(0, host, r));
  const closedPort = (listener.address() as { port: number }).port;
  const bp = scratchDir('dea-cluster-bp');
  t.context.dirs.push(bp);
  const probe = (port: number) =>
    `node -e "require('net').connect(${port}, '${host}').on('connect', function () { console.log('PORT ${port} open'); this.destroy(); }).on('error', (e) => console.log('PORT ${port} ' + e.code))"`;
  await writeScripts(bp, {
    detect: 'echo probe-bp',
    compile: [
      'echo "UID $(id -u)"',
      'echo "HOST $(hostname)"',
      'echo "BUILD $1"',
      'echo "PROCS $(ls /proc | grep -c "^[0-9]")"',
      `if [ -e '${t.context.dirs[0]}' ]; then echo 'DEA visible'; else echo 'DEA hidden'; fi`,
      `if touch "$(dirname "$0")/x" 2>/dev/null; then echo 'BP writable'; else echo 'BP read-only'; fi`,
      probe(registry.port),
      probe(closedPort),
      'echo "pid $$" > "$1/built-by"',
    ].join('\n'),
    release: "echo '---'; echo 'default_process_types:'; echo '  web: sleep 600'",
  });
  const appId = randomUUID();
  const app = scratchDir('dea-cluster-bp-app');
  t.context.dirs.push(app);
  await writeFile(join(app, 'README'), 'an app for the probe buildpack\n');
  try {
    await stage(t, appId, app, 128, bp);
  } finally {
    listener.close();
    for (const s of sockets) s.destroy();
  }
  const lines = t.context.messages.filter((m) => m.subject === `logs.${appId}`).map((m) => String(m.data.line));
  const said = (re: RegExp) => lines.find((l) => re.test(l)) ?? `(no line matching ${re} in ${JSON.stringify(lines)})`;
  const uid = Number(/^UID (\d+)$/.exec(said(/^UID /))?.[1]);
  t.true(uid >= 21_000 && uid < 21_050, `staged as a container uid of DEA 0's range, not ${uid}`);
  t.is(said(/^HOST /), 'HOST staging');
  t.is(said(/^BUILD /), 'BUILD /home/vcap/app', 'built where it will run');
  const procs = Number(/^PROCS (\d+)$/.exec(said(/^PROCS /))?.[1]);
  t.true(procs > 0 && procs < 10, `its own pid namespace: ${procs} processes seen`);
  t.is(said(/^DEA /), 'DEA hidden');
  t.is(said(/^BP /), 'BP read-only');
  t.is(said(new RegExp(`^PORT ${registry.port} `)), `PORT ${registry.port} open`, 'the registry is allowed');
  t.is(said(new RegExp(`^PORT ${closedPort} `)), `PORT ${closedPort} ECONNREFUSED`, 'the rest of the host is not');
});

test.serial('a buildpack over the staging memory is killed, and the staging error says out of memory', async (t) => {
  t.timeout(120_000);
  const bp = scratchDir('dea-cluster-bp-oom');
  t.context.dirs.push(bp);
  await writeScripts(bp, {
    detect: 'echo hog',
    compile: `node -e "const a = []; for (let i = 0; i < 200; i++) a.push(Buffer.alloc(8 << 20, 1)); console.log('allocated')"`,
    release: "echo '---'",
  });
  const app = scratchDir('dea-cluster-oom-app');
  t.context.dirs.push(app);
  await writeFile(join(app, 'README'), 'x\n');
  const staged = await requestStaging(t, randomUUID(), app, 128, bp);
  t.is(staged.state, 'FAILED', JSON.stringify(staged));
  t.regex(String(staged.error), /compile.*out of memory/i);
});

/** A buildpack of shell scripts, readable by every uid (a container's too). */
async function writeScripts(dir: string, scripts: Record<string, string>): Promise<void> {
  await chmod(dir, 0o755);
  await mkdir(join(dir, 'bin'), { mode: 0o755 });
  for (const [name, body] of Object.entries(scripts)) await writeFile(join(dir, 'bin', name), `#!/bin/bash\nset -e\n${body}\n`, { mode: 0o755 });
}

test.serial("an instance cannot reach a service on the host's address (where NATS would listen), while its DEA is connected", async (t) => {
  t.timeout(120_000);
  const host = t.context.host;
  const sockets = new Set<Socket>();
  const listener: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.end('INFO {}\r\n');
  });
  const port = await freePort(host);
  await new Promise<void>((r) => listener.listen(port, host, r));
  try {
    // The listener is reachable from the host itself.
    const fromHost = await new Promise<string>((resolve) => {
      const c = netConnect({ host, port });
      c.once('connect', () => (c.destroy(), resolve('connected')));
      c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    t.is(fromHost, 'connected', 'the listener is reachable from the host');
    const appId = randomUUID();
    const msg = startMessage(t, appId, 0);
    const at = await discoverAndStart(t, msg);
    const answer = (await get(`http://${at.host}:${at.port}/connect?host=${host}&port=${port}`)).text;
    t.log(`the instance connecting to ${host}:${port} got: ${answer}`);
    t.not(answer, 'connected');
    t.regex(answer, /^(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EACCES|EPERM|timeout)$/);
    // Its DEA is connected all the while: it answers find.droplet for the instance over NATS.
    const found = await findDroplet(t, appId);
    t.is(found.length, 1);
    t.is(found[0].state, 'RUNNING');
    t.context.nc.publish('dea.stop', JSON.stringify({ app_id: appId }));
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => listener.close(() => r()));
  }
});

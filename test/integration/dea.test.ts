// The DEA end to end with a real nats-server and real containers: it answers discover, runs
// a droplet in a container reachable through its mapped port, reports crashes (and never
// restarts), stops, evacuates, and adopts its instances after a restart.
import anyTest, { type TestFn } from 'ava';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from 'nats';
import { NatsServer } from '../helpers/nats-server.ts';
import { eventually, startComponentProcess, writeConfig, type StartedComponent } from '../helpers/component-process.ts';
import { readFileSync } from 'node:fs';
import { buildDroplet, deaStartMessage, type BuiltDroplet } from '../helpers/droplets.ts';
import { startBlobServer, type BlobServer } from '../helpers/blob-server.ts';
import { zipDirectory } from '../helpers/zip.ts';
import { hostAddress } from '../helpers/host-address.ts';
import { runPrefix, scratchDir } from '../helpers/tmp.ts';
import { freePort } from '../helpers/ports.ts';
import { KERNEL_BLOCKS } from '../helpers/kernel-blocks.ts';

interface Ctx {
  nats: NatsServer;
  nc: NatsConnection;
  blobs: BlobServer;
  droplet: BuiltDroplet;
  /** A holder: ava gives each test a shallow copy of the context, and a restart replaces the DEA. */
  box: { dea: StartedComponent };
  configFile: string;
  host: string;
  messages: Array<{ subject: string; data: any; at: number }>;
}
const test = anyTest as TestFn<Ctx>;
const APP_DIR = fileURLToPath(new URL('../fixtures/apps/probe-app', import.meta.url));
const STATUS_PASSWORD = 'dea-secret';

test.before(async (t) => {
  const nats = await NatsServer.start();
  const nc = await connect({ servers: nats.url, user: nats.user, pass: nats.password });
  const messages: Ctx['messages'] = [];
  for (const s of ['router.register', 'router.unregister', 'droplet.exited', 'dea.heartbeat', 'dea.advertise', 'logs.*']) {
    nc.subscribe(s, { callback: (_e, m) => messages.push({ subject: m.subject, data: m.json(), at: Date.now() }) });
  }
  await nc.flush();
  const blobs = await startBlobServer();
  const droplet = await buildDroplet(APP_DIR, 'node server.js');
  blobs.put('/droplets/probe', readFileSync(droplet.file));
  const host = hostAddress();
  const statusPort = await freePort();
  const configFile = writeConfig('dea', {
    nats: { ...nats.componentConfig, servers: [nats.url] },
    index: 0,
    local_ip: host,
    status: { host: '127.0.0.1', port: statusPort, user: 'ingot', password: STATUS_PASSWORD },
    base_dir: scratchDir('dea-base'),
    prefix: runPrefix(),
    memory_mb: 2048,
    network: { subnet: `10.254.${KERNEL_BLOCKS.dea.subnetOctet()}.0/26`, host_ports: { start: KERNEL_BLOCKS.dea.portBase(), count: 10 } },
    heartbeat_interval_s: 1,
    advertise_interval_s: 1,
    stop_grace_s: 2,
    evacuation_timeout_s: 30,
    health_check_timeout_s: 20,
    log_rate_lines_per_s: 50,
    drain_timeout_s: 20,
  });
  const dea = await startComponentProcess('dea', configFile, { statusPassword: STATUS_PASSWORD });
  t.context = { nats, nc, blobs, droplet, box: { dea }, configFile, host, messages };
});

test.after.always(async (t) => {
  const { box, nc, nats, blobs } = t.context;
  const dea = box?.dea;
  if (dea && dea.proc.exitCode === null) {
    dea.proc.kill('SIGTERM');
    await Promise.race([dea.exited, new Promise((r) => setTimeout(r, 20_000))]);
    await dea.kill();
  }
  await nc?.close();
  await nats?.stop();
  await blobs?.close();
});

function startMessage(t: { context: Ctx }, appId: string, index: number, over: Record<string, unknown> = {}) {
  return deaStartMessage({ uri: t.context.blobs.url('/droplets/probe'), sha256: t.context.droplet.sha256 }, appId, index, { env: { GREETING: 'hi' }, ...over });
}

async function discoverAndStart(t: { context: Ctx }, msg: ReturnType<typeof startMessage>): Promise<{ host: string; port: number }> {
  const { nc, messages } = t.context;
  const reply = await nc.request('dea.discover', JSON.stringify({ app_id: msg.app_id, memory_mb: 128, disk_mb: 256, stack: 'bookworm' }), { timeout: 5000 });
  const { dea_id } = reply.json<{ dea_id: string }>();
  nc.publish(`dea.${dea_id}.start`, JSON.stringify(msg));
  const reg = await eventually(
    () => messages.find((m) => m.subject === 'router.register' && m.data.instance_id === msg.instance_id)?.data,
    60_000,
    `router.register of ${msg.instance_id}`,
  );
  return { host: reg.host, port: reg.port };
}

const get = async (url: string): Promise<string> => (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();

test.serial('runs a droplet in a container reachable through its mapped port', async (t) => {
  t.timeout(90_000);
  const appId = randomUUID();
  const msg = startMessage(t, appId, 0);
  const at = await discoverAndStart(t, msg);
  t.is(at.host, t.context.host);
  t.is(await get(`http://${at.host}:${at.port}/`), 'hello 0');
  const env = JSON.parse(await get(`http://${at.host}:${at.port}/env`));
  t.is(env.GREETING, 'hi');
  t.is(env.PORT, '8080');
  t.is(JSON.parse(env.VCAP_APPLICATION).application_id, appId);
  t.is(env.MEMORY_LIMIT, '128m');
  const who = JSON.parse(await get(`http://${at.host}:${at.port}/whoami`));
  t.not(who.uid, 0, 'runs unprivileged');
  t.true(who.pids < 10, `sees only its own processes (${who.pids})`);
  t.is((await fetch(`http://${at.host}:${at.port}/read?path=${encodeURIComponent(t.context.configFile)}`)).status, 403, "cannot read the DEA's files");
  // Its log lines reach logs.<app_id> with source APP and its index.
  await eventually(() => t.context.messages.find((m) => m.subject === `logs.${appId}` && m.data.line === 'hello from index 0' && m.data.source === 'APP' && m.data.index === 0), 10_000, 'app log line');
  // find.droplet with stats.
  const replies: any[] = [];
  const inbox = `_INBOX.find-${randomUUID()}`;
  t.context.nc.subscribe(inbox, { callback: (_e, m) => replies.push(m.json()) });
  t.context.nc.publish('dea.find.droplet', JSON.stringify({ app_id: appId, include_stats: true }), { reply: inbox });
  const found = await eventually(() => replies[0], 5000, 'find.droplet reply');
  t.is(found.state, 'RUNNING');
  t.is(found.port, at.port);
  t.true(found.stats.memory_bytes > 0);
  t.is(found.stats.memory_quota_bytes, 128 * 1024 * 1024);
  // Stop: unregister, STOPPED, gone from heartbeats.
  t.context.nc.publish('dea.stop', JSON.stringify({ app_id: appId }));
  await eventually(() => t.context.messages.find((m) => m.subject === 'droplet.exited' && m.data.instance_id === msg.instance_id && m.data.reason === 'STOPPED'), 20_000, 'STOPPED');
  t.truthy(t.context.messages.find((m) => m.subject === 'router.unregister' && m.data.instance_id === msg.instance_id));
});

test.serial('stages a package with a built-in buildpack, streaming STG logs, then runs the droplet', async (t) => {
  t.timeout(120_000);
  const { nc, blobs, messages } = t.context;
  const appId = randomUUID();
  blobs.put(`/packages/${appId}`, await zipDirectory(fileURLToPath(new URL('../../examples/static-site', import.meta.url))));
  const reply = await nc.request(
    'staging.request',
    JSON.stringify({
      app_id: appId,
      build_id: `b-${appId}`,
      package_uri: blobs.url(`/packages/${appId}`),
      droplet_upload_uri: blobs.url(`/droplets/${appId}`),
      env: {},
      limits: { memory_mb: 128, disk_mb: 512 },
    }),
    { timeout: 90_000 },
  );
  const staged = reply.json<any>();
  t.is(staged.state, 'STAGED', staged.error);
  t.is(staged.detected_buildpack, 'staticfile');
  const stgLines = messages.filter((m) => m.subject === `logs.${appId}` && m.data.source === 'STG');
  t.true(stgLines.length > 0, 'staging log lines went to logs.<app_id> with source STG');
  const upload = blobs.uploads.get(`/droplets/${appId}`)!;
  t.truthy(upload, 'the droplet was uploaded');
  blobs.put(`/droplets/${appId}`, upload.body);
  const msg = { ...startMessage(t, appId, 0), droplet_uri: blobs.url(`/droplets/${appId}`), droplet_sha256: staged.droplet_sha256 };
  const at = await discoverAndStart(t, msg);
  const res = await fetch(`http://${at.host}:${at.port}/`);
  t.is(res.status, 200);
  t.regex(await res.text(), /<html/i);
  nc.publish('dea.stop', JSON.stringify({ app_id: appId }));
});

test.serial('a crash is unregistered and reported at once, and never restarted by the DEA', async (t) => {
  t.timeout(90_000);
  const appId = randomUUID();
  const msg = startMessage(t, appId, 1);
  const at = await discoverAndStart(t, msg);
  const crashAt = Date.now();
  await get(`http://${at.host}:${at.port}/crash`);
  const exited = await eventually(() => t.context.messages.find((m) => m.subject === 'droplet.exited' && m.data.instance_id === msg.instance_id), 10_000, 'droplet.exited');
  // The aim is 100 ms from the exit; the bound is ten times that (the app exits 10 ms after answering).
  t.true(exited.at - crashAt < 1000, `droplet.exited ${exited.at - crashAt} ms after the crash`);
  t.log(`router.unregister and droplet.exited ${exited.at - crashAt} ms after the crash request`);
  const unregistered = t.context.messages.find((m) => m.subject === 'router.unregister' && m.data.instance_id === msg.instance_id);
  t.truthy(unregistered);
  t.true(unregistered!.at <= exited.at, 'unregister comes first');
  t.is(exited.data.reason, 'CRASHED');
  t.is(exited.data.exit_status, 3);
  // The next heartbeats show it CRASHED; no second register ever comes.
  const since = Date.now();
  await eventually(() => t.context.messages.find((m) => m.subject === 'dea.heartbeat' && m.at > since + 1500), 10_000, 'a later heartbeat');
  t.is(t.context.messages.filter((m) => m.subject === 'router.register' && m.data.instance_id === msg.instance_id).length >= 1, true);
  const hb = [...t.context.messages].reverse().find((m) => m.subject === 'dea.heartbeat')!;
  t.is(hb.data.instances.find((i: any) => i.instance_id === msg.instance_id)?.state, 'CRASHED');
  const registersAfterCrash = t.context.messages.filter((m) => m.subject === 'router.register' && m.data.instance_id === msg.instance_id && m.at > exited.at);
  t.is(registersAfterCrash.length, 0);
});

test.serial('a crash-looping app keeps only its newest crashed instances (their ports go back to the pool)', async (t) => {
  t.timeout(120_000);
  const appId = randomUUID();
  const ids: string[] = [];
  for (let n = 0; n < 5; n++) {
    const msg = startMessage(t, appId, 0);
    ids.push(msg.instance_id);
    const at = await discoverAndStart(t, msg);
    await get(`http://${at.host}:${at.port}/crash`);
    await eventually(() => t.context.messages.find((m) => m.subject === 'droplet.exited' && m.data.instance_id === msg.instance_id), 10_000, `crash ${n}`);
  }
  const inbox = `_INBOX.crashes-${randomUUID()}`;
  const replies: any[] = [];
  t.context.nc.subscribe(inbox, { callback: (_e, m) => replies.push(m.json()) });
  t.context.nc.publish('dea.find.droplet', JSON.stringify({ app_id: appId }), { reply: inbox });
  await eventually(() => replies.length >= 3, 5000, 'find.droplet replies');
  await t.context.nc.flush();
  await new Promise((r) => setTimeout(r, 300)); // the window in which further replies would come
  t.deepEqual(replies.map((r) => r.instance_id).sort(), ids.slice(2).sort(), 'the three newest crashes are kept');
  t.true(replies.every((r) => r.state === 'CRASHED'));
});

test.serial('over its memory limit an instance is killed and reported "out of memory"', async (t) => {
  t.timeout(90_000);
  const appId = randomUUID();
  const msg = startMessage(t, appId, 0, { limits: { memory_mb: 64, disk_mb: 256 } });
  const at = await discoverAndStart(t, msg);
  await get(`http://${at.host}:${at.port}/oom`);
  const exited = await eventually(() => t.context.messages.find((m) => m.subject === 'droplet.exited' && m.data.instance_id === msg.instance_id), 30_000, 'droplet.exited');
  t.is(exited.data.reason, 'CRASHED');
  t.regex(exited.data.exit_description, /out of memory/);
});

test.serial('a log flood is capped at the instance rate and the excess counted', async (t) => {
  t.timeout(90_000);
  const appId = randomUUID();
  const msg = startMessage(t, appId, 0);
  const at = await discoverAndStart(t, msg);
  const before = t.context.messages.filter((m) => m.subject === `logs.${appId}`).length;
  await get(`http://${at.host}:${at.port}/flood?lines=5000`);
  const varz = await eventually(async () => {
    const v = (await (await fetch(t.context.box.dea.statusUrl('/varz'), { headers: { authorization: t.context.box.dea.auth } })).json()) as any;
    return v.dropped_log_lines > 4000 ? v : undefined;
  }, 10_000, 'dropped lines counted');
  const got = t.context.messages.filter((m) => m.subject === `logs.${appId}`).length - before;
  t.true(got < 1000, `only ${got} of 5000 lines reached NATS`);
  t.true(varz.dropped_log_lines > 4000);
  t.context.nc.publish('dea.stop', JSON.stringify({ app_id: appId }));
});

test.serial('adopts its running instances after being killed and restarted', async (t) => {
  t.timeout(120_000);
  const appId = randomUUID();
  const msg = startMessage(t, appId, 0);
  const at = await discoverAndStart(t, msg);
  await t.context.box.dea.kill('SIGKILL');
  t.is(await get(`http://${at.host}:${at.port}/`), 'hello 0', 'the instance outlives its DEA');
  t.context.box.dea = await startComponentProcess('dea', t.context.configFile, { statusPassword: STATUS_PASSWORD });
  const inbox = `_INBOX.adopt-${randomUUID()}`;
  const replies: any[] = [];
  t.context.nc.subscribe(inbox, { callback: (_e, m) => replies.push(m.json()) });
  await t.context.nc.flush();
  await eventually(() => {
    t.context.nc.publish('dea.find.droplet', JSON.stringify({ app_id: appId }), { reply: inbox });
    return replies.find((r) => r.state === 'RUNNING' && r.instance_id === msg.instance_id);
  }, 20_000, 'the adopted instance reported RUNNING');
  t.is(await get(`http://${at.host}:${at.port}/`), 'hello 0');
  // Its exit is still watched: a crash after adoption is reported.
  await get(`http://${at.host}:${at.port}/crash`);
  const exited = await eventually(() => t.context.messages.find((m) => m.subject === 'droplet.exited' && m.data.instance_id === msg.instance_id && m.data.reason === 'CRASHED'), 10_000, 'crash of an adopted instance');
  // Not the DEA's child any more, yet its exit status is known (the container's runner left it).
  t.is(exited.data.exit_status, 3);
  t.is(exited.data.exit_description, 'app instance exited with status 3');
});

test.serial('evacuation: reports DEA_EVACUATION, refuses new work, serves until stopped, then exits', async (t) => {
  t.timeout(120_000);
  const appId = randomUUID();
  const msg = startMessage(t, appId, 0);
  const at = await discoverAndStart(t, msg);
  t.context.box.dea.proc.kill('SIGUSR2');
  await t.context.box.dea.waitForLog((l) => l.msg === 'evacuating', 10_000).catch((e) => { t.log(t.context.box.dea.logs.slice(-15)); throw e; });
  await eventually(() => t.context.messages.find((m) => m.subject === 'droplet.exited' && m.data.instance_id === msg.instance_id && m.data.reason === 'DEA_EVACUATION'), 10_000, 'DEA_EVACUATION');
  t.is(await get(`http://${at.host}:${at.port}/`), 'hello 0', 'keeps serving while evacuating');
  await t.throwsAsync(t.context.nc.request('dea.discover', JSON.stringify({ app_id: 'x', memory_mb: 1, disk_mb: 1, stack: 'bookworm' }), { timeout: 1500 }));
  t.context.nc.publish('dea.stop', JSON.stringify({ app_id: appId, instance_ids: [msg.instance_id] }));
  const { code } = await t.context.box.dea.exited;
  t.is(code, 0);
});

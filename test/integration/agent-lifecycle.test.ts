// The agent as a real process on a real nats-server mbus, with a loopback blobstore: apply,
// start, serve, restart after kill -9, drain, stop, state, refusals.
import anyTest, { type TestFn } from 'ava';
import { gunzipSync } from 'node:zlib';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBlobServer, type BlobServer } from '../helpers/blob-server.ts';
import { AgentMbus } from '../helpers/agent-mbus.ts';
import { DirectorClient, startAgentProcess, waitFor, type StartedAgent } from '../helpers/agent-process.ts';
import { HTTP_SERVER_JS, nodeProcessJob, publishSpec } from '../helpers/agent-fixtures.ts';
import { freePort } from '../helpers/ports.ts';
import { connect } from 'nats';
import type { AgentState } from '../../orchestrator/agent/protocol.ts';

const AGENT_ID = 'agent-life-1';

const test = anyTest as TestFn<{
  mbus: AgentMbus;
  blobs: BlobServer;
  agent: StartedAgent;
  director: DirectorClient;
  port: number;
  spec: Record<string, unknown>;
}>;

test.before(async (t) => {
  const mbus = await AgentMbus.start([AGENT_ID]);
  const blobs = await startBlobServer();
  const port = await freePort();
  const cred = mbus.agent(AGENT_ID);
  const agent = startAgentProcess({
    agent_id: AGENT_ID,
    mbus: { url: mbus.url, user: cred.user, password: cred.password },
    blobstore: { url: blobs.url('') },
    networks: {},
    disks: { persistent: { 'disk-1': '/var/vcap/store' } },
    env: {},
    agent: { heartbeat_interval_ms: 300, restart_base_ms: 100, restart_max_ms: 500, stop_grace_ms: 2000 },
  });
  const director = await DirectorClient.connect(mbus.url, mbus.director.user, mbus.director.password);
  t.context = { mbus, blobs, agent, director, port, spec: {} };
  await waitFor('the agent to answer ping', async () => (await director.call(AGENT_ID, 'ping').catch(() => undefined)) === 'pong', 20_000);
  t.context.spec = await publishSpec(blobs, {
    name: 'web',
    jobs: [nodeProcessJob('web', HTTP_SERVER_JS, { 'bin/drain': '#!/bin/sh\necho draining >&2\necho 1\n' }, { port, greeting: 'web' })],
    packages: [{ name: 'runtime', files: { 'README': 'a package' } }],
  });
});

test.after.always(async (t) => {
  await t.context.agent?.kill();
  await t.context.director?.close().catch(() => undefined);
  await t.context.blobs?.close();
  await t.context.mbus?.stop();
});

async function state(t: { context: { director: DirectorClient } }): Promise<AgentState> {
  return (await t.context.director.call(AGENT_ID, 'get_state')) as AgentState;
}

async function get(port: number): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    return await res.text();
  } catch {
    return undefined;
  }
}

test.serial('answers ping with pong', async (t) => {
  t.is(await t.context.director.call(AGENT_ID, 'ping'), 'pong');
});

test.serial('bad requests get exceptions and the agent keeps serving', async (t) => {
  const { director } = t.context;
  const unknown = await director.request(AGENT_ID, { method: 'reboot_universe', arguments: [] });
  t.regex((unknown as { exception: { message: string } }).exception.message, /Unknown message "reboot_universe"/);
  const badArgs = await director.request(AGENT_ID, { method: 'apply', arguments: [{ name: 'x', jobs: [{ name: 'j', blobstore_id: 'b', sha256: 'zz' }] }] });
  t.regex((badArgs as { exception: { message: string } }).exception.message, /arguments of apply: arguments\.0\.jobs\.0\.sha256: a sha256 digest/);
  // A plain NATS request (reply on the director's inbox) with garbage: allow_responses lets the agent answer it.
  const nc = await connect({ servers: [t.context.mbus.url], user: t.context.mbus.director.user, pass: t.context.mbus.director.password });
  const m = await nc.request(`agent.${AGENT_ID}`, new TextEncoder().encode('{nope'), { timeout: 5000 });
  t.deepEqual(JSON.parse(new TextDecoder().decode(m.data)), { exception: { message: 'Parsing the request: not JSON' } });
  await nc.close();
  t.is(await director.call(AGENT_ID, 'ping'), 'pong');
});

test.serial('start before apply is refused with a sentence', async (t) => {
  const r = await t.context.director.request(AGENT_ID, { method: 'start', arguments: [] });
  t.deepEqual(r, { exception: { message: 'Starting jobs: nothing has been applied to this agent yet' } });
});

test.serial('apply refuses a blob whose digest does not match', async (t) => {
  const spec = structuredClone(t.context.spec) as { jobs: Array<{ sha256: string }> };
  spec.jobs[0]!.sha256 = 'f'.repeat(64);
  const r = await t.context.director.task(AGENT_ID, 'apply', [spec]);
  t.true('exception' in r);
  t.regex((r as { exception: { message: string } }).exception.message, /^Applying the spec: Installing job web: verifying blob job-web-\w+: its sha256 is [0-9a-f]{64}, but the spec expects f{64}; refusing to install it$/);
});

test.serial('applies a job from the blobstore, starts it, and it serves', async (t) => {
  const { director, port, agent } = t.context;
  const first = await director.request(AGENT_ID, { method: 'apply', arguments: [t.context.spec] });
  t.like((first as { value: { state: string } }).value, { state: 'running' });
  const r = await director.task(AGENT_ID, 'apply', [t.context.spec]);
  t.deepEqual(r, { value: 'applied' });
  t.is((await state(t)).job_state, 'stopped');
  t.deepEqual(await director.call(AGENT_ID, 'start'), 'started');
  t.is(await waitFor('the job to serve', () => get(port)), 'hello from web');
  const s = await waitFor('job_state running', async () => {
    const s = await state(t);
    return s.job_state === 'running' ? s : undefined;
  });
  t.is(s.job?.name, 'web');
  t.is(s.processes.length, 1);
  t.like(s.processes[0], { name: 'web', job: 'web', state: 'running', restarts: 0 });
  t.is(typeof s.processes[0]!.pid, 'number');
  t.is(s.vitals.load.length, 3);
  t.regex(s.vitals.mem.percent, /^\d+$/);
  t.truthy(s.vitals.disk.system);
  t.truthy(agent.root);
});

test.serial('heartbeats carry the job state and vitals', async (t) => {
  const { mbus } = t.context;
  const nc = await connect({ servers: [mbus.url], user: mbus.director.user, pass: mbus.director.password });
  const sub = nc.subscribe(`hm.agent.heartbeat.${AGENT_ID}`, { max: 1, timeout: 5000 });
  for await (const m of sub) {
    const hb = JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>;
    t.like(hb, { agent_id: AGENT_ID, job: 'web', index: 0, job_state: 'running', number_of_processes: 1 });
    t.truthy(hb.vitals);
  }
  await nc.close();
});

test.serial('restarts a process after kill -9 and alerts', async (t) => {
  const { director, mbus, port } = t.context;
  const nc = await connect({ servers: [mbus.url], user: mbus.director.user, pass: mbus.director.password });
  const alerts = nc.subscribe(`hm.agent.alert.${AGENT_ID}`, { max: 1, timeout: 10_000 });
  const before = await state(t);
  const pid = before.processes[0]!.pid!;
  process.kill(pid, 'SIGKILL');
  const after = await waitFor('a new pid, running', async () => {
    const s = await state(t);
    const p = s.processes[0]!;
    return p.pid !== undefined && p.pid !== pid && p.state === 'running' ? s : undefined;
  });
  t.is(after.processes[0]!.restarts, 1);
  t.is(await waitFor('the job to serve again', () => get(port)), 'hello from web');
  for await (const m of alerts) {
    const a = JSON.parse(new TextDecoder().decode(m.data)) as { title: string; severity: number };
    t.regex(a.title, /web\/web \(killed by SIGKILL\) - restarting/);
  }
  await nc.close();
  void director;
});

test.serial('drain runs bin/drain and waits the seconds it prints', async (t) => {
  const started = Date.now();
  const r = await t.context.director.task(AGENT_ID, 'drain', ['update']);
  const took = Date.now() - started;
  t.deepEqual(r, { value: 1 });
  t.true(took >= 1000, `drain took ${took} ms`);
  t.true(took < 5000, `drain took ${took} ms`);
});

test.serial('fetch_logs uploads a tarball of the job logs', async (t) => {
  const r = await t.context.director.task(AGENT_ID, 'fetch_logs', ['job']);
  const { blobstore_id } = (r as { value: { blobstore_id: string } }).value;
  const upload = t.context.blobs.uploads.get(`/${blobstore_id}`);
  t.truthy(upload);
  const listing = gunzipSync(upload!.body).toString('latin1');
  t.true(listing.includes('web/web.stdout.log'));
  t.true(listing.includes('web/drain.stderr.log'));
});

test.serial('get_task of an unknown task and mount_disk of an unknown disk are refused', async (t) => {
  const r = await t.context.director.request(AGENT_ID, { method: 'get_task', arguments: ['nope'] });
  t.deepEqual(r, { exception: { message: 'Getting task nope: no such task' } });
  const d = await t.context.director.request(AGENT_ID, { method: 'mount_disk', arguments: ['disk-9'] });
  t.regex((d as { exception: { message: string } }).exception.message, /^Mounting persistent disk disk-9: the settings name no such disk \(known: disk-1\)$/);
});

test.serial('mount_disk verifies the store the CPI mounted and records it', async (t) => {
  const { director, agent } = t.context;
  const missing = await director.request(AGENT_ID, { method: 'mount_disk', arguments: ['disk-1'] });
  t.regex((missing as { exception: { message: string } }).exception.message, /^Mounting persistent disk disk-1: .*\/store is not a directory/);
  mkdirSync(join(agent.root, 'store'));
  t.deepEqual(await director.call(AGENT_ID, 'mount_disk', ['disk-1']), { 'disk-1': join(agent.root, 'store') });
  const s = await state(t);
  t.deepEqual(s.persistent_disk, { 'disk-1': join(agent.root, 'store') });
  t.truthy(s.vitals.disk['disk-1']);
});

test.serial('stop ends the processes; the job is stopped', async (t) => {
  const { director, port } = t.context;
  const pid = (await state(t)).processes[0]!.pid!;
  t.deepEqual(await director.task(AGENT_ID, 'stop'), { value: 'stopped' });
  const s = await state(t);
  t.is(s.job_state, 'stopped');
  t.is(s.processes[0]!.state, 'stopped');
  t.throws(() => process.kill(pid, 0));
  t.is(await get(port), undefined);
});

test.serial('stop sends SIGTERM, then SIGKILL to a process that ignores it after the grace', async (t) => {
  const { director, blobs } = t.context;
  const spec = await publishSpec(blobs, {
    name: 'stubborn',
    jobs: [nodeProcessJob('stubborn', "process.on('SIGTERM', () => console.log('ignoring SIGTERM'));\nsetInterval(() => {}, 1000);\nconsole.log('up');")],
  });
  t.deepEqual(await director.task(AGENT_ID, 'apply', [spec]), { value: 'applied' });
  t.is(await director.call(AGENT_ID, 'start'), 'started');
  const s = await waitFor('the stubborn process to run', async () => {
    const s = await state(t);
    return s.job_state === 'running' && s.processes[0]?.pid ? s : undefined;
  });
  const pid = s.processes[0]!.pid!;
  await waitFor('the process to be listening for SIGTERM', () => readFileSync(join(t.context.agent.root, 'sys/log/stubborn/stubborn.stdout.log'), 'utf8').includes('up'));
  const started = Date.now();
  t.deepEqual(await director.task(AGENT_ID, 'stop'), { value: 'stopped' });
  const took = Date.now() - started;
  t.true(took >= 2000, `stop took ${took} ms; the grace is 2000 ms`);
  t.throws(() => process.kill(pid, 0));
  t.true(readFileSync(join(t.context.agent.root, 'sys/log/stubborn/stubborn.stdout.log'), 'utf8').includes('ignoring SIGTERM'));
});

test.serial('scripts, dynamic drain, errands and cancel on a job without processes', async (t) => {
  const { director, blobs } = t.context;
  const spec = await publishSpec(blobs, {
    name: 'tools',
    jobs: [
      {
        name: 'tool',
        files: {
          'spec.json': JSON.stringify({ name: 'tool', processes: [] }),
          'bin/pre-start': '#!/bin/sh\necho prepared > "$PWD/prepared"\n',
          'bin/post-start': '#!/bin/sh\necho broken >&2\nexit 4\n',
          'bin/run': '#!/bin/sh\necho errand ran\n',
          // -1 first ("poll me again in 1 s"), then 0 on status; 30 on shutdown (to be cancelled).
          'bin/drain': '#!/bin/sh\nif [ "$1" = job_check_status ]; then echo 0; elif [ "$1" = job_shutdown ]; then echo 30; else echo -1; fi\n',
        },
      },
    ],
  });
  t.deepEqual(await director.task(AGENT_ID, 'apply', [spec]), { value: 'applied' });
  t.is((await state(t)).job_state, 'stopped');

  t.deepEqual(await director.task(AGENT_ID, 'run_script', ['pre-start', {}]), { value: { tool: 'executed' } });
  t.deepEqual(await director.task(AGENT_ID, 'run_script', ['post-start', {}]), { exception: { message: 'Running post-start scripts: tool/bin/post-start exited with 4' } });

  const started = Date.now();
  t.deepEqual(await director.task(AGENT_ID, 'drain', ['update']), { value: 1 });
  t.true(Date.now() - started >= 1000);

  t.deepEqual(await director.task(AGENT_ID, 'run_errand', []), { value: { exit_code: 0, stdout: 'errand ran\n', stderr: '' } });

  const first = (await director.call(AGENT_ID, 'drain', ['shutdown'])) as { agent_task_id: string };
  await waitFor('the drain to be running', async () => {
    const r = await director.request(AGENT_ID, { method: 'get_task', arguments: [first.agent_task_id] });
    return 'value' in r && (r.value as { state?: string }).state === 'running';
  });
  t.is(await director.call(AGENT_ID, 'cancel_task', [first.agent_task_id]), 'canceled');
  const done = await waitFor('the cancelled task to finish', async () => {
    const r = await director.request(AGENT_ID, { method: 'get_task', arguments: [first.agent_task_id] });
    return 'exception' in r ? r : undefined;
  });
  t.regex(done.exception.message, /was cancelled/);
});

// The director's own mbus on a real nats-server: per-agent credentials confined to their own
// subjects, reloads that keep connected clients, and the blobstore agents read with the same
// credential (through the agent's own BlobstoreClient).
import anyTest, { type TestFn } from 'ava';
import { createHash } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';
import { BlobstoreClient } from '../../orchestrator/agent/blobstore.ts';
import { directorConfig, DirectorProcess, tarball, type DirectorClient } from '../helpers/director.ts';

interface Agent {
  user: string;
  password: string;
  url: string;
  blobstore_url: string;
}

const test = anyTest as TestFn<{ director: DirectorProcess; api: DirectorClient; conns: NatsConnection[] }>;

test.before(async (t) => {
  const director = await DirectorProcess.start(await directorConfig());
  t.context = { director, api: director.client(), conns: [] };
});

test.after.always(async (t) => {
  for (const nc of t.context.conns ?? []) await nc.close().catch(() => undefined);
  await t.context.director?.cleanup();
});

async function register(t: { context: { api: DirectorClient } }, id: string): Promise<Agent> {
  const r = await t.context.api.request('POST', `/test/agents/${id}`);
  if (r.status !== 201) throw new Error(`registering ${id}: ${r.status} ${r.text}`);
  return r.body as Agent;
}

async function as(t: { context: { conns: NatsConnection[] } }, a: { url: string; user: string; password: string }): Promise<NatsConnection> {
  const nc = await connect({ servers: [a.url], user: a.user, pass: a.password, reconnect: false });
  t.context.conns.push(nc);
  return nc;
}

/** Subscribes and reports the server's verdict: the permission error, or none after a round trip. */
function trySubscribe(nc: NatsConnection, subject: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sub = nc.subscribe(subject, { callback: (err) => err && resolve(err.message) });
    void nc.flush().then(() => nc.flush()).then(() => {
      if (!sub.isClosed()) resolve(undefined);
    });
  });
}

test.serial('an agent credential reaches only its own subjects; the director reaches everything', async (t) => {
  const a1 = await register(t, 'm-a1');
  await register(t, 'm-a2');
  t.regex(a1.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
  const nc = await as(t, a1);
  t.is(await trySubscribe(nc, 'agent.m-a1'), undefined);
  t.regex((await trySubscribe(nc, 'agent.m-a2')) ?? '', /permissions violation/i);
  t.regex((await trySubscribe(nc, 'hm.agent.heartbeat.*')) ?? '', /permissions violation/i);
  // A director request reaches the agent and its reply comes back (allow_responses).
  const agent = await as(t, a1);
  agent.subscribe('agent.m-a1', { callback: (_e, m) => m.respond(new TextEncoder().encode('{"value":"pong"}')) });
  await agent.flush();
  const creds = await registerDirector(t);
  const director = await as(t, creds);
  const reply = await director.request('agent.m-a1', new TextEncoder().encode('{"method":"ping","arguments":[]}'), { timeout: 2000 });
  t.is(new TextDecoder().decode(reply.data), '{"value":"pong"}');
  t.is(await trySubscribe(director, 'agent.m-a2'), undefined);
});

test.serial('a wrong or withdrawn credential is refused; reloads keep other clients connected', async (t) => {
  const a3 = await register(t, 'm-a3');
  const a4 = await register(t, 'm-a4');
  await t.throwsAsync(as(t, { ...a3, password: 'wrong' }), { message: /Authorization Violation/i });
  const kept = await as(t, a3);
  const seen: string[] = [];
  const creds = await registerDirector(t);
  const director = await as(t, creds);
  director.subscribe('hm.agent.heartbeat.*', { callback: (_e, m) => seen.push(m.subject) });
  await director.flush();
  // Registering and unregistering others reloads nats-server twice.
  await register(t, 'm-a5');
  t.is((await t.context.api.request('DELETE', '/test/agents/m-a4')).status, 204);
  await t.throwsAsync(as(t, a4), { message: /Authorization Violation/i });
  t.false(kept.isClosed());
  kept.publish('hm.agent.heartbeat.m-a3', new TextEncoder().encode('{}'));
  await kept.flush();
  const deadline = Date.now() + 3000;
  while (!seen.includes('hm.agent.heartbeat.m-a3') && Date.now() < deadline) await director.flush();
  t.deepEqual(seen, ['hm.agent.heartbeat.m-a3']);
});

test.serial('the blobstore serves blobs to an agent with its credential, read-only, at the path its client fetches', async (t) => {
  const a6 = await register(t, 'm-a6');
  const tgz = await tarball({ 'stemcell.MF': 'name: blob-test\nversion: "1"\noperating_system: debian-12\n' });
  const up = await t.context.api.request('POST', '/stemcells', undefined, { raw: tgz });
  t.is(up.status, 201);
  const id = up.body.blob_id as string;
  const body = await new BlobstoreClient(a6.blobstore_url).fetchVerified(id, createHash('sha256').update(tgz).digest('hex'));
  t.deepEqual(body, tgz);
  const base = a6.blobstore_url.replace(/\/[^/]+$/, '');
  t.is((await fetch(`${base}/wrong-password/${id}`)).status, 403);
  t.is((await fetch(`${a6.blobstore_url}/${'0'.repeat(64)}`)).status, 404);
  t.is((await fetch(`${a6.blobstore_url}/${id}`, { method: 'PUT', body: 'x' })).status, 403);
});

/** The director's own credential, read from its data dir the way only the director can. */
async function registerDirector(t: { context: { director: DirectorProcess } }): Promise<{ url: string; user: string; password: string }> {
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const conf = readFileSync(join(t.context.director.fixture.dataDir, 'mbus', 'nats.conf'), 'utf8');
  const m = /\{"user":"director","password":"([^"]+)"\}/.exec(conf)!;
  const port = /listen: "127\.0\.0\.1:(\d+)"/.exec(conf)![1];
  return { url: `nats://127.0.0.1:${port}`, user: 'director', password: m[1]! };
}

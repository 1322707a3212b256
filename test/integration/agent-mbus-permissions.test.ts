// Mbus confinement on a real nats-server with the rendered authorization block: an agent's
// credential reaches only its own subjects, and the director's reaches everything.
import anyTest, { type TestFn } from 'ava';
import { connect, type NatsConnection } from 'nats';
import { AgentMbus } from '../helpers/agent-mbus.ts';

const test = anyTest as TestFn<{ mbus: AgentMbus; conns: NatsConnection[] }>;

test.before(async (t) => {
  t.context = { mbus: await AgentMbus.start(['a1', 'a2']), conns: [] };
});

test.after.always(async (t) => {
  for (const nc of t.context.conns) await nc.close().catch(() => undefined);
  await t.context.mbus?.stop();
});

async function as(t: { context: { mbus: AgentMbus; conns: NatsConnection[] } }, user: string, pass: string): Promise<NatsConnection> {
  const nc = await connect({ servers: [t.context.mbus.url], user, pass });
  t.context.conns.push(nc);
  return nc;
}

/** Subscribes and reports the server's verdict: the permission error, or none after a round trip. */
async function trySubscribe(nc: NatsConnection, subject: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sub = nc.subscribe(subject, { callback: (err) => err && resolve(err.message) });
    // The server answers a refused SUB with -ERR before it answers the PING of a flush.
    void nc.flush().then(() => nc.flush()).then(() => {
      if (!sub.isClosed()) resolve(undefined);
    });
  });
}

test('an agent cannot subscribe to another agent\'s subject or to inboxes', async (t) => {
  const c = t.context.mbus.agent('a1');
  const nc = await as(t, c.user, c.password);
  t.is(await trySubscribe(nc, 'agent.a1'), undefined);
  t.regex((await trySubscribe(nc, 'agent.a2')) ?? '', /permissions violation/i);
  t.regex((await trySubscribe(nc, '_INBOX.>')) ?? '', /permissions violation/i);
  t.regex((await trySubscribe(nc, 'director.*.a2.>')) ?? '', /permissions violation/i);
});

test('an agent may publish only its own heartbeats, alerts and replies', async (t) => {
  const d = t.context.mbus.director;
  const director = await as(t, d.user, d.password);
  const seen: string[] = [];
  director.subscribe('>', { callback: (_e, m) => seen.push(m.subject) });
  await director.flush();
  const c = t.context.mbus.agent('a1');
  const agent = await as(t, c.user, c.password);
  const errors: string[] = [];
  void (async () => {
    for await (const s of agent.status()) if (s.type === 'error') errors.push(String(s.data));
  })();
  for (const subject of ['hm.agent.heartbeat.a1', 'hm.agent.alert.a1', 'director.d1.a1.x', 'hm.agent.heartbeat.a2', 'director.d1.a2.x', 'agent.a2', '_INBOX.abc']) {
    agent.publish(subject, new TextEncoder().encode('{}'));
  }
  agent.publish('marker.end', new TextEncoder().encode('{}'));
  const marker = await as(t, d.user, d.password);
  marker.publish('marker.done', new TextEncoder().encode('{}'));
  await agent.flush();
  await marker.flush();
  await director.flush();
  const deadline = Date.now() + 5000;
  while (!seen.includes('marker.done') && Date.now() < deadline) await director.flush();
  t.deepEqual(seen.filter((s) => !s.startsWith('marker')), ['hm.agent.heartbeat.a1', 'hm.agent.alert.a1', 'director.d1.a1.x']);
});

test('the director has full rights', async (t) => {
  const d = t.context.mbus.director;
  const nc = await as(t, d.user, d.password);
  t.is(await trySubscribe(nc, 'agent.a2'), undefined);
  t.is(await trySubscribe(nc, 'hm.agent.>'), undefined);
});

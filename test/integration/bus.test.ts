// The typed bus against a real nats-server: requests, many replies, queue groups, and what
// happens to invalid messages in both directions.
import anyTest, { type TestFn } from 'ava';
import { pino } from 'pino';
import { Bus, BusError, replies, subjects } from '../../kernel/bus/mod.ts';
import { NatsServer } from '../helpers/nats-server.ts';

const test = anyTest as TestFn<{ nats: NatsServer; buses: Bus[] }>;
const log = pino({ level: 'silent' });

test.before(async (t) => {
  t.context = { nats: await NatsServer.start(), buses: [] };
});

test.after.always(async (t) => {
  for (const b of t.context.buses) await b.close();
  await t.context.nats?.stop();
});

async function bus(t: { context: { nats: NatsServer; buses: Bus[] } }, name: string): Promise<Bus> {
  const { nats } = t.context;
  const b = await Bus.connect({ servers: [nats.url], user: nats.user, password: nats.password, name, logger: log });
  t.context.buses.push(b);
  return b;
}

const discover = { app_id: 'app-1', memory_mb: 256, disk_mb: 1024, stack: 'cflinuxfs' };

test('request gets one validated reply; requestMany gathers until max or window', async (t) => {
  const cc = await bus(t, 'cc');
  const deas = await Promise.all(['dea-a', 'dea-b', 'dea-c'].map((id) => bus(t, id)));
  deas.forEach((d, i) =>
    d.subscribe(subjects.deaDiscover, (msg, ctx) => {
      t.is(msg.app_id, 'app-1');
      if (ctx.reply) d.respond(ctx.reply, replies.deaDiscover, { dea_id: `dea-${i}`, host: `10.0.0.${i}` });
    }),
  );
  await Promise.all(deas.map((d) => d.flush()));
  const first = await cc.request(subjects.deaDiscover, discover, replies.deaDiscover, { timeoutMs: 2000 });
  t.regex(first.dea_id, /^dea-\d$/);
  const all = await cc.requestMany(subjects.deaDiscover, discover, replies.deaDiscover, { windowMs: 2000 });
  t.is(all.length, 3);
  const two = await cc.requestMany(subjects.deaDiscover, discover, replies.deaDiscover, { windowMs: 5000, max: 2 });
  t.is(two.length, 2);
});

test('a queue group delivers each message to one member', async (t) => {
  const sender = await bus(t, 'sender');
  const members = await Promise.all([bus(t, 'stager-1'), bus(t, 'stager-2')]);
  const got: string[] = [];
  for (const m of members) m.subscribe(subjects.dropletUpdated, (msg) => void got.push(msg.app_id), { queue: 'qg' });
  await Promise.all(members.map((m) => m.flush()));
  for (let i = 0; i < 20; i++) sender.publish(subjects.dropletUpdated, { app_id: `a${i}` });
  await sender.flush();
  const deadline = Date.now() + 5000;
  while (got.length < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.is(got.length, 20);
  t.is(new Set(got).size, 20);
});

test('refuses to publish an invalid message or to a wildcard subject', async (t) => {
  const b = await bus(t, 'pub');
  const err = t.throws(() => b.publish(subjects.dropletUpdated, { app_id: 7 } as never), { instanceOf: BusError });
  t.regex(err!.message, /^Refusing to publish an invalid message on droplet\.updated: app_id: /);
  t.throws(() => b.publish(subjects.deaStart, {} as never), { message: /wildcard subject dea\.\*\.start/ });
});

test('an invalid reply is an error that names the subject; no responder is said so', async (t) => {
  const asker = await bus(t, 'asker');
  const liar = await bus(t, 'liar');
  liar.subscribe(subjects.routerGreet, (_m, ctx) => {
    if (ctx.reply) liar.respond(ctx.reply, replies.deaDiscover, { dea_id: 'not-a-router', host: 'x' });
  });
  await liar.flush();
  const bad = await t.throwsAsync(asker.request(subjects.routerGreet, {}, replies.routerGreet, { timeoutMs: 2000 }), { instanceOf: BusError });
  t.is((bad as BusError).code, 'invalid_reply');
  const none = await t.throwsAsync(asker.request(subjects.healthmanagerHealth, { droplets: [] }, replies.deaDiscover, { timeoutMs: 1000 }), { instanceOf: BusError });
  t.is((none as BusError).code, 'no_responders');
});

test('requestMany with no one listening gathers nothing and counts nothing as malformed', async (t) => {
  const lonely = await bus(t, 'lonely');
  const got = await lonely.requestMany(subjects.deaFindDroplet, { app_id: 'nobody' }, replies.deaFindDroplet, { windowMs: 300 });
  t.deepEqual(got, []);
  t.deepEqual(lonely.stats().invalid, {});
});

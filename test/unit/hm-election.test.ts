// The health managers' leader election (kernel/health-manager/election.ts): who leads, from
// the peers heard and the clock; then properties over arbitrary groups of HMs: never two
// leaders among HMs that hear each other, and always one once they have listened.
import test from 'ava';
import fc from 'fast-check';
import { describeZod, subjects } from '../../kernel/bus/mod.ts';
import { elect, LISTEN_INTERVALS, PEER_TTL_INTERVALS, PeerTable, type Peer, type Self } from '../../kernel/health-manager/election.ts';
import { hmConfig } from '../../kernel/health-manager/config.ts';

const I = 1000;
const policy = { interval_ms: I };
const T0 = 1_700_000_000_000;

const fixtures = {
  self(over: Partial<Self> = {}): Self {
    return { id: 'hm-b', started_at: T0 - 60 * I, ...over };
  },
  peer(over: Partial<Peer> = {}): Peer {
    return { id: 'hm-a', started_at: T0 - 120 * I, leader: false, heard_at: T0, ...over };
  },
};

test('alone, an HM leads once it has listened two intervals', (t) => {
  const self = fixtures.self({ started_at: T0 });
  t.like(elect(self, [], T0 + LISTEN_INTERVALS * I - 1, policy), { leader: false, why: 'listening' });
  t.like(elect(self, [], T0 + LISTEN_INTERVALS * I, policy), { leader: true, why: 'senior', leader_id: 'hm-b' });
});

test('the HM watching longest leads; a younger one follows it', (t) => {
  const older = fixtures.peer({ started_at: T0 - 120 * I, leader: true });
  const v = elect(fixtures.self(), [older], T0, policy);
  t.like(v, { leader: false, why: 'junior', leader_id: 'hm-a' });
  t.deepEqual(v.peers.map((p) => p.id), ['hm-a']);
  // And the older one, hearing the younger, keeps the lead.
  t.like(elect(fixtures.self({ id: 'hm-a', started_at: T0 - 120 * I }), [fixtures.peer({ id: 'hm-b', started_at: T0 - 60 * I })], T0, policy), { leader: true });
});

test('equal start times: the smaller id leads', (t) => {
  const at = T0 - 60 * I;
  t.like(elect(fixtures.self({ id: 'hm-b', started_at: at }), [fixtures.peer({ id: 'hm-a', started_at: at })], T0, policy), { leader: false, why: 'junior' });
  t.like(elect(fixtures.self({ id: 'hm-a', started_at: at }), [fixtures.peer({ id: 'hm-b', started_at: at })], T0, policy), { leader: true });
});

test('a peer silent for three intervals is gone, and the lead passes on', (t) => {
  const self = fixtures.self();
  const older = fixtures.peer({ leader: true });
  t.like(elect(self, [older], T0 + PEER_TTL_INTERVALS * I - 1, policy), { leader: false, leader_id: 'hm-a' });
  const after = elect(self, [older], T0 + PEER_TTL_INTERVALS * I, policy);
  t.like(after, { leader: true, leader_id: 'hm-b' });
  t.deepEqual(after.peers, []);
});

test('a fresh HM that hears an older leader never takes over, even when it is older than others', (t) => {
  const self = fixtures.self({ started_at: T0 - 5 * I });
  const leader = fixtures.peer({ id: 'hm-z', started_at: T0 - 500 * I, leader: true });
  const younger = fixtures.peer({ id: 'hm-0', started_at: T0 - 1 * I });
  t.like(elect(self, [younger, leader], T0, policy), { leader: false, why: 'junior', leader_id: 'hm-z' });
});

test('a senior HM waits for a junior that leads to step down before it leads', (t) => {
  // The junior led while the senior was unheard (it was listening, or cut off).
  const self = fixtures.self({ id: 'hm-a', started_at: T0 - 120 * I });
  const junior = fixtures.peer({ id: 'hm-b', started_at: T0 - 60 * I, leader: true });
  t.like(elect(self, [junior], T0, policy), { leader: false, why: 'handover', leader_id: 'hm-b' });
  // The junior hears the senior and steps down; its next presence says so.
  t.like(elect(fixtures.self({ id: 'hm-b', started_at: T0 - 60 * I }), [fixtures.peer({ id: 'hm-a', started_at: T0 - 120 * I })], T0, policy), { leader: false, why: 'junior' });
  t.like(elect(self, [{ ...junior, leader: false, heard_at: T0 + I }], T0 + I, policy), { leader: true, why: 'senior' });
});

test('the peer table keeps the last word of each peer, ignores its own, and forgets the long silent', (t) => {
  const table = new PeerTable('me');
  table.hear({ id: 'me', started_at: 1, leader: true }, T0);
  table.hear({ id: 'hm-a', started_at: 100, leader: false }, T0);
  table.hear({ id: 'hm-a', started_at: 100, leader: true }, T0 + I);
  t.deepEqual(table.values(), [{ id: 'hm-a', started_at: 100_000, leader: true, heard_at: T0 + I }]);
  table.prune(T0 + I + 10 * PEER_TTL_INTERVALS * I - 1, policy);
  t.is(table.values().length, 1);
  table.prune(T0 + I + 10 * PEER_TTL_INTERVALS * I, policy);
  t.deepEqual(table.values(), []);
});

test('healthmanager.presence accepts {id, started_at, leader} and refuses the malformed with a path', (t) => {
  const schema = subjects.healthmanagerPresence.schema;
  t.is(subjects.healthmanagerPresence.subject, 'healthmanager.presence');
  t.true(schema.safeParse({ id: 'hm-1', started_at: 1_700_000_000.25, leader: false, index: 0 }).success);
  const bad = schema.safeParse({ id: '', started_at: -1, leader: 'yes' });
  t.false(bad.success);
  if (!bad.success) t.regex(describeZod(bad.error), /id: .*; started_at: .*; leader: Expected boolean, received string/);
});

test('election.interval_ms is validated with a message naming it, and defaults to 1000', (t) => {
  const base = { nats: { servers: ['nats://127.0.0.1:4222'], user: 'u', password: 'p' }, bulk_api: { url: 'http://cc', user: 'hm', password: 'pw' } };
  const ok = hmConfig.safeParse(base);
  t.true(ok.success);
  if (ok.success) t.is(ok.data.election.interval_ms, 1000);
  for (const bad of [0, 1.5, 'fast', 120_000]) {
    const r = hmConfig.safeParse({ ...base, election: { interval_ms: bad } });
    t.false(r.success, String(bad));
    if (!r.success) t.regex(describeZod(r.error), /election\.interval_ms: /);
  }
  const unknown = hmConfig.safeParse({ ...base, election: { interval: 5 } });
  t.false(unknown.success);
});

// ---- properties ----------------------------------------------------------------------------

/** A group of HMs; each hears every other that is alive (published within the TTL). */
const arbGroup = fc.uniqueArray(
  fc.record({
    id: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
    started_ago: fc.integer({ min: 0, max: 20 * I }),
    silent_for: fc.integer({ min: 0, max: 5 * I }),
    claims: fc.boolean(),
  }),
  { selector: (h) => h.id, minLength: 1, maxLength: 5 },
);

function verdicts(group: Array<{ id: string; started_ago: number; silent_for: number; claims: boolean }>, now: number) {
  // Only HMs that still publish run the election (the silent ones are dead or cut off).
  return group
    .filter((h) => h.silent_for === 0)
    .map((h) => {
      const peers = group.filter((p) => p.id !== h.id).map((p) => ({ id: p.id, started_at: now - p.started_ago, leader: p.claims, heard_at: now - p.silent_for }));
      return { id: h.id, ...elect({ id: h.id, started_at: now - h.started_ago }, peers, now, policy) };
    });
}

test('property: HMs that hear each other never both lead', (t) => {
  fc.assert(
    fc.property(arbGroup, (group) => verdicts(group, T0).filter((v) => v.leader).length <= 1),
    { numRuns: 1000 },
  );
  t.pass();
});

test('property: once every live HM has listened and old claims are withdrawn, exactly one leads — the one watching longest', (t) => {
  fc.assert(
    fc.property(arbGroup, (group) => {
      const settled = group.map((h) => ({ ...h, started_ago: h.started_ago + LISTEN_INTERVALS * I, claims: false }));
      const vs = verdicts(settled, T0);
      if (vs.length === 0) return true;
      const leaders = vs.filter((v) => v.leader);
      const live = settled.filter((h) => h.silent_for < PEER_TTL_INTERVALS * I);
      const oldest = [...live].sort((a, b) => b.started_ago - a.started_ago || (a.id < b.id ? -1 : 1))[0]!;
      // The oldest may itself be silent-but-not-yet-gone: then nobody leads until it is gone.
      if (oldest.silent_for > 0) return leaders.length === 0 && vs.every((v) => v.leader_id === undefined || v.leader_id === oldest.id);
      return leaders.length === 1 && leaders[0]!.id === oldest.id && vs.every((v) => v.leader_id === oldest.id);
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

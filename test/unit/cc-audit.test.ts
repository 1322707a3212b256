// The audit trail, without a controller: the presenter (CF's audit_event shape), redaction of
// environment variables, the actor of a request, the recorder's order and bounds, the store's
// `$or`/`$gt`/`$lt` conditions it lists with, the migration that moves the old app events
// over, and how `ingot events` describes an event.
import test from 'ava';
import { actorOf, AUDIT, auditor, MAX_EVENTS_PER_TARGET, REDACTED, redactEnv, spaceTarget } from '../../kernel/cloud-controller/audit.ts';
import { migrate, migrations } from '../../kernel/cloud-controller/db/migrations.ts';
import { openSqlite } from '../../kernel/cloud-controller/db/sqlite.ts';
import { sqlStore } from '../../kernel/cloud-controller/db/store.ts';
import type { AuditEventRecord } from '../../kernel/cloud-controller/db/mod.ts';
import { presentAuditEvent } from '../../kernel/cloud-controller/presenters.ts';
import { describeEvent } from '../../kernel/client/commands/events.ts';

const event = (over: Partial<AuditEventRecord> = {}): AuditEventRecord => ({
  guid: 'e-1',
  type: AUDIT.appScale,
  actor_guid: 'u-1',
  actor_type: 'user',
  actor_name: 'alice',
  target_guid: 'a-1',
  target_type: 'app',
  target_name: 'web',
  space_guid: 's-1',
  organization_guid: 'o-1',
  data: { request: { instances: 3 } },
  created_at: '2024-05-01T10:00:00.123Z',
  updated_at: '2024-05-01T10:00:00.123Z',
  ...over,
});

async function freshStore() {
  const db = openSqlite('sqlite::memory:');
  await migrate(db);
  return sqlStore(db);
}

test("an event is presented in CF's shape: actor, target, space and org by guid, whole seconds", (t) => {
  t.deepEqual(presentAuditEvent(event(), 'http://api'), {
    guid: 'e-1',
    created_at: '2024-05-01T10:00:00Z',
    updated_at: '2024-05-01T10:00:00Z',
    type: 'audit.app.process.scale',
    actor: { guid: 'u-1', type: 'user', name: 'alice' },
    target: { guid: 'a-1', type: 'app', name: 'web' },
    data: { request: { instances: 3 } },
    space: { guid: 's-1' },
    organization: { guid: 'o-1' },
    links: { self: { href: 'http://api/v3/audit_events/e-1' } },
  });
  const orgLevel = presentAuditEvent(event({ space_guid: null, organization_guid: null }), 'http://api');
  t.is(orgLevel.space, null);
  t.is(orgLevel.organization, null);
});

test('environment variable values are hidden as CF hides them; names and deletions stay', (t) => {
  t.deepEqual(redactEnv({ SECRET: 's3cret', GONE: null }), { SECRET: REDACTED, GONE: null });
  t.is(REDACTED, '[PRIVATE DATA HIDDEN]');
});

test('the actor is the request’s user; anything else is the system', (t) => {
  t.deepEqual(actorOf({ kind: 'user', guid: 'u', username: 'bob', admin: false }), { guid: 'u', type: 'user', name: 'bob' });
  t.deepEqual(actorOf({ kind: 'bulk' }), { guid: 'bulk', type: 'system', name: 'bulk' });
});

test('events recorded one after another list in that order, each target kept to its cap', async (t) => {
  const store = await freshStore();
  const audit = auditor(store);
  const actor = { guid: 'u', type: 'user' as const, name: 'u' };
  const target = spaceTarget({ guid: 's', name: 'dev', organization_guid: 'o', created_at: '', updated_at: '' });
  for (let i = 0; i < MAX_EVENTS_PER_TARGET + 3; i++) await audit.record({ type: AUDIT.spaceCreate, actor, target, data: { i } });
  const kept = await store.auditEvents.list({ target_guid: 's' });
  t.is(kept.length, MAX_EVENTS_PER_TARGET);
  t.deepEqual(kept.slice(0, 2).map((e) => e.data.i), [3, 4], 'the oldest went first');
  t.true(kept.every((e, i) => i === 0 || e.created_at > kept[i - 1]!.created_at), 'strictly increasing times');
  t.like(kept[0], { space_guid: 's', organization_guid: 'o', target_type: 'space', target_name: 'dev' });
  await store.close();
});

test('the store: $or holds when any alternative does, none when all are empty; $gt and $lt compare', async (t) => {
  const store = await freshStore();
  const at = (s: number) => `2024-05-01T10:00:0${s}.000Z`;
  await store.auditEvents.insert(event({ guid: 'a', space_guid: 's-1', organization_guid: 'o-1', created_at: at(1) }));
  await store.auditEvents.insert(event({ guid: 'b', space_guid: null, organization_guid: 'o-2', created_at: at(2) }));
  await store.auditEvents.insert(event({ guid: 'c', space_guid: 's-3', organization_guid: 'o-3', created_at: at(3) }));
  const guids = async (where: Parameters<typeof store.auditEvents.list>[0]) => (await store.auditEvents.list(where)).map((e) => e.guid);
  t.deepEqual(await guids({ $or: [{ space_guid: ['s-1'] }, { organization_guid: ['o-2'] }] }), ['a', 'b']);
  t.deepEqual(await guids({ $or: [{ space_guid: [] }, { organization_guid: ['o-3'] }] }), ['c']);
  t.deepEqual(await guids({ $or: [{ space_guid: [] }, { organization_guid: [] }] }), []);
  t.is(await store.auditEvents.count({ $or: [] }), 0);
  t.deepEqual(await guids({ $gt: { created_at: at(1) }, $lt: { created_at: at(3) } }), ['b']);
  t.deepEqual(await guids({ type: AUDIT.appScale, $or: [{ guid: ['a', 'c'] }], $gt: { created_at: at(2) } }), ['c']);
  await store.close();
});

test('migration 4 moves the old app events over: actor from who reported, the app as target, its space and org', async (t) => {
  const db = openSqlite('sqlite::memory:');
  await migrate(db, migrations.filter((m) => m.id < 4));
  const at = '2024-01-01T00:00:00.000Z';
  await db.run('INSERT INTO organizations (guid, name, created_at, updated_at) VALUES (?, ?, ?, ?)', ['o', 'org', at, at]);
  await db.run('INSERT INTO spaces (guid, name, organization_guid, created_at, updated_at) VALUES (?, ?, ?, ?, ?)', ['s', 'space', 'o', at, at]);
  await db.run(
    "INSERT INTO apps (guid, name, space_guid, state, version, environment_variables, buildpacks, stack, labels, annotations, created_at, updated_at) VALUES ('a', 'web', 's', 'STOPPED', 'v', '{}', '[]', 'x', '{}', '{}', ?, ?)",
    [at, at],
  );
  await db.run("INSERT INTO app_events (guid, app_guid, type, actor, data, created_at, updated_at) VALUES ('e', 'a', 'audit.app.process.crash', 'dea', '{\"index\":0}', ?, ?)", [at, at]);
  await db.run("INSERT INTO app_events (guid, app_guid, type, actor, data, created_at, updated_at) VALUES ('gone', 'x', 'audit.app.process.hm_stop', 'health_manager', '{}', ?, ?)", [at, at]);
  t.deepEqual(await migrate(db, migrations.filter((m) => m.id <= 4)), [4]);
  const store = sqlStore(db);
  t.like(await store.auditEvents.get('e'), { actor_type: 'dea', actor_name: 'dea', target_guid: 'a', target_type: 'app', target_name: 'web', space_guid: 's', organization_guid: 'o', data: { index: 0 } });
  t.like(await store.auditEvents.get('gone'), { actor_type: 'health_manager', target_name: '', space_guid: null, organization_guid: null });
  await store.close();
});

test('ingot events describes an event by its request or its data, without guids', (t) => {
  t.is(describeEvent({ data: { process_guid: 'p', process_type: 'web', request: { instances: 3, memory_in_mb: 512 } } }), 'instances: 3, memory_in_mb: 512');
  t.is(describeEvent({ data: { index: 1, instance: 'i-9', version: 'v', reason: 'CRASHED', exit_description: 'out of memory' } }), 'index: 1, reason: CRASHED, exit_description: out of memory');
  t.is(describeEvent({ data: { request: { environment_variables: { SECRET: REDACTED } } } }), `environment_variables.SECRET: ${REDACTED}`);
  t.is(describeEvent({ data: {} }), '');
});

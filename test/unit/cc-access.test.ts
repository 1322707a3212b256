// Tenancy rules of the cloud controller, pure (access.ts): which spaces a user's roles read and
// write, which orgs they see, who manages which roles — by example and as properties over
// random role sets. And the roles table: its uniqueness per kind of role, and the migration
// that turns "every user could use every space" into roles.
import test from 'ava';
import fc from 'fast-check';
import {
  accessOf,
  check,
  managesOrg,
  managesRole,
  readableSpaceList,
  ROLE_TYPES,
  seesOrg,
  seesRole,
  spaceAccess,
  within,
  isSpaceRole,
  type RoleGrant,
  type RoleType,
  type SpaceRef,
} from '../../kernel/cloud-controller/access.ts';
import { DbError } from '../../kernel/cloud-controller/db/driver.ts';
import { migrate, migrations } from '../../kernel/cloud-controller/db/migrations.ts';
import { openSqlite } from '../../kernel/cloud-controller/db/sqlite.ts';
import { sqlStore } from '../../kernel/cloud-controller/db/store.ts';

const SPACES: SpaceRef[] = [
  { guid: 'a1', organization_guid: 'A' },
  { guid: 'a2', organization_guid: 'A' },
  { guid: 'b1', organization_guid: 'B' },
];
const orgRole = (type: RoleType, org: string): RoleGrant => ({ type, organization_guid: org, space_guid: null });
const spaceRole = (type: RoleType, space: string): RoleGrant => ({ type, organization_guid: null, space_guid: space });
const user = { admin: false };

test('a space developer reads and writes its space, sees its org, nothing else', (t) => {
  const a = accessOf(user, [orgRole('organization_user', 'A'), spaceRole('space_developer', 'a1')], SPACES);
  t.is(spaceAccess(a, 'a1'), 'write');
  t.is(spaceAccess(a, 'a2'), 'none');
  t.is(spaceAccess(a, 'b1'), 'none');
  t.deepEqual([...a.visibleOrgs], ['A']);
  t.false(managesOrg(a, 'A'));
  t.is(check(a, 'a1', 'write'), 'ok');
  t.is(check(a, 'b1', 'read'), 'hidden');
});

test('a space auditor and a space manager read but do not write', (t) => {
  for (const type of ['space_auditor', 'space_manager'] as const) {
    const a = accessOf(user, [spaceRole(type, 'a1')], SPACES);
    t.is(check(a, 'a1', 'read'), 'ok', type);
    t.is(check(a, 'a1', 'write'), 'forbidden', type);
    t.true(seesOrg(a, 'A'), `${type} sees the space's org`);
  }
  const manager = accessOf(user, [spaceRole('space_manager', 'a1')], SPACES);
  t.true(managesRole(manager, { space_guid: 'a1' }, 'A'), 'a space manager gives roles in its space');
  t.false(managesRole(manager, { space_guid: null }, 'A'), 'but not org roles');
  t.false(managesRole(manager, { space_guid: 'a2' }, 'A'));
});

test('an org manager reads every space of its org, writes none, manages its roles', (t) => {
  const a = accessOf(user, [orgRole('organization_manager', 'A')], SPACES);
  t.deepEqual(readableSpaceList(a)?.sort(), ['a1', 'a2']);
  t.is(check(a, 'a1', 'write'), 'forbidden');
  t.is(check(a, 'b1', 'read'), 'hidden');
  t.true(managesOrg(a, 'A'));
  t.false(managesOrg(a, 'B'));
  t.true(managesRole(a, { space_guid: 'a2' }, 'A'));
  t.true(managesRole(a, { space_guid: null }, 'A'));
  t.false(managesRole(a, { space_guid: 'b1' }, 'B'));
});

test('org users and org auditors see the org but read no space', (t) => {
  for (const type of ['organization_user', 'organization_auditor'] as const) {
    const a = accessOf(user, [orgRole(type, 'A')], SPACES);
    t.true(seesOrg(a, 'A'));
    t.deepEqual(readableSpaceList(a), []);
    t.is(check(a, 'a1', 'read'), 'hidden');
  }
});

test('an admin reads and writes everywhere; lists are unfiltered', (t) => {
  const a = accessOf({ admin: true }, [], []);
  t.is(check(a, 'anything', 'write'), 'ok');
  t.is(readableSpaceList(a), undefined);
  t.true(seesOrg(a, 'Z'));
  t.true(managesRole(a, { space_guid: 'z1' }, 'Z'));
});

test('within: a requested filter narrowed to what is allowed', (t) => {
  t.is(within(undefined, undefined), undefined);
  t.deepEqual(within(['x'], undefined), ['x']);
  t.deepEqual(within(undefined, ['a']), ['a']);
  t.deepEqual(within(['a', 'b'], ['b', 'c']), ['b']);
  t.deepEqual(within(['a'], []), []);
});

const arbRole: fc.Arbitrary<RoleGrant> = fc
  .tuple(fc.constantFrom(...ROLE_TYPES), fc.constantFrom('A', 'B', 'C'), fc.constantFrom(...SPACES.map((s) => s.guid), 'c1'))
  .map(([type, org, space]) => (isSpaceRole(type) ? spaceRole(type, space) : orgRole(type, org)));
const ALL_SPACES = [...SPACES, { guid: 'c1', organization_guid: 'C' }];

test('properties: write implies read; reads come only from roles; roles are seen where held', (t) => {
  fc.assert(
    fc.property(fc.array(arbRole, { maxLength: 8 }), (roles) => {
      const a = accessOf(user, roles, ALL_SPACES);
      for (const s of ALL_SPACES) {
        const has = spaceAccess(a, s.guid);
        // Write only from space_developer; read from a space role or the org's manager.
        const dev = roles.some((r) => r.type === 'space_developer' && r.space_guid === s.guid);
        const reads = roles.some((r) => r.space_guid === s.guid && r.type !== 'space_developer' && isSpaceRole(r.type)) || roles.some((r) => r.type === 'organization_manager' && r.organization_guid === s.organization_guid);
        if (has === 'write') t.true(dev);
        if (dev) t.is(has, 'write');
        else t.is(has, reads ? 'read' : 'none');
        // Whoever reads a space sees its org.
        if (has !== 'none') t.true(seesOrg(a, s.organization_guid));
      }
      for (const r of roles) t.true(seesRole(a, r), `the holder sees its own ${r.type} role`);
      // Adding a role never takes access away.
      const more = accessOf(user, [...roles, spaceRole('space_auditor', 'b1')], ALL_SPACES);
      for (const s of a.readableSpaces) t.true(more.readableSpaces.has(s));
    }),
    { numRuns: 300 },
  );
});

test('roles table: one role of a type per user and org or space; existing users keep what they had', async (t) => {
  const db = openSqlite('sqlite::memory:');
  const at = '2024-01-01T00:00:00.000Z';
  // Migrate to the state before roles, with a user, an admin, an org and a space.
  await migrate(db, migrations.filter((m) => m.id < 2));
  await db.run("INSERT INTO users (guid, username, password_hash, admin, created_at, updated_at) VALUES ('u1', 'dev', 'x', 0, ?, ?), ('u0', 'root', 'x', 1, ?, ?)", [at, at, at, at]);
  await db.run("INSERT INTO organizations (guid, name, created_at, updated_at) VALUES ('o1', 'org', ?, ?)", [at, at]);
  await db.run("INSERT INTO spaces (guid, name, organization_guid, created_at, updated_at) VALUES ('s1', 'space', 'o1', ?, ?)", [at, at]);
  await migrate(db);
  const store = sqlStore(db);
  const roles = await store.roles.list({});
  t.deepEqual(roles.map((r) => [r.type, r.user_guid, r.organization_guid, r.space_guid]).sort(), [
    ['organization_user', 'u1', 'o1', null],
    ['space_developer', 'u1', null, 's1'],
  ]);
  const dup = (org: string | null, space: string | null, type: RoleType) => store.roles.insert({ guid: `g-${Math.random()}`, type, user_guid: 'u1', organization_guid: org, space_guid: space, created_at: at, updated_at: at });
  await t.throwsAsync(dup('o1', null, 'organization_user'), { instanceOf: DbError });
  await t.throwsAsync(dup(null, 's1', 'space_developer'), { instanceOf: DbError });
  await t.notThrowsAsync(dup('o1', null, 'organization_manager'));
  await t.notThrowsAsync(dup(null, 's1', 'space_auditor'));
  await store.close();
});

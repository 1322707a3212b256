// Private domains, pure and against a real SQLite store: who sees and changes a domain
// (access.ts), which new domain would overlap another owner's (route-names.ts), and migration 9
// — domains made before it are shared, and a list narrowed by visibleDomainWhere shows the
// shared ones and the private ones of the orgs the user sees.
import test from 'ava';
import fc from 'fast-check';
import { accessOf, managesDomain, seesDomain, visibleDomainWhere, type RoleGrant } from '../../kernel/cloud-controller/access.ts';
import { migrate, migrations } from '../../kernel/cloud-controller/db/migrations.ts';
import type { DomainRecord } from '../../kernel/cloud-controller/db/records.ts';
import { openSqlite } from '../../kernel/cloud-controller/db/sqlite.ts';
import { sqlStore } from '../../kernel/cloud-controller/db/store.ts';
import { domainsNest, overlappingDomain } from '../../kernel/cloud-controller/route-names.ts';

const SPACES = [
  { guid: 'a1', organization_guid: 'A' },
  { guid: 'b1', organization_guid: 'B' },
];
const orgRole = (type: RoleGrant['type'], org: string): RoleGrant => ({ type, organization_guid: org, space_guid: null });
const spaceRole = (type: RoleGrant['type'], space: string): RoleGrant => ({ type, organization_guid: null, space_guid: space });
const shared = { organization_guid: null };
const ofA = { organization_guid: 'A' };

test('a shared domain: everyone sees it, only admins change it', (t) => {
  const admin = accessOf({ admin: true }, [], []);
  const manager = accessOf({ admin: false }, [orgRole('organization_manager', 'A')], SPACES);
  const nobody = accessOf({ admin: false }, [], SPACES);
  for (const a of [admin, manager, nobody]) t.true(seesDomain(a, shared));
  t.true(managesDomain(admin, shared));
  t.false(managesDomain(manager, shared));
  t.false(managesDomain(nobody, shared));
});

test("a private domain: seen by any member of its org or of one of its spaces, changed by the org's managers and admins", (t) => {
  const cases: Array<[string, RoleGrant[], boolean, boolean]> = [
    ['org manager', [orgRole('organization_manager', 'A')], true, true],
    ['org user', [orgRole('organization_user', 'A')], true, false],
    ['org auditor', [orgRole('organization_auditor', 'A')], true, false],
    ['space developer only', [spaceRole('space_developer', 'a1')], true, false],
    ['space auditor only', [spaceRole('space_auditor', 'a1')], true, false],
    ['manager of another org', [orgRole('organization_manager', 'B')], false, false],
    ['developer in another org', [orgRole('organization_user', 'B'), spaceRole('space_developer', 'b1')], false, false],
    ['no role', [], false, false],
  ];
  for (const [who, roles, sees, manages] of cases) {
    const a = accessOf({ admin: false }, roles, SPACES);
    t.is(seesDomain(a, ofA), sees, `${who} sees`);
    t.is(managesDomain(a, ofA), manages, `${who} manages`);
  }
  const admin = accessOf({ admin: true }, [], []);
  t.true(seesDomain(admin, ofA));
  t.true(managesDomain(admin, ofA));
});

test('whoever manages a domain sees it (property over random roles)', (t) => {
  const role = fc.oneof(
    fc.record({ type: fc.constantFrom('organization_manager', 'organization_user', 'organization_auditor'), organization_guid: fc.constantFrom('A', 'B'), space_guid: fc.constant(null) }),
    fc.record({ type: fc.constantFrom('space_manager', 'space_developer', 'space_auditor'), organization_guid: fc.constant(null), space_guid: fc.constantFrom('a1', 'b1') }),
  ) as fc.Arbitrary<RoleGrant>;
  fc.assert(
    fc.property(fc.boolean(), fc.array(role, { maxLength: 6 }), fc.constantFrom(null, 'A', 'B', 'C'), (admin, roles, org) => {
      const a = accessOf({ admin }, roles, SPACES);
      const domain = { organization_guid: org };
      return !managesDomain(a, domain) || seesDomain(a, domain);
    }),
  );
  t.pass();
});

test('overlappingDomain: a private domain may not nest with a domain of another owner; shared ones among themselves are not checked', (t) => {
  const existing = [
    { name: 'apps.example.com', organization_guid: null },
    { name: 'acme.io', organization_guid: 'A' },
    { name: 'shop.beta.io', organization_guid: 'B' },
  ];
  t.true(domainsNest('x.acme.io', 'acme.io'));
  t.true(domainsNest('acme.io', 'x.acme.io'));
  t.false(domainsNest('xacme.io', 'acme.io'), 'a label boundary, not a suffix of characters');
  t.is(overlappingDomain('my.apps.example.com', 'A', existing)?.name, 'apps.example.com', 'under a shared domain');
  t.is(overlappingDomain('example.com', 'A', existing)?.name, 'apps.example.com', 'around a shared domain');
  t.is(overlappingDomain('x.acme.io', 'B', existing)?.name, 'acme.io', "under another org's");
  t.is(overlappingDomain('beta.io', 'A', existing)?.name, 'shop.beta.io', "around another org's");
  t.is(overlappingDomain('x.acme.io', null, existing)?.name, 'acme.io', "a shared domain under an org's private one");
  t.is(overlappingDomain('x.acme.io', 'A', existing), undefined, 'its own org may nest its domains');
  t.is(overlappingDomain('my.apps.example.com', null, existing), undefined, 'shared in shared: the admins’ affair');
  t.is(overlappingDomain('other.org', 'A', existing), undefined);
  t.is(overlappingDomain('acme.io', 'B', existing), undefined, 'the same name is the unique index’s to refuse');
});

test('migration 9: domains made before it are shared; a narrowed list shows shared ones and those of visible orgs', async (t) => {
  const db = openSqlite('sqlite::memory:');
  t.teardown(() => db.close());
  await migrate(db, migrations.filter((m) => m.id < 9));
  const at = '2026-01-01T00:00:00Z';
  await db.run('INSERT INTO domains (guid, name, internal, created_at, updated_at) VALUES (?, ?, 0, ?, ?)', ['d-old', 'old.example.com', at, at]);
  t.deepEqual(await migrate(db), [9]);
  const store = sqlStore(db);
  t.is((await store.domains.get('d-old'))?.organization_guid, null);

  for (const org of ['A', 'B']) await store.organizations.insert({ guid: org, name: `org-${org}`, quota_guid: null, created_at: at, updated_at: at });
  const domain = (guid: string, org: string | null): DomainRecord => ({ guid, name: `${guid}.example.org`, internal: false, organization_guid: org, created_at: at, updated_at: at });
  await store.domains.insert(domain('d-a', 'A'));
  await store.domains.insert(domain('d-b', 'B'));
  t.is((await store.domains.get('d-a'))?.organization_guid, 'A');

  const names = async (roles: RoleGrant[]) => (await store.domains.list({ ...visibleDomainWhere(accessOf({ admin: false }, roles, SPACES)) })).map((d) => d.guid).sort();
  t.deepEqual(await names([orgRole('organization_user', 'A')]), ['d-a', 'd-old']);
  t.deepEqual(await names([spaceRole('space_developer', 'b1')]), ['d-b', 'd-old']);
  t.deepEqual(await names([]), ['d-old'], 'no org seen: the shared ones only');
  t.is(visibleDomainWhere(accessOf({ admin: true }, [], [])), undefined, 'admins: no narrowing');

  await t.throwsAsync(store.organizations.delete({ guid: 'A' }), { any: true }, 'the owning org is a foreign key: its domains go first');
  await store.domains.delete({ organization_guid: 'A' });
  t.is(await store.organizations.delete({ guid: 'A' }), 1);
});

// The controller store's cases, for any database it runs on: filters, order, paging and
// counts; unique violations and rollbacks; the types that come back; migrations applied once
// — also by two controllers migrating at once — and kept across a reopen; named locks. Run on SQLite by
// test/unit/cc-state.test.ts and on PostgreSQL by test/integration/cc-state-postgres.test.ts.
import type { TestFn } from 'ava';
import { DbError, openDriver, openStore, type AppRecord, type OrganizationRecord, type Store } from '../../kernel/cloud-controller/db/mod.ts';
import { migrate, migrations } from '../../kernel/cloud-controller/db/migrations.ts';

export interface StoreCasesOptions {
  /** Where the cases run, for their titles: `sqlite`, `postgres`. */
  engine: string;
  /** The `db.url` of a new, empty database; one per call. */
  database: () => Promise<string>;
}

const org = (name: string, created_at: string): OrganizationRecord => ({ guid: `g-${name}`, name, created_at, updated_at: created_at });

export function registerStoreCases(test: TestFn<unknown>, { engine, database }: StoreCasesOptions): void {
  test(`${engine}: the store filters, orders, pages and counts`, async (t) => {
    const store = await openStore(await database());
    t.teardown(() => store.close());
    for (const [i, n] of ['b', 'a', 'c', 'd'].entries()) await store.organizations.insert(org(n, `2024-01-0${i + 1}T00:00:00.000Z`));
    t.is(await store.organizations.count(), 4);
    t.deepEqual((await store.organizations.list()).map((o) => o.name), ['b', 'a', 'c', 'd'], 'created_at order by default');
    t.deepEqual((await store.organizations.list({}, { orderBy: { column: 'name', desc: true }, limit: 2, offset: 1 })).map((o) => o.name), ['c', 'b']);
    t.deepEqual((await store.organizations.list({ name: ['a', 'd'] })).map((o) => o.name), ['a', 'd']);
    t.deepEqual(await store.organizations.list({ name: [] }), [], 'an empty IN matches nothing');
    t.is(await store.organizations.count({ name: 'zzz' }), 0);
    const updated = await store.organizations.update('g-a', { name: 'aa' });
    t.is(updated?.name, 'aa');
    t.not(updated?.updated_at, '2024-01-02T00:00:00.000Z');
    t.is(await store.organizations.updateWhere({ name: 'nope' }, { name: 'x' }), 0);
    t.is(await store.organizations.delete({ guid: ['g-b', 'g-c'] }), 2);
    await t.throwsAsync(store.organizations.list({}, { orderBy: { column: 'name; DROP TABLE x' as 'name' } }), { message: /no column/ });
  });

  test(`${engine}: the store reports unique violations and rolls transactions back`, async (t) => {
    const store = await openStore(await database());
    t.teardown(() => store.close());
    await store.organizations.insert(org('one', '2024-01-01T00:00:00.000Z'));
    const err = await t.throwsAsync(store.organizations.insert({ ...org('one', '2024-01-01T00:00:00.000Z'), guid: 'other' }), { instanceOf: DbError });
    t.is(err.code, 'unique_violation');
    await t.throwsAsync(
      store.transaction(async (tx) => {
        await tx.organizations.insert(org('two', '2024-01-01T00:00:00.000Z'));
        throw new Error('abort');
      }),
      { message: 'abort' },
    );
    t.is(await store.organizations.count({ name: 'two' }), 0);
    // A unique violation inside a transaction rolls back what came before it.
    await t.throwsAsync(
      store.transaction(async (tx) => {
        await tx.organizations.insert(org('three', '2024-01-01T00:00:00.000Z'));
        await tx.organizations.insert(org('one', '2024-01-01T00:00:00.000Z'));
      }),
      { instanceOf: DbError },
    );
    t.is(await store.organizations.count({ name: 'three' }), 0);
    // JSON and boolean columns round-trip.
    await store.users.insert({ guid: 'u', username: 'u', password_hash: 'h', admin: true, created_at: 'x', updated_at: 'x' });
    t.true((await store.users.get('u'))!.admin);
  });

  test(`${engine}: integers, big sizes and counts come back as numbers; a ? in a literal is no placeholder`, async (t) => {
    const store = await openStore(await database());
    t.teardown(() => store.close());
    await store.organizations.insert(org('o', 'x'));
    await store.spaces.insert({ guid: 's', name: 's', organization_guid: 'g-o', created_at: 'x', updated_at: 'x' });
    const app: AppRecord = { guid: 'a', name: 'what?', space_guid: 's', state: 'STOPPED', version: 'v', droplet_guid: null, environment_variables: { Q: '?' }, buildpacks: [], stack: 'bookworm', labels: {}, annotations: {}, created_at: 'x', updated_at: 'x' };
    await store.apps.insert(app);
    const size = 5 * 1024 ** 3;
    await store.packages.insert({ guid: 'p', app_guid: 'a', type: 'bits', state: 'READY', sha256: null, size, error: null, upload_controller_index: null, upload_claim: null, created_at: 'x', updated_at: 'x' });
    await store.processes.insert({ guid: 'w', app_guid: 'a', type: 'web', instances: 2, memory_in_mb: 256, disk_in_mb: 1024, command: null, health_check_type: 'port', health_check_endpoint: null, health_check_timeout: null, created_at: 'x', updated_at: 'x' });
    t.is((await store.packages.get('p'))!.size, size);
    t.is((await store.processes.get('w'))!.instances, 2);
    t.is(await store.packages.count({ app_guid: 'a' }), 1);
    t.deepEqual((await store.apps.find({ name: 'what?' }))?.environment_variables, { Q: '?' });
    t.is((await store.startedAppsAfter('', 10)).length, 0, "the literal 'STARTED' beside a ? placeholder");
  });

  test(`${engine}: migrations apply once, once between two migrating at once, and survive a reopen`, async (t) => {
    const url = await database();
    const all = migrations.map((m) => m.id);
    const [a, b] = [await openDriver(url), await openDriver(url)];
    // Two SQLite connections in one process would wait on each other synchronously (and one
    // controller is all SQLite serves); on PostgreSQL they race, as two controllers do.
    const applied = a.dialect === 'postgres' ? await Promise.all([migrate(a), migrate(b)]) : [await migrate(a), await migrate(b)];
    t.deepEqual(applied.flat().sort((x, y) => x - y), all, 'each migration applied by exactly one of them');
    t.deepEqual(await migrate(a), []);
    await Promise.all([a.close(), b.close()]);
    const store = await openStore(url);
    await store.organizations.insert(org('kept', '2024-01-01T00:00:00.000Z'));
    await store.close();
    const again = await openStore(url);
    t.is((await again.organizations.find({ name: 'kept' }))?.guid, 'g-kept');
    await again.close();
  });

  test(`${engine}: locked runs one read-modify-write at a time per name, across stores sharing the database`, async (t) => {
    const url = await database();
    const first = await openStore(url);
    // Two stores on one PostgreSQL database are two controllers; SQLite serves one, one store.
    const second = engine === 'sqlite' ? first : await openStore(url);
    t.teardown(async () => {
      if (second !== first) await second.close();
      await first.close();
    });
    await first.organizationQuotas.insert({ guid: 'q', name: 'q', total_memory_in_mb: null, total_instances: 0, total_routes: null, total_service_instances: null, created_at: 'x', updated_at: 'x' });
    const count = async () => (await first.organizationQuotas.get('q'))!.total_instances;
    const bump = (store: Store) =>
      store.locked('counter', async (tx) => {
        const n = (await tx.organizationQuotas.get('q'))!.total_instances!;
        await new Promise((r) => setTimeout(r, 5));
        await tx.organizationQuotas.update('q', { total_instances: n + 1 });
      });
    // More at once than a store's pool has connections: each waits on its own.
    await Promise.all(Array.from({ length: 24 }, (_, i) => bump(i % 2 ? first : second)));
    t.is(await count(), 24, 'no increment lost');
    const abort = first.locked('counter', async (tx) => {
      await tx.organizationQuotas.update('q', { total_instances: 0 });
      throw new Error('abort');
    });
    await t.throwsAsync(abort, { message: 'abort' });
    t.is(await count(), 24, 'rolled back');
    await bump(second);
    t.is(await count(), 25, 'and the lock released');
  });
}

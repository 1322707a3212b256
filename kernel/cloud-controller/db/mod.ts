// The controller's state: open the database named by `db.url`, migrate it, and hand out the
// Store. Only SQLite is wired today; PostgreSQL comes as a second SqlDriver.
import { migrate } from './migrations.ts';
import { openSqlite } from './sqlite.ts';
import { sqlStore, type Store } from './store.ts';

export { DbError, type SqlDriver } from './driver.ts';
export type { Store, Repo, Where, ListOptions } from './store.ts';
export type * from './records.ts';

export async function openStore(url: string): Promise<Store> {
  const driver = openSqlite(url);
  await migrate(driver);
  return sqlStore(driver);
}

// The controller's state: open the database named by `db.url`, migrate it, and hand out the
// Store. The url's scheme picks the driver: SQLite for one controller, PostgreSQL for several
// sharing one database.
import { DbError, type SqlDriver } from './driver.ts';
import { migrate } from './migrations.ts';
import { openPostgres } from './postgres.ts';
import { openSqlite } from './sqlite.ts';
import { sqlStore, type Store } from './store.ts';

export { DbError, type SqlDriver } from './driver.ts';
export type { Store, Repo, Where, ListOptions } from './store.ts';
export type * from './records.ts';

export async function openStore(url: string): Promise<Store> {
  const driver = await openDriver(url);
  try {
    await migrate(driver);
  } catch (err) {
    await driver.close().catch(() => undefined);
    throw err;
  }
  return sqlStore(driver);
}

/** The driver for a `db.url`, not yet migrated. */
export async function openDriver(url: string): Promise<SqlDriver> {
  if (url === 'sqlite::memory:' || url.startsWith('sqlite://')) return openSqlite(url);
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return openPostgres(url);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  throw new DbError(
    'open_failed',
    `Opening the database: ${scheme ? `the scheme ${scheme}: of db.url is not supported` : 'db.url has no scheme'}; expected sqlite://, sqlite::memory:, postgres:// or postgresql://`,
  );
}

// The one seam between the controller's state and a database engine. Everything above it
// (store.ts) writes portable SQL with `?` placeholders, TEXT/INTEGER/BIGINT columns and
// `LIMIT … OFFSET …`; a driver runs it: sqlite.ts, and postgres.ts, which rewrites `?` to
// `$n` — nothing else changes.

export type SqlParam = string | number | bigint | null;

export interface SqlDriver {
  readonly dialect: 'sqlite' | 'postgres';
  all<T>(sql: string, params?: SqlParam[]): Promise<T[]>;
  get<T>(sql: string, params?: SqlParam[]): Promise<T | undefined>;
  run(sql: string, params?: SqlParam[]): Promise<{ changes: number }>;
  /** Several statements at once, without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T>;
  /**
   * Inside a transaction: waits for the lock named `key`, then holds it until the transaction
   * ends, against every controller sharing the database.
   */
  lock(key: string): Promise<void>;
  close(): Promise<void>;
}

/** A database error the layers above act on: a unique key already taken. */
export class DbError extends Error {
  override name = 'DbError';
  constructor(
    readonly code: 'unique_violation' | 'open_failed' | 'migration_failed',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// The SQLite driver (better-sqlite3). better-sqlite3 is synchronous; the driver is async so
// the same store runs on PostgreSQL. Because a transaction spans awaits, an async lock keeps
// every other statement out while one is open — SQLite has one writer anyway.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DbError, type SqlDriver, type SqlParam } from './driver.ts';

export function openSqlite(url: string): SqlDriver {
  const file = url === 'sqlite::memory:' ? ':memory:' : url.replace(/^sqlite:\/\//, '');
  try {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const db = new Database(file);
    // WAL: readers never block the writer; a crash loses nothing that was committed.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    return new SqliteDriver(db, new Lock());
  } catch (err) {
    throw new DbError('open_failed', `Opening the SQLite database ${file}: ${(err as Error).message}`, { cause: err });
  }
}

class Lock {
  private tail: Promise<void> = Promise.resolve();
  held = false;

  async acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const prev = this.tail;
    this.tail = prev.then(() => next);
    await prev;
    this.held = true;
    return () => {
      this.held = false;
      release();
    };
  }

  /** Waits until no transaction is open (statements outside one take no lock of their own). */
  async idle(): Promise<void> {
    while (this.held) await this.tail;
  }
}

class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;

  constructor(
    private readonly db: Database.Database,
    private readonly txLock: Lock,
    private readonly inTx = false,
  ) {}

  async all<T>(sql: string, params: SqlParam[] = []): Promise<T[]> {
    await this.outside();
    return wrap(() => this.db.prepare(sql).all(...params) as T[]);
  }

  async get<T>(sql: string, params: SqlParam[] = []): Promise<T | undefined> {
    await this.outside();
    return wrap(() => this.db.prepare(sql).get(...params) as T | undefined);
  }

  async run(sql: string, params: SqlParam[] = []): Promise<{ changes: number }> {
    await this.outside();
    return wrap(() => ({ changes: this.db.prepare(sql).run(...params).changes }));
  }

  async exec(sql: string): Promise<void> {
    await this.outside();
    wrap(() => this.db.exec(sql));
  }

  async transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    if (this.inTx) return fn(this);
    const release = await this.txLock.acquire();
    try {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(new SqliteDriver(this.db, this.txLock, true));
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        this.db.exec('ROLLBACK');
        throw err;
      }
    } finally {
      release();
    }
  }

  // Nothing to take: a transaction here is already the only one (the async lock in this
  // process, BEGIN IMMEDIATE against any other process on the file).
  async lock(): Promise<void> {
    if (!this.inTx) throw new Error('lock() is only meaningful inside a transaction');
  }

  async close(): Promise<void> {
    await this.outside();
    this.db.close();
  }

  private async outside(): Promise<void> {
    if (!this.inTx) await this.txLock.idle();
  }
}

function wrap<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      throw new DbError('unique_violation', (err as Error).message, { cause: err });
    }
    throw err;
  }
}

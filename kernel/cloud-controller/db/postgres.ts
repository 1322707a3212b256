// The PostgreSQL driver (pg): the same portable SQL as SQLite, `?` placeholders rewritten to
// `$n`. Statements outside a transaction go to any pooled connection; a transaction holds one
// connection from BEGIN to COMMIT or ROLLBACK and every statement of it runs there.
import pg from 'pg';
import { DbError, type SqlDriver, type SqlParam } from './driver.ts';

const UNIQUE_VIOLATION = '23505';
/** The first key of the controller's named advisory locks ("ccl" in ASCII); the second is the name's hash. */
const NAMED_LOCKS = 0x63636c;
const INT8_OID = 20;

/**
 * pg returns BIGINT (and COUNT(*), which is BIGINT) as strings, lest a value beyond 2^53 lose
 * precision. The store's BIGINT columns are byte sizes, far below that, and it expects the
 * numbers SQLite returns — so this pool parses them as numbers.
 */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** Connects (once, to fail at start with a clear sentence) and returns the driver. */
export async function openPostgres(url: string): Promise<SqlDriver> {
  const pool = new pg.Pool({ connectionString: url, types, connectionTimeoutMillis: 10_000 });
  // An idle pooled connection that drops (a server restart) emits 'error' on the pool; without
  // a listener that would end the process. The next statement gets a fresh connection.
  pool.on('error', () => undefined);
  try {
    (await pool.connect()).release();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new DbError('open_failed', `Connecting to PostgreSQL at ${describeUrl(url)}: ${messageOf(err)}`, { cause: err });
  }
  return new PostgresDriver(pool);
}

/** host:port/database of a postgres url, never its password. */
export function describeUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '(an unparsable url)';
  }
  const host = u.searchParams.get('host') ?? decodeURIComponent(u.hostname);
  return `${host}:${u.port || '5432'}/${decodeURIComponent(u.pathname.slice(1))}`;
}

/** A connection error's sentence; a refused dual-stack connect is an AggregateError without one. */
function messageOf(err: unknown): string {
  const e = err as Error & { errors?: Error[]; code?: string };
  if (e.message) return e.message;
  if (e.errors?.length) return [...new Set(e.errors.map((x) => x.message))].join('; ');
  return e.code ?? String(err);
}

type Queryable = pg.Pool | pg.PoolClient;

class PostgresDriver implements SqlDriver {
  readonly dialect = 'postgres' as const;

  constructor(
    private readonly pool: pg.Pool,
    private readonly client?: pg.PoolClient,
  ) {}

  private get conn(): Queryable {
    return this.client ?? this.pool;
  }

  async all<T>(sql: string, params: SqlParam[] = []): Promise<T[]> {
    return (await query(this.conn, sql, params)).rows as T[];
  }

  async get<T>(sql: string, params: SqlParam[] = []): Promise<T | undefined> {
    return (await query(this.conn, sql, params)).rows[0] as T | undefined;
  }

  async run(sql: string, params: SqlParam[] = []): Promise<{ changes: number }> {
    return { changes: (await query(this.conn, sql, params)).rowCount ?? 0 };
  }

  async exec(sql: string): Promise<void> {
    // Without parameters pg uses the simple query protocol, which takes several statements.
    await wrap(() => this.conn.query(sql));
  }

  async transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    if (this.client) return fn(this);
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      try {
        const result = await fn(new PostgresDriver(this.pool, client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => (broken = true));
        throw err;
      }
    } finally {
      // A connection that could not roll back is in an unknown state: destroy it, never reuse it.
      client.release(broken);
    }
  }

  // A transaction-scoped advisory lock: released by COMMIT or ROLLBACK, also when the
  // connection dies. Two names of one hash share a lock, which only makes them wait in turn.
  async lock(key: string): Promise<void> {
    if (!this.client) throw new Error('lock() is only meaningful inside a transaction');
    await query(this.client, 'SELECT pg_advisory_xact_lock(?, hashtext(?))', [NAMED_LOCKS, key]);
  }

  async close(): Promise<void> {
    if (!this.client) await this.pool.end();
  }
}

async function query(conn: Queryable, sql: string, params: SqlParam[]): Promise<pg.QueryResult> {
  return wrap(() => conn.query(numberPlaceholders(sql), params));
}

async function wrap<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if ((err as { code?: string }).code === UNIQUE_VIOLATION) {
      throw new DbError('unique_violation', (err as Error).message, { cause: err });
    }
    throw err;
  }
}

/** `?` → `$1`, `$2`, … except inside '…' literals and "…" identifiers. */
export function numberPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote) {
      // A doubled quote inside a literal closes and reopens it: the same result.
      if (ch === quote) quote = null;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      out += `$${++n}`;
    } else {
      out += ch;
    }
  }
  return out;
}

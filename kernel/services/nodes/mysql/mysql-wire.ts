// A small MySQL/MariaDB client speaking the wire protocol over one socket (TCP or unix):
// the v10 handshake with mysql_native_password (and the auth switch to it), COM_QUERY with
// text result sets, OK and ERR packets. Enough for the node's admin work and for tests, and
// smaller than driving the `mariadb` command-line client per statement: errors keep their
// server codes (1045 access denied, 1226 too many connections), sessions stay open for as
// long as a test needs, no password passes through an argv. No TLS, no prepared statements,
// no multi-statements: every value the node sends is a literal quoted by mysql-sql.ts.
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** An ERR packet: the server's code (1045, 1226, …), SQLSTATE and message. */
export class MysqlError extends Error {
  override name = 'MysqlError';
  constructor(
    readonly errno: number,
    readonly sqlState: string,
    message: string,
  ) {
    super(message);
  }
}

export type Row = Record<string, string | null>;
export interface QueryResult {
  rows: Row[];
  affectedRows: number;
}

export interface MysqlTarget {
  host?: string;
  port?: number;
  /** A unix socket instead of host and port. */
  socketPath?: string;
  user: string;
  password: string;
  database?: string;
  timeoutMs?: number;
}

// Capability flags (the protocol's names).
const CLIENT_LONG_PASSWORD = 0x1;
const CLIENT_CONNECT_WITH_DB = 0x8;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_TRANSACTIONS = 0x2000;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_PLUGIN_AUTH = 0x80000;
const NATIVE_PASSWORD = 'mysql_native_password';
const UTF8MB4_GENERAL_CI = 45;
const COM_QUERY = 0x03;
const COM_QUIT = 0x01;

export class MysqlClient {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly packets: Buffer[] = [];
  private readonly waiters: Array<{ resolve(p: Buffer): void; reject(e: Error): void }> = [];
  private closedWith: Error | undefined;
  private seq = 0;
  /** Queries run one at a time on the connection, in the order they were asked. */
  private tail: Promise<unknown> = Promise.resolve();
  threadId = 0;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  static async connect(t: MysqlTarget): Promise<MysqlClient> {
    const where = t.socketPath ?? `${t.host}:${t.port}`;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = t.socketPath ? connect({ path: t.socketPath }) : connect({ host: t.host, port: t.port! });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`connecting to ${where} timed out`));
      }, t.timeoutMs ?? 5000);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const client = new MysqlClient(socket);
    try {
      await client.handshake(t);
    } catch (err) {
      client.socket.destroy();
      throw err;
    }
    return client;
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** One statement; its rows (text, NULL as null) or the count it affected. */
  query(sql: string): Promise<QueryResult> {
    const run = this.tail.then(() => this.runQuery(sql));
    this.tail = run.catch(() => undefined);
    return run;
  }

  close(): void {
    if (!this.closedWith) {
      this.seq = 0;
      this.write(Buffer.from([COM_QUIT]));
    }
    this.socket.end();
    this.socket.destroy();
  }

  private async handshake(t: MysqlTarget): Promise<void> {
    const hello = await this.read();
    if (hello[0] === 0xff) throw parseErr(hello); // e.g. 1040 too many connections, before auth
    const h = parseHandshake(hello);
    this.threadId = h.threadId;
    const flags = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | (t.database ? CLIENT_CONNECT_WITH_DB : 0);
    const auth = nativePassword(t.password, h.seed);
    const head = Buffer.alloc(32);
    head.writeUInt32LE(flags, 0);
    head.writeUInt32LE(1 << 24, 4);
    head[8] = UTF8MB4_GENERAL_CI;
    this.write(
      Buffer.concat([head, cstring(t.user), Buffer.from([auth.length]), auth, t.database ? cstring(t.database) : Buffer.alloc(0), cstring(NATIVE_PASSWORD)]),
    );
    let reply = await this.read();
    if (reply[0] === 0xfe) {
      // Auth switch: the server wants another plugin (or a fresh seed for this one).
      const nul = reply.indexOf(0, 1);
      const plugin = reply.toString('latin1', 1, nul);
      if (plugin !== NATIVE_PASSWORD) throw new MysqlError(0, 'HY000', `server asks for auth plugin ${plugin}; only ${NATIVE_PASSWORD} is spoken`);
      let seed = reply.subarray(nul + 1);
      if (seed[seed.length - 1] === 0) seed = seed.subarray(0, -1);
      this.write(nativePassword(t.password, seed));
      reply = await this.read();
    }
    if (reply[0] === 0xff) throw parseErr(reply);
    if (reply[0] !== 0x00) throw new MysqlError(0, 'HY000', `unexpected packet 0x${reply[0]?.toString(16)} after authentication`);
  }

  private async runQuery(sql: string): Promise<QueryResult> {
    this.seq = 0;
    this.write(Buffer.concat([Buffer.from([COM_QUERY]), Buffer.from(sql, 'utf8')]));
    const first = await this.read();
    if (first[0] === 0xff) throw parseErr(first);
    if (first[0] === 0x00) return { rows: [], affectedRows: Number(lenencInt(first, 1).value) };
    const count = Number(lenencInt(first, 0).value);
    const names: string[] = [];
    for (let i = 0; i < count; i++) names.push(columnName(await this.read()));
    if (!isEof(await this.read())) throw new MysqlError(0, 'HY000', 'expected EOF after column definitions');
    const rows: Row[] = [];
    for (;;) {
      const p = await this.read();
      if (isEof(p)) break;
      if (p[0] === 0xff) throw parseErr(p);
      const row: Row = {};
      let at = 0;
      for (const name of names) {
        if (p[at] === 0xfb) {
          row[name] = null;
          at++;
        } else {
          const s = lenencString(p, at);
          row[name] = s.value;
          at = s.end;
        }
      }
      rows.push(row);
    }
    return { rows, affectedRows: 0 };
  }

  private write(payload: Buffer): void {
    const header = Buffer.alloc(4);
    header.writeUIntLE(payload.length, 0, 3);
    header[3] = this.seq++ & 0xff;
    this.socket.write(Buffer.concat([header, payload]));
  }

  private read(): Promise<Buffer> {
    const p = this.packets.shift();
    if (p) return Promise.resolve(p);
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 4) {
      const len = this.buffer.readUIntLE(0, 3);
      if (this.buffer.length < 4 + len) return;
      this.seq = (this.buffer[3]! + 1) & 0xff;
      const packet = this.buffer.subarray(4, 4 + len);
      this.buffer = this.buffer.subarray(4 + len);
      const w = this.waiters.shift();
      if (w) w.resolve(packet);
      else this.packets.push(packet);
    }
  }

  private fail(err: Error): void {
    this.closedWith ??= err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}

/** One statement on a fresh connection, closed afterwards. */
export async function mysqlQuery(target: MysqlTarget, sql: string): Promise<QueryResult> {
  const client = await MysqlClient.connect(target);
  try {
    return await client.query(sql);
  } finally {
    client.close();
  }
}

/** The server's greeting: its thread id and the 20-byte auth seed. */
export function parseHandshake(p: Buffer): { threadId: number; seed: Buffer; serverVersion: string } {
  if (p[0] !== 10) throw new MysqlError(0, 'HY000', `unsupported protocol version ${p[0]}`);
  const verEnd = p.indexOf(0, 1);
  const serverVersion = p.toString('latin1', 1, verEnd);
  let at = verEnd + 1;
  const threadId = p.readUInt32LE(at);
  at += 4;
  const part1 = p.subarray(at, at + 8);
  at += 8 + 1; // filler
  at += 2 + 1 + 2 + 2; // capabilities (low), charset, status, capabilities (high)
  const authLen = p[at]!;
  at += 1 + 10; // reserved
  const part2 = p.subarray(at, at + Math.max(13, authLen - 8) - 1); // without its NUL
  return { threadId, seed: Buffer.concat([part1, part2]), serverVersion };
}

/** mysql_native_password: SHA1(pw) XOR SHA1(seed + SHA1(SHA1(pw))); empty for an empty password. */
export function nativePassword(password: string, seed: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const sha1 = (...b: Buffer[]) => createHash('sha1').update(Buffer.concat(b)).digest();
  const stage1 = sha1(Buffer.from(password, 'utf8'));
  const mix = sha1(seed, sha1(stage1));
  return Buffer.from(stage1.map((b, i) => b ^ mix[i]!));
}

export function lenencInt(p: Buffer, at: number): { value: bigint; end: number } {
  const first = p[at]!;
  if (first < 0xfb) return { value: BigInt(first), end: at + 1 };
  if (first === 0xfc) return { value: BigInt(p.readUInt16LE(at + 1)), end: at + 3 };
  if (first === 0xfd) return { value: BigInt(p.readUIntLE(at + 1, 3)), end: at + 4 };
  if (first === 0xfe) return { value: p.readBigUInt64LE(at + 1), end: at + 9 };
  throw new MysqlError(0, 'HY000', `not a length-encoded integer (0x${first.toString(16)})`);
}

function lenencString(p: Buffer, at: number): { value: string; end: number } {
  const len = lenencInt(p, at);
  const end = len.end + Number(len.value);
  return { value: p.toString('utf8', len.end, end), end };
}

/** A column definition's name (catalog, schema, table, org_table, then name). */
function columnName(p: Buffer): string {
  let at = 0;
  for (let i = 0; i < 4; i++) at = lenencString(p, at).end;
  return lenencString(p, at).value;
}

function isEof(p: Buffer): boolean {
  return p[0] === 0xfe && p.length < 9;
}

export function parseErr(p: Buffer): MysqlError {
  const errno = p.readUInt16LE(1);
  const hasState = p[3] === 0x23; // '#'
  return new MysqlError(errno, hasState ? p.toString('latin1', 4, 9) : 'HY000', p.toString('utf8', hasState ? 9 : 3));
}

function cstring(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
}

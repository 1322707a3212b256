// Connections to backends: one TCP connection per exchange at a time, kept alive and pooled
// per endpoint address afterwards (most recently used first, so the warmest is reused and the
// coldest times out). An idle connection the backend closes leaves the pool at once; one that
// idles past the backend's own keep-alive timeout is closed by us first.
import { connect, type Socket } from 'node:net';

const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** Who is using a connection: the exchange it carries. */
export interface BackendUser {
  onBackendConnected(conn: BackendConnection): void;
  onBackendData(conn: BackendConnection, chunk: Buffer): void;
  onBackendDrain(conn: BackendConnection): void;
  /** The connection closed (refused, reset, timed out connecting, or ended) while in use. */
  onBackendClosed(conn: BackendConnection): void;
  /** The user's deadline on this connection passed (the response is late). */
  onBackendDeadline(conn: BackendConnection): void;
}

export class BackendConnection {
  readonly socket: Socket;
  user: BackendUser | null = null;
  connected = false;
  /** It served an earlier exchange: a failure may be the keep-alive race, not a dead backend. */
  reused = false;
  idle = false;
  /** ms since the epoch; 0 means none. Checked by the pool's sweep. */
  deadline = 0;
  /** Why it closed: a socket error code, or `connect_timeout`. */
  error: string | undefined;

  constructor(
    private readonly pool: BackendPool,
    readonly address: string,
    host: string,
    port: number,
  ) {
    // Reads land in one buffer shared by every backend connection of this process and are
    // copied out at their actual size: cheaper than a fresh 64 KB buffer and a stream push per read.
    this.socket = connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number, buf: Uint8Array): boolean => {
          // Bytes nobody asked for mean the connection is out of step: never reuse it.
          if (this.user === null) this.discard();
          else this.user.onBackendData(this, Buffer.from(buf.subarray(0, n)));
          // Backpressure is socket.pause()/resume(), which stop and restart reads here too.
          return true;
        },
      },
    });
    this.deadline = Date.now() + pool.connectTimeoutMs;
    this.socket.on('connect', () => {
      this.connected = true;
      this.deadline = 0;
      this.user?.onBackendConnected(this);
    });
    this.socket.on('drain', () => this.user?.onBackendDrain(this));
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error ??= err.code ?? err.message;
    });
    this.socket.on('close', () => {
      this.pool.forget(this);
      const user = this.user;
      this.user = null;
      user?.onBackendClosed(this);
    });
  }

  /** Closes the connection without telling its user (who is done with it). */
  discard(): void {
    this.user = null;
    this.socket.destroy();
  }

  /** Closes it and tells its user why (a failure of the connection). */
  fail(reason: string): void {
    this.error ??= reason;
    this.socket.destroy();
  }
}

export class BackendPool {
  private readonly idleByAddress = new Map<string, BackendConnection[]>();
  private readonly all = new Set<BackendConnection>();

  constructor(
    readonly connectTimeoutMs: number,
    private readonly idleTimeoutMs: number,
    private readonly maxIdlePerAddress: number,
  ) {}

  get size(): number {
    return this.all.size;
  }

  /** A pooled idle connection to `address`, or a new one (connecting). */
  acquire(address: string, host: string, port: number, user: BackendUser): BackendConnection {
    const list = this.idleByAddress.get(address);
    if (list !== undefined) {
      while (list.length > 0) {
        const conn = list.pop()!;
        if (conn.socket.destroyed) continue;
        conn.idle = false;
        conn.reused = true;
        conn.deadline = 0;
        conn.user = user;
        return conn;
      }
    }
    const conn = new BackendConnection(this, address, host, port);
    conn.user = user;
    this.all.add(conn);
    return conn;
  }

  /** Back to the pool after a clean exchange; `keepAliveMs` is the backend's own idle limit. */
  release(conn: BackendConnection, keepAliveMs: number | undefined): void {
    conn.user = null;
    if (conn.socket.destroyed || this.maxIdlePerAddress === 0) return conn.discard();
    let list = this.idleByAddress.get(conn.address);
    if (list === undefined) {
      list = [];
      this.idleByAddress.set(conn.address, list);
    }
    if (list.length >= this.maxIdlePerAddress) return conn.discard();
    // Close a second before the backend would, so a reused connection is rarely one it is closing.
    const limit = keepAliveMs === undefined ? this.idleTimeoutMs : Math.min(this.idleTimeoutMs, Math.max(keepAliveMs - 1000, 500));
    conn.idle = true;
    conn.deadline = Date.now() + limit;
    list.push(conn);
  }

  /** Closes every idle connection to `address` (after one of them turned out dead). */
  purgeIdle(address: string): void {
    const list = this.idleByAddress.get(address);
    if (list === undefined) return;
    this.idleByAddress.delete(address);
    for (const conn of list) conn.discard();
  }

  /** Called when a connection closed, whatever its state. */
  forget(conn: BackendConnection): void {
    this.all.delete(conn);
    if (!conn.idle) return;
    conn.idle = false;
    const list = this.idleByAddress.get(conn.address);
    if (list === undefined) return;
    const i = list.indexOf(conn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.idleByAddress.delete(conn.address);
  }

  /** Enforces deadlines: idle expiry, connect timeouts, and the users' own deadlines. */
  sweep(now: number): void {
    for (const conn of this.all) {
      if (conn.deadline === 0 || conn.deadline > now) continue;
      conn.deadline = 0;
      if (conn.idle) conn.discard();
      else if (!conn.connected) conn.fail('connect_timeout');
      else conn.user?.onBackendDeadline(conn);
    }
  }

  closeAll(): void {
    for (const conn of this.all) conn.discard();
    this.all.clear();
    this.idleByAddress.clear();
  }
}

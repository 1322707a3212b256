// Just enough AMQP 0-9-1 to open and hold a connection as an app would (the handshake:
// protocol header, Start/Start-Ok with PLAIN, Tune/Tune-Ok, Open/Open-Ok), and to hear the
// server close it. No AMQP client package is installed; messages themselves go through the
// management API (services-rabbitmq.ts). Tests use this for what only a real connection
// shows: the vhost's connection limit, refused credentials, and unbind closing a live one.
import { connect, type Socket } from 'node:net';

export interface AmqpTarget {
  host: string;
  port: number;
  username: string;
  password: string;
  vhost: string;
}

/** The server refused or ended the connection: `code` is its reply code (403 ACCESS_REFUSED, 530 NOT_ALLOWED, 320 CONNECTION_FORCED), 0 when it just hung up. */
export class AmqpClosed extends Error {
  override name = 'AmqpClosed';
  constructor(
    readonly code: number,
    readonly text: string,
  ) {
    super(code ? `AMQP ${code}: ${text}` : `AMQP: ${text}`);
  }
}

const FRAME_METHOD = 1;
const FRAME_HEARTBEAT = 8;
const FRAME_END = 0xce;
const CONNECTION = 10;
const M = { start: 10, startOk: 11, tune: 30, tuneOk: 31, open: 40, openOk: 41, close: 50, closeOk: 51 } as const;

export class AmqpConnection {
  /** Settles when the server closes the connection (never rejects). */
  readonly closed: Promise<AmqpClosed>;
  private onMethod: ((method: number, args: Buffer) => void) | undefined;
  private settleClosed!: (e: AmqpClosed) => void;
  private buffered = Buffer.alloc(0);

  private constructor(private readonly socket: Socket) {
    this.closed = new Promise((r) => (this.settleClosed = r));
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('close', () => this.settleClosed(new AmqpClosed(0, 'the server hung up')));
    socket.on('error', (err) => this.settleClosed(new AmqpClosed(0, err.message)));
  }

  /** Opens a connection to the vhost; rejects with AmqpClosed when the server refuses it. */
  static async open(t: AmqpTarget, timeoutMs = 10_000): Promise<AmqpConnection> {
    const socket = connect({ host: t.host, port: t.port });
    const c = new AmqpConnection(socket);
    const timer = setTimeout(() => socket.destroy(new Error(`no handshake within ${timeoutMs} ms`)), timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('error', reject);
      });
      socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
      await c.expect(M.start);
      c.send(M.startOk, Buffer.concat([u32(0), shortstr('PLAIN'), longstr(Buffer.from(`\0${t.username}\0${t.password}`)), shortstr('en_US')]));
      const tune = await c.expect(M.tune);
      c.send(M.tuneOk, Buffer.concat([tune.subarray(0, 6), u16(0)])); // no heartbeats: tests are short
      c.send(M.open, Buffer.concat([shortstr(t.vhost), shortstr(''), Buffer.from([0])]));
      await c.expect(M.openOk);
      return c;
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private send(method: number, args: Buffer): void {
    const payload = Buffer.concat([u16(CONNECTION), u16(method), args]);
    const header = Buffer.alloc(7);
    header.writeUInt8(FRAME_METHOD, 0);
    header.writeUInt16BE(0, 1);
    header.writeUInt32BE(payload.length, 3);
    this.socket.write(Buffer.concat([header, payload, Buffer.from([FRAME_END])]));
  }

  /** The next connection method's arguments if it is `method`; a Close or a hang-up instead rejects with AmqpClosed. */
  private expect(method: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.onMethod = (got, args) => (got === method ? resolve(args) : reject(new AmqpClosed(0, `expected method ${method}, got ${got}`)));
      void this.closed.then(reject);
    });
  }

  private receive(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 8) {
      const size = this.buffered.readUInt32BE(3);
      if (this.buffered.length < size + 8) return;
      const type = this.buffered.readUInt8(0);
      const payload = this.buffered.subarray(7, 7 + size);
      this.buffered = this.buffered.subarray(size + 8);
      if (type === FRAME_HEARTBEAT || type !== FRAME_METHOD || payload.readUInt16BE(0) !== CONNECTION) continue;
      const method = payload.readUInt16BE(2);
      const args = payload.subarray(4);
      if (method === M.close) {
        const code = args.readUInt16BE(0);
        const text = args.subarray(3, 3 + args.readUInt8(2)).toString();
        this.send(M.closeOk, Buffer.alloc(0));
        this.settleClosed(new AmqpClosed(code, text));
        this.socket.end();
        continue;
      }
      this.onMethod?.(method, args);
    }
  }
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function shortstr(s: string): Buffer {
  const body = Buffer.from(s);
  return Buffer.concat([Buffer.from([body.length]), body]);
}

function longstr(body: Buffer): Buffer {
  return Buffer.concat([u32(body.length), body]);
}

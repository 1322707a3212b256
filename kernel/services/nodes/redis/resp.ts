// A small Redis client speaking RESP2 over one socket: commands are pipelined in order and
// each reply resolves its command. Enough for the node's admin work (AUTH, PING, ACL, CLIENT)
// and for tests; the `redis` npm client is not a dependency and need not be for this.
import { connect, type Socket } from 'node:net';

export type RespValue = string | number | null | RespValue[];

/** An error reply (`-ERR …`, `-OOM …`, `-WRONGPASS …`): `kind` is its first word. */
export class RespError extends Error {
  override name = 'RespError';
  readonly kind: string;
  constructor(message: string) {
    super(message);
    this.kind = message.split(' ')[0] ?? 'ERR';
  }
}

interface Pending {
  resolve(v: RespValue): void;
  reject(e: Error): void;
}

export class RespClient {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly pending: Pending[] = [];
  private closedWith: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  /** Connects and, given credentials, authenticates (AUTH user pass, or AUTH pass for `default`). */
  static async connect(opts: { host: string; port: number; username?: string; password?: string; timeoutMs?: number }): Promise<RespClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: opts.host, port: opts.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`connecting to ${opts.host}:${opts.port} timed out`));
      }, opts.timeoutMs ?? 5000);
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
    socket.setNoDelay(true);
    const client = new RespClient(socket);
    if (opts.password !== undefined) {
      try {
        await client.command(...(opts.username ? ['AUTH', opts.username, opts.password] : ['AUTH', opts.password]));
      } catch (err) {
        client.close();
        throw err;
      }
    }
    return client;
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  command(...args: Array<string | number>): Promise<RespValue> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.socket.write(encode(args.map(String)));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      let parsed: ReturnType<typeof parseReply>;
      try {
        parsed = parseReply(this.buffer, 0);
      } catch (err) {
        this.fail(err as Error);
        this.socket.destroy();
        return;
      }
      if (!parsed) return;
      this.buffer = this.buffer.subarray(parsed.end);
      const p = this.pending.shift();
      if (!p) continue;
      if (parsed.value instanceof RespError) p.reject(parsed.value);
      else p.resolve(parsed.value);
    }
  }

  private fail(err: Error): void {
    this.closedWith ??= err;
    for (const p of this.pending.splice(0)) p.reject(err);
  }
}

/** One command on a fresh connection, closed afterwards. */
export async function redisCommand(
  target: { host: string; port: number; username?: string; password?: string },
  ...args: Array<string | number>
): Promise<RespValue> {
  const client = await RespClient.connect(target);
  try {
    return await client.command(...args);
  } finally {
    client.close();
  }
}

export function encode(args: string[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.from(a);
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** One reply from `buf` at `at`, or undefined while it is incomplete. */
export function parseReply(buf: Buffer, at: number): { value: RespValue | RespError; end: number } | undefined {
  const lineEnd = buf.indexOf('\r\n', at);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buf[at]!);
  const line = buf.toString('utf8', at + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new RespError(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, end: next };
      if (buf.length < next + len + 2) return undefined;
      return { value: buf.toString('utf8', next, next + len), end: next + len + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: RespValue[] = [];
      let end = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, end);
        if (!item) return undefined;
        // An error inside an array (EXEC) is kept as its message.
        items.push(item.value instanceof RespError ? item.value.message : item.value);
        end = item.end;
      }
      return { value: items, end };
    }
    default:
      throw new Error(`not a RESP reply (type byte ${JSON.stringify(type)})`);
  }
}

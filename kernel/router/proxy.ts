// The proxy: HTTP/1.1 from clients to backends over raw TCP sockets. One process's share of
// the router's traffic, with its own copy of the routing table.
//
// Why raw sockets and not node:http: the proxy forwards heads line for line and bodies as
// they came (streamed, never buffered whole), so it needs only framing, not a full message
// model; node's http client alone costs more than half of a proxy's throughput.
//
// A client connection reads request heads and carries one exchange (exchange.ts) at a time;
// requests a client pipelines wait in its buffer. Malformed requests are answered 400 here
// and never reach a backend. Timeouts are deadlines checked by one sweep every 100 ms rather
// than a timer per socket.
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { AccessRecord } from './access-log.ts';
import { BackendPool } from './backend-pool.ts';
import type { ProxySettings } from './config.ts';
import type { Endpoint } from './endpoint-pool.ts';
import { BadRequestError } from './errors.ts';
import { Exchange } from './exchange.ts';
import { clientAddress, routerResponse } from './headers.ts';
import { BODY_NONE, CRLF_CRLF, findHeadEnd, leadingEmptyLines, parseRequestHead, type RequestHead } from './http-wire.ts';
import type { RouteTable } from './route-table.ts';
import type { ProxyStats, RouterErrorKind } from './stats.ts';

export interface ProxyOptions {
  settings: ProxySettings;
  table: RouteTable;
  stats: ProxyStats;
  log: Logger;
  /** Called once per finished request when access records are wanted. */
  onAccess?: ((record: AccessRecord, endpoint: Endpoint | undefined) => void) | undefined;
}

const SWEEP_MS = 100;

// Client connection states.
const READ_HEAD = 0;
const READ_BODY = 1;
const AWAIT_RESPONSE = 2;
/** Upgraded (a WebSocket): bytes flow both ways untouched. */
const TUNNEL = 3;
const CLOSED = 4;

export class Proxy {
  readonly backends: BackendPool;
  readonly settings: ProxySettings;
  readonly table: RouteTable;
  readonly stats: ProxyStats;
  readonly log: Logger;
  readonly onAccess: ProxyOptions['onAccess'];
  draining = false;
  private readonly clients = new Set<ClientConnection>();
  private readonly failedUntil = new Map<string, number>();
  private server: Server | undefined;
  private readonly sweeper: NodeJS.Timeout;
  private drainWaiters: Array<() => void> = [];

  constructor(opts: ProxyOptions) {
    this.settings = opts.settings;
    this.table = opts.table;
    this.stats = opts.stats;
    this.log = opts.log;
    this.onAccess = opts.onAccess;
    this.backends = new BackendPool(opts.settings.connectTimeoutMs, opts.settings.backendIdleMs, opts.settings.maxIdlePerEndpoint);
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  get connectionCount(): number {
    return this.clients.size;
  }

  /** Starts accepting clients; resolves with the port. */
  listen(): Promise<number> {
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: this.settings.port, host: this.settings.host }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.error({ err: err.message }, 'proxy server error'));
        const addr = server.address();
        resolve(typeof addr === 'object' && addr !== null ? addr.port : this.settings.port);
      });
    });
  }

  /** True while an endpoint whose connection failed is out of rotation. */
  readonly isFailed = (address: string): boolean => {
    if (this.failedUntil.size === 0) return false;
    const until = this.failedUntil.get(address);
    return until !== undefined && until > Date.now();
  };

  markFailed(address: string): void {
    this.failedUntil.set(address, Date.now() + this.settings.failedCooldownMs);
  }

  /**
   * Stops accepting, closes idle keep-alive connections, and resolves when every request in
   * flight has had its response (connections close after it). Upgraded connections
   * (WebSockets) are not waited for; close() ends them.
   */
  drain(): Promise<void> {
    this.draining = true;
    this.server?.close();
    for (const c of this.clients) c.closeIfIdle();
    return new Promise((resolve) => {
      this.drainWaiters.push(resolve);
      this.checkDrained();
    });
  }

  async close(): Promise<void> {
    this.draining = true;
    clearInterval(this.sweeper);
    const server = this.server;
    if (server?.listening) await new Promise<void>((r) => server.close(() => r()));
    for (const c of this.clients) c.socket.destroy();
    this.backends.closeAll();
  }

  forget(client: ClientConnection): void {
    this.clients.delete(client);
    if (this.draining) this.checkDrained();
  }

  private checkDrained(): void {
    if (this.drainWaiters.length === 0) return;
    for (const c of this.clients) if (c.state !== TUNNEL) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private accept(socket: Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    this.clients.add(new ClientConnection(this, socket));
  }

  private sweep(): void {
    const now = Date.now();
    for (const c of this.clients) if (c.deadline !== 0 && c.deadline <= now) c.onDeadline();
    this.backends.sweep(now);
    if (this.failedUntil.size > 0) for (const [a, until] of this.failedUntil) if (until <= now) this.failedUntil.delete(a);
  }
}

export class ClientConnection {
  state = READ_HEAD;
  /** Bytes received and not yet consumed (pipelined requests, or a head being completed). */
  private buffered: Buffer | null = null;
  /**
   * A head arriving in pieces, kept as a list (joined once it is complete) so a client that
   * trickles bytes cannot make each new one cost a copy of everything so far.
   */
  private partial: Buffer[] | null = null;
  private partialBytes = 0;
  /** The last bytes of the partial head: a CRLFCRLF may straddle pieces. */
  private partialTail: Buffer | null = null;
  exchange: Exchange | null = null;
  /** ms since the epoch; 0 means none. */
  deadline: number;
  /** The client half-closed; finish the exchange in flight, then close. */
  ended = false;
  private paused = false;
  private processing = false;
  private awaitingHead = false;
  readonly clientIp: string;
  readonly remote: string;

  constructor(
    readonly proxy: Proxy,
    readonly socket: Socket,
  ) {
    this.clientIp = clientAddress(socket.remoteAddress);
    this.remote = `${this.clientIp}:${socket.remotePort ?? 0}`;
    this.deadline = Date.now() + proxy.settings.clientIdleMs;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.exchange?.onClientDrain());
    socket.on('end', () => this.onEnd());
    socket.on('error', () => undefined);
    socket.on('close', () => this.onClose());
  }

  private onData(chunk: Buffer): void {
    switch (this.state) {
      case READ_HEAD:
        if (this.partial !== null) this.addToPartialHead(chunk);
        else {
          this.append(chunk);
          this.process();
        }
        return;
      case READ_BODY: {
        this.deadline = Date.now() + this.proxy.settings.clientIdleMs;
        const rest = this.exchange!.requestBody(chunk);
        if (rest !== null) this.append(rest);
        return;
      }
      case AWAIT_RESPONSE:
        // Pipelined requests wait for the response in flight; stop reading if they pile up.
        this.append(chunk);
        if (this.buffered!.length > this.proxy.settings.maxHeaderBytes) this.pause();
        return;
      case TUNNEL:
        this.exchange!.tunnelToBackend(chunk);
        return;
    }
  }

  private append(chunk: Buffer): void {
    this.buffered = this.buffered === null ? chunk : Buffer.concat([this.buffered, chunk]);
  }

  private addToPartialHead(chunk: Buffer): void {
    const parts = this.partial!;
    const edge = Buffer.concat([this.partialTail!, chunk.subarray(0, 3)]);
    const complete = edge.indexOf(CRLF_CRLF) >= 0 || chunk.indexOf(CRLF_CRLF) >= 0;
    parts.push(chunk);
    this.partialBytes += chunk.length;
    this.partialTail = Buffer.concat([this.partialTail!, chunk]).subarray(-3);
    if (complete || this.partialBytes > this.proxy.settings.maxHeaderBytes) {
      this.buffered = Buffer.concat(parts);
      this.partial = null;
      this.partialTail = null;
      this.process();
    }
  }

  /** Parses and starts whatever complete requests are buffered, one exchange at a time. */
  private process(): void {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.state === READ_HEAD && this.buffered !== null) {
        let buf = this.buffered;
        const skip = leadingEmptyLines(buf);
        if (skip > 0) {
          buf = buf.subarray(skip);
          this.buffered = buf.length > 0 ? buf : null;
          if (buf.length === 0) break;
        }
        const max = this.proxy.settings.maxHeaderBytes;
        const end = findHeadEnd(buf);
        if (end < 0 || end > max) {
          if (end > max || buf.length > max) {
            this.reject(400, 'bad_request', `The request head is larger than ${max} bytes.`);
          } else {
            // A partial head: collect the rest, and give the client a bounded time to send it.
            this.partial = [buf];
            this.partialBytes = buf.length;
            this.partialTail = buf.subarray(-3);
            this.buffered = null;
            if (!this.awaitingHead) {
              this.awaitingHead = true;
              this.deadline = Date.now() + this.proxy.settings.headerTimeoutMs;
            }
          }
          break;
        }
        const head = buf.toString('latin1', 0, end);
        this.buffered = end + 4 < buf.length ? buf.subarray(end + 4) : null;
        this.awaitingHead = false;
        let req: RequestHead;
        try {
          req = parseRequestHead(head);
        } catch (err) {
          if (!(err instanceof BadRequestError)) throw err;
          this.reject(400, 'bad_request', err.reason);
          break;
        }
        this.startExchange(req);
      }
    } finally {
      this.processing = false;
    }
  }

  private startExchange(req: RequestHead): void {
    const ex = new Exchange(this, req);
    this.exchange = ex;
    this.deadline = 0;
    if (req.bodyKind === BODY_NONE) {
      this.state = AWAIT_RESPONSE;
    } else {
      this.state = READ_BODY;
      this.deadline = Date.now() + this.proxy.settings.clientIdleMs;
      const buf = this.buffered;
      if (buf !== null) {
        this.buffered = null;
        const rest = ex.requestBody(buf);
        if (rest !== null) this.append(rest);
      }
    }
    if (ex.finished) return;
    ex.start();
  }

  /** The body is moving again (the backend drained): the idle clock restarts. */
  bodyFlowing(): void {
    if (this.state === READ_BODY) this.deadline = Date.now() + this.proxy.settings.clientIdleMs;
  }

  /** The request's body has all arrived. */
  bodyComplete(): void {
    if (this.state === READ_BODY) {
      this.state = AWAIT_RESPONSE;
      this.deadline = 0;
    }
  }

  /** The exchange in flight is over; go on with the next request or close. */
  exchangeDone(close: boolean): void {
    this.exchange = null;
    if (close || this.ended || this.proxy.draining || this.state === CLOSED) {
      this.state = CLOSED;
      this.deadline = 0;
      this.socket.destroySoon();
      return;
    }
    this.state = READ_HEAD;
    this.deadline = Date.now() + this.proxy.settings.clientIdleMs;
    this.resume();
    if (this.buffered !== null) this.process();
  }

  /** Answers a request the router refuses (400/408), then closes: the stream may be out of step. */
  private reject(status: number, error: RouterErrorKind, message: string): void {
    const proxy = this.proxy;
    proxy.stats.routerError(error);
    proxy.stats.record(status, 0, undefined);
    this.buffered = null;
    this.state = CLOSED;
    this.deadline = 0;
    if (!this.socket.writable) return void this.socket.destroy();
    this.socket.write(routerResponse(status, error, message, { close: true }), 'latin1');
    this.socket.destroySoon();
  }

  pause(): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  resume(): void {
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  enterTunnel(): Buffer | null {
    this.state = TUNNEL;
    this.deadline = 0;
    const buf = this.buffered;
    this.buffered = null;
    this.resume();
    return buf;
  }

  closeIfIdle(): void {
    if (this.state === READ_HEAD && this.exchange === null && this.buffered === null && this.partial === null) {
      this.state = CLOSED;
      this.socket.destroy();
    }
  }

  onDeadline(): void {
    this.deadline = 0;
    if (this.state === READ_HEAD) {
      if (this.awaitingHead) this.reject(408, 'request_timeout', 'The request head did not arrive in time.');
      else this.socket.destroy();
    } else if (this.state === READ_BODY) {
      // The client stopped sending its body (or the backend stopped reading it).
      this.exchange?.abort('client_idle');
      this.socket.destroy();
    }
  }

  private onEnd(): void {
    this.ended = true;
    if (this.state === TUNNEL) this.exchange?.tunnelClientEnded();
    else if (this.exchange === null) this.socket.destroy();
    else if (this.state === READ_BODY) {
      // The client closed before its body ended: nothing sensible can come of it.
      this.exchange.abort('client_closed');
      this.socket.destroy();
    }
  }

  private onClose(): void {
    const ex = this.exchange;
    this.state = CLOSED;
    this.exchange = null;
    ex?.onClientClosed();
    this.proxy.forget(this);
  }
}


// One exchange: a request's journey from its client to a backend and the response's way
// back. It picks an endpoint, takes a pooled backend connection, sends the head and streams
// the body (holding a small complete body so the request can be re-sent), then streams the
// response back, adding the router's headers. A connection that fails before the request
// could have been acted on is retried on another endpoint; otherwise the router answers
// itself (502/504) with X-Ingot-Router-Error saying why, or cuts the connection when the
// response had already begun.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { BackendConnection, BackendUser } from './backend-pool.ts';
import { chooseEndpoint, type Endpoint, type EndpointPool } from './endpoint-pool.ts';
import { BadResponseError } from './errors.ts';
import { acceptableRequestId, backendRequestHead, clientResponseHead, routerResponse, stickyCookieLine, stickyIdFromCookie } from './headers.ts';
import {
  BODY_CHUNKED,
  BODY_LENGTH,
  BODY_NONE,
  BODY_UNTIL_CLOSE,
  ChunkedScanner,
  findHeadEnd,
  parseResponseHead,
  type RequestHead,
  type ResponseHead,
} from './http-wire.ts';
import type { ClientConnection, Proxy } from './proxy.ts';
import { requestRouteHost } from './route-table.ts';
import type { RouterErrorKind } from './stats.ts';

/** A body this small that arrived whole is kept, so the request can be re-sent elsewhere. */
const REPLAY_MAX_BYTES = 64 * 1024;
/** Body bytes held while a backend connection opens, before the client is paused. */
const QUEUE_MAX_BYTES = 64 * 1024;
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;
/** A body part up to this size is written together with its head: one write, one segment. */
const INLINE_BODY_MAX = 16 * 1024;

export class Exchange implements BackendUser {
  readonly receivedAt = Date.now();
  private readonly t0 = performance.now();
  readonly requestId: string;
  finished = false;
  private pool: EndpointPool | undefined;
  private stickyId: string | undefined;
  private endpoint: Endpoint | undefined;
  private backend: BackendConnection | null = null;
  private attempts = 0;
  private readonly tried: string[] = [];
  private backendHead: string | undefined;
  private headSent = false;

  // Request body.
  private bodyDone: boolean;
  private bodyRemaining: number;
  private readonly scanner: ChunkedScanner | null;
  private queue: Buffer[] | null = null;
  private queuedBytes = 0;
  /** The whole request is still held and may be sent again. */
  private replayable: boolean;
  private bytesReceived = 0;
  private clientPausedForBackend = false;

  // Response.
  private response: ResponseHead | null = null;
  private responseBuf: Buffer | null = null;
  private resRemaining = 0;
  private resScanner: ChunkedScanner | null = null;
  private resDone = false;
  private responseStarted = false;
  private closeClient = false;
  private reusable = true;
  private status = 0;
  private bytesSent = 0;
  private tunnel = false;

  constructor(
    private readonly client: ClientConnection,
    private readonly req: RequestHead,
  ) {
    this.requestId = acceptableRequestId(req.requestId) ? req.requestId : randomUUID();
    this.bodyDone = req.bodyKind === BODY_NONE;
    this.bodyRemaining = req.bodyKind === BODY_LENGTH ? req.contentLength : 0;
    this.scanner = req.bodyKind === BODY_CHUNKED ? new ChunkedScanner() : null;
    this.replayable = this.bodyDone;
  }

  private get proxy(): Proxy {
    return this.client.proxy;
  }

  start(): void {
    const host = requestRouteHost(this.req.host);
    const pool = this.proxy.table.lookup(host, this.req.path);
    if (pool === undefined) {
      this.respondLocally(404, 'unknown_route', `Requested route ('${host}') does not exist.`);
      return;
    }
    this.pool = pool;
    if (this.req.cookie !== undefined) this.stickyId = stickyIdFromCookie(this.req.cookie);
    this.attempt();
  }

  /** Takes request body bytes; returns what lies beyond the body (a pipelined request), if any. */
  requestBody(chunk: Buffer): Buffer | null {
    let part = chunk;
    let rest: Buffer | null = null;
    if (this.scanner === null) {
      if (chunk.length >= this.bodyRemaining) {
        part = chunk.length === this.bodyRemaining ? chunk : chunk.subarray(0, this.bodyRemaining);
        rest = chunk.length > this.bodyRemaining ? chunk.subarray(this.bodyRemaining) : null;
        this.bodyRemaining = 0;
        this.bodyDone = true;
      } else {
        this.bodyRemaining -= chunk.length;
      }
    } else {
      let end: number;
      try {
        end = this.scanner.scan(chunk);
      } catch (err) {
        this.badRequestBody((err as Error).message);
        return null;
      }
      if (end >= 0) {
        part = end === chunk.length ? chunk : chunk.subarray(0, end);
        rest = end < chunk.length ? chunk.subarray(end) : null;
        this.bodyDone = true;
      }
    }
    this.bytesReceived += part.length;
    if (!this.finished) this.forwardBody(part);
    if (this.bodyDone) {
      this.client.bodyComplete();
      if (this.headSent && this.backend !== null && this.response === null) this.armResponseTimeout();
    }
    return rest;
  }

  private forwardBody(part: Buffer): void {
    const backend = this.backend;
    if (backend !== null && this.headSent) {
      if (!backend.socket.write(part)) this.pauseClientFor();
      return;
    }
    (this.queue ??= []).push(part);
    this.queuedBytes += part.length;
    if (this.queuedBytes > QUEUE_MAX_BYTES) this.pauseClientFor();
  }

  private pauseClientFor(): void {
    this.clientPausedForBackend = true;
    this.client.pause();
  }

  // ---- choosing and connecting ----------------------------------------------------------

  private attempt(): void {
    const endpoint = chooseEndpoint(this.pool!, { stickyId: this.stickyId, tried: this.tried, isFailed: this.proxy.isFailed });
    if (endpoint === undefined) {
      this.respondLocally(502, 'endpoint_failure', 'Every endpoint of this route failed.');
      return;
    }
    this.endpoint = endpoint;
    this.attempts++;
    this.tried.push(endpoint.address);
    const conn = this.proxy.backends.acquire(endpoint.address, endpoint.host, endpoint.port, this);
    this.backend = conn;
    if (conn.connected) this.sendHead(conn);
  }

  onBackendConnected(conn: BackendConnection): void {
    if (conn === this.backend) this.sendHead(conn);
  }

  private sendHead(conn: BackendConnection): void {
    const socket = conn.socket;
    this.backendHead ??= backendRequestHead(this.req, {
      clientIp: this.client.clientIp,
      requestId: this.requestId,
      receivedAt: this.receivedAt,
    });
    let ok: boolean;
    const queue = this.queue;
    if (queue === null) {
      ok = socket.write(this.backendHead, 'latin1');
      if (!this.bodyDone) this.replayable = false;
    } else {
      // Keep a small, complete body for a retry; otherwise let it go.
      if (this.bodyDone && this.queuedBytes <= REPLAY_MAX_BYTES) this.replayable = true;
      else {
        this.queue = null;
        this.replayable = false;
      }
      if (this.queuedBytes <= INLINE_BODY_MAX) {
        let text = this.backendHead;
        for (const b of queue) text += b.toString('latin1');
        ok = socket.write(text, 'latin1');
      } else {
        socket.cork();
        socket.write(this.backendHead, 'latin1');
        ok = true;
        for (const b of queue) ok = socket.write(b);
        socket.uncork();
      }
    }
    this.headSent = true;
    if (!ok) this.pauseClientFor();
    else if (this.clientPausedForBackend) {
      this.clientPausedForBackend = false;
      this.client.resume();
    }
    if (this.bodyDone) this.armResponseTimeout();
  }

  private armResponseTimeout(): void {
    if (this.backend !== null) this.backend.deadline = Date.now() + this.proxy.settings.responseTimeoutMs;
  }

  onBackendDrain(_conn: BackendConnection): void {
    if (this.clientPausedForBackend) {
      this.clientPausedForBackend = false;
      this.client.bodyFlowing();
      this.client.resume();
    }
  }

  onClientDrain(): void {
    this.backend?.socket.resume();
  }

  // ---- the response ---------------------------------------------------------------------

  onBackendData(conn: BackendConnection, chunk: Buffer): void {
    if (this.tunnel) {
      if (!this.client.socket.write(chunk)) conn.socket.pause();
      return;
    }
    if (this.response !== null) {
      conn.deadline = Date.now() + this.proxy.settings.responseTimeoutMs;
      this.forwardResponseBody(chunk);
      return;
    }
    const buf = this.responseBuf === null ? chunk : Buffer.concat([this.responseBuf, chunk]);
    const end = findHeadEnd(buf);
    if (end < 0) {
      if (buf.length > MAX_RESPONSE_HEAD_BYTES) this.badResponse(`The response head is larger than ${MAX_RESPONSE_HEAD_BYTES} bytes.`);
      else this.responseBuf = buf;
      return;
    }
    this.responseBuf = null;
    let res: ResponseHead;
    try {
      res = parseResponseHead(buf.toString('latin1', 0, end), this.req.method);
    } catch (err) {
      if (!(err instanceof BadResponseError)) throw err;
      this.badResponse(err.reason);
      return;
    }
    const rest = end + 4 < buf.length ? buf.subarray(end + 4) : null;
    if (res.status < 200 && res.status !== 101) {
      // Interim responses (100 Continue, 103 Early Hints) pass through to HTTP/1.1 clients.
      if (this.req.minor === 1) this.client.socket.write(`HTTP/1.1 ${res.status}${res.reason}\r\n${res.headers}\r\n`, 'latin1');
      if (rest !== null) this.onBackendData(conn, rest);
      return;
    }
    if (res.status === 101) {
      if (this.req.upgrade === undefined) this.badResponse('The backend switched protocols without being asked to.');
      else this.startTunnel(conn, res, rest);
      return;
    }
    this.response = res;
    this.status = res.status;
    this.resRemaining = res.contentLength;
    if (res.bodyKind === BODY_CHUNKED) this.resScanner = new ChunkedScanner((r) => new BadResponseError(r));
    conn.deadline = res.bodyKind === BODY_NONE ? 0 : Date.now() + this.proxy.settings.responseTimeoutMs;
    const req = this.req;
    this.closeClient = !req.keepAlive || !this.bodyDone || this.client.ended || this.proxy.draining || res.bodyKind === BODY_UNTIL_CLOSE;
    const head = clientResponseHead(res, this.requestId, this.stickyLine(res), this.closeClient);
    const socket = this.client.socket;
    const part = rest === null ? null : this.takeResponseBody(rest);
    if (this.finished) return;
    this.responseStarted = true;
    let ok: boolean;
    if (part === null) {
      ok = socket.write(head, 'latin1');
    } else if (part.length <= INLINE_BODY_MAX) {
      // One write, one segment: a small body rides with the head.
      ok = socket.write(head + part.toString('latin1'), 'latin1');
    } else {
      socket.cork();
      socket.write(head, 'latin1');
      ok = socket.write(part);
      socket.uncork();
    }
    if (this.resDone || res.bodyKind === BODY_NONE) this.complete();
    else if (!ok) conn.socket.pause();
  }

  /** Sets `__VCAP_ID__` when the app starts a session, or when its sticky instance is gone. */
  private stickyLine(res: ResponseHead): string {
    const stickyId = this.endpoint?.stickyId;
    if (stickyId === undefined) return '';
    if (res.sessionCookieAttributes !== undefined) return stickyCookieLine(stickyId, res.sessionCookieAttributes) ?? '';
    if (this.stickyId !== undefined && this.stickyId !== stickyId) return stickyCookieLine(stickyId, '') ?? '';
    return '';
  }

  /**
   * The part of `buf` that belongs to the response body, following its framing; sets resDone
   * at its end. Bytes past the end mean the backend is out of step: its connection is not reused.
   */
  private takeResponseBody(buf: Buffer): Buffer | null {
    const res = this.response!;
    let part = buf;
    switch (res.bodyKind) {
      case BODY_NONE:
        this.reusable = false;
        return null;
      case BODY_LENGTH:
        if (buf.length >= this.resRemaining) {
          if (buf.length > this.resRemaining) {
            part = buf.subarray(0, this.resRemaining);
            this.reusable = false;
          }
          this.resRemaining = 0;
          this.resDone = true;
        } else {
          this.resRemaining -= buf.length;
        }
        break;
      case BODY_CHUNKED: {
        let end: number;
        try {
          end = this.resScanner!.scan(buf);
        } catch (err) {
          const reason = (err as Error).message;
          // Once the head is out, all that can be done is to cut the connection.
          if (this.responseStarted) this.abort('bad_response', reason);
          else this.badResponse(reason);
          return null;
        }
        if (end >= 0) {
          if (end < buf.length) {
            part = buf.subarray(0, end);
            this.reusable = false;
          }
          this.resDone = true;
        }
        break;
      }
    }
    this.bytesSent += part.length;
    return part;
  }

  private forwardResponseBody(buf: Buffer): void {
    const part = this.takeResponseBody(buf);
    if (part === null) return;
    if (!this.client.socket.write(part) && !this.resDone) this.backend?.socket.pause();
    if (this.resDone) this.complete();
  }

  private complete(): void {
    if (this.finished) return;
    this.finished = true;
    const conn = this.backend;
    this.backend = null;
    if (conn !== null) {
      const res = this.response!;
      if (this.reusable && res.keepAlive && this.bodyDone && !conn.socket.destroyed) {
        conn.socket.resume();
        this.proxy.backends.release(conn, res.keepAliveTimeoutMs);
      } else {
        conn.discard();
      }
    }
    this.record(this.status);
    this.client.exchangeDone(this.closeClient);
  }

  // ---- failures -------------------------------------------------------------------------

  onBackendClosed(conn: BackendConnection): void {
    if (this.finished || conn !== this.backend) return;
    if (this.tunnel) {
      this.backend = null;
      this.finished = true;
      this.client.socket.end();
      return;
    }
    this.backend = null;
    if (this.response !== null) {
      if (this.response.bodyKind === BODY_UNTIL_CLOSE) {
        this.complete();
      } else {
        // Cut off mid-body: the client must see a broken message, not a short one.
        this.abort('endpoint_failure', 'The backend closed the connection mid-response.');
      }
      return;
    }
    const endpoint = this.endpoint!;
    const proxy = this.proxy;
    if (!conn.connected) {
      // Refused, unreachable or timed out while connecting: nothing was sent, any request may go elsewhere.
      proxy.markFailed(endpoint.address);
      proxy.log.warn({ endpoint: endpoint.address, error: conn.error ?? 'closed', app_id: endpoint.appId }, 'backend connection failed');
      this.retry();
      return;
    }
    // The connection failed after the request went out, before any response.
    if (conn.reused) {
      // Most likely the keep-alive race (the backend closed an idle connection as we reused it):
      // its siblings are suspect too, and the endpoint deserves another try on a fresh connection.
      proxy.backends.purgeIdle(endpoint.address);
      const i = this.tried.lastIndexOf(endpoint.address);
      if (i >= 0) this.tried.splice(i, 1);
    } else {
      proxy.markFailed(endpoint.address);
      proxy.log.warn({ endpoint: endpoint.address, error: conn.error ?? 'closed', app_id: endpoint.appId }, 'backend connection failed');
    }
    if (this.replayable && isIdempotent(this.req)) this.retry();
    else this.respondLocally(502, 'endpoint_failure', 'The backend closed the connection before responding.');
  }

  private retry(): void {
    if (this.attempts >= this.proxy.settings.maxAttempts) {
      this.respondLocally(502, 'endpoint_failure', `The request failed on ${this.attempts} endpoint(s).`);
      return;
    }
    this.proxy.stats.retry();
    this.headSent = false;
    this.responseBuf = null;
    this.attempt();
  }

  onBackendDeadline(conn: BackendConnection): void {
    if (this.finished || conn !== this.backend) return;
    if (this.response === null) this.respondLocally(504, 'endpoint_timeout', 'The backend did not respond in time.');
    else this.abort('endpoint_timeout', 'The backend stalled mid-response.');
  }

  private badResponse(reason: string): void {
    const endpoint = this.endpoint;
    this.proxy.log.warn({ endpoint: endpoint?.address, app_id: endpoint?.appId, reason }, 'invalid response from backend');
    this.respondLocally(502, 'bad_response', `The backend's response was not valid HTTP: ${reason}`);
  }

  private badRequestBody(reason: string): void {
    if (this.responseStarted) {
      this.abort('bad_request', reason);
      return;
    }
    this.respondLocally(400, 'bad_request', reason, true);
  }

  /** The router answers in place of a backend; only before any response byte went out. */
  private respondLocally(status: number, error: RouterErrorKind, message: string, forceClose = false): void {
    if (this.finished) return;
    this.finished = true;
    this.backend?.discard();
    this.backend = null;
    const proxy = this.proxy;
    proxy.stats.routerError(error);
    const close = forceClose || !this.req.keepAlive || !this.bodyDone || this.client.ended || proxy.draining;
    const socket = this.client.socket;
    if (socket.writable) {
      socket.write(routerResponse(status, error, message, { requestId: this.requestId, close, head: this.req.method === 'HEAD' }), 'latin1');
    }
    this.record(status);
    this.client.exchangeDone(close);
  }

  /** Gives up on an exchange whose response can no longer be completed: both sides close. */
  abort(error: RouterErrorKind | 'client_idle' | 'client_closed', reason?: string): void {
    if (this.finished) return;
    this.finished = true;
    this.backend?.discard();
    this.backend = null;
    if (error === 'client_idle' || error === 'client_closed') this.proxy.stats.clientAbort();
    else {
      this.proxy.stats.routerError(error);
      this.proxy.log.warn({ endpoint: this.endpoint?.address, reason }, 'exchange aborted');
    }
    this.record(this.responseStarted ? this.status : 0);
    this.client.socket.destroy();
  }

  onClientClosed(): void {
    if (this.finished) return;
    this.finished = true;
    this.backend?.discard();
    this.backend = null;
    if (!this.tunnel) {
      this.proxy.stats.clientAbort();
      this.record(this.responseStarted ? this.status : 0);
    }
  }

  // ---- WebSockets and other upgrades ----------------------------------------------------

  private startTunnel(conn: BackendConnection, res: ResponseHead, rest: Buffer | null): void {
    this.tunnel = true;
    this.status = 101;
    conn.deadline = 0;
    const socket = this.client.socket;
    socket.cork();
    socket.write(clientResponseHead(res, this.requestId, '', false), 'latin1');
    if (rest !== null) socket.write(rest);
    socket.uncork();
    const early = this.client.enterTunnel();
    if (early !== null) conn.socket.write(early);
    this.record(101);
  }

  tunnelToBackend(chunk: Buffer): void {
    const conn = this.backend;
    if (conn === null) return;
    if (!conn.socket.write(chunk)) this.pauseClientFor();
  }

  tunnelClientEnded(): void {
    this.backend?.socket.end();
  }

  // ---- accounting -----------------------------------------------------------------------

  private record(status: number): void {
    const proxy = this.proxy;
    const durationMs = performance.now() - this.t0;
    const endpoint = this.endpoint;
    proxy.stats.record(status, durationMs, endpoint?.appId);
    if (proxy.onAccess === undefined) return;
    const req = this.req;
    proxy.onAccess(
      {
        host: req.host,
        method: req.method,
        target: req.target,
        minor: req.minor,
        status: status === 0 ? 499 : status,
        bytesReceived: this.bytesReceived,
        bytesSent: this.bytesSent,
        referer: req.referer,
        userAgent: req.userAgent,
        remote: this.client.remote,
        backend: endpoint?.address,
        forwardedFor: req.forwardedFor === undefined ? this.client.clientIp : `${req.forwardedFor}, ${this.client.clientIp}`,
        forwardedProto: req.forwardedProto ?? 'http',
        requestId: this.requestId,
        startedAt: this.receivedAt,
        durationMs,
        appId: endpoint?.appId,
        index: endpoint?.index,
      },
      endpoint,
    );
  }
}

/** Safe to send twice (RFC 9110 §9.2.2), or carrying no body that could be applied twice. */
function isIdempotent(req: RequestHead): boolean {
  const m = req.method;
  return m === 'GET' || m === 'HEAD' || m === 'OPTIONS' || req.bodyKind === BODY_NONE;
}

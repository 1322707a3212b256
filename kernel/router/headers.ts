// The headers the router adds on the way through, and the heads it writes itself. Pure
// string building; the proxy decides when each applies.
import type { RequestHead, ResponseHead } from './http-wire.ts';

/** The cookie naming the instance a session sticks to (Cloud Foundry's name). */
export const STICKY_COOKIE = '__VCAP_ID__';

/** The client's address as backends see it in X-Forwarded-For (no IPv4-mapped prefix). */
export function clientAddress(remote: string | undefined): string {
  if (remote === undefined) return 'unknown';
  return remote.startsWith('::ffff:') ? remote.slice(7) : remote;
}

/** A client-supplied request id is kept when it is short and plain; else one is generated. */
export function acceptableRequestId(id: string | undefined): id is string {
  return id !== undefined && id.length > 0 && id.length <= 128 && /^[A-Za-z0-9._:+-]+$/.test(id);
}

/** The `__VCAP_ID__` value in a Cookie header, if any. */
export function stickyIdFromCookie(cookie: string | undefined): string | undefined {
  if (cookie === undefined) return undefined;
  const at = cookie.indexOf(STICKY_COOKIE + '=');
  if (at < 0) return undefined;
  // Must be a whole cookie name, not the tail of another (`x__VCAP_ID__=`).
  if (at > 0 && !/[;\s]/.test(cookie.charAt(at - 1))) return stickyIdFromCookie(cookie.slice(at + STICKY_COOKIE.length + 1));
  const from = at + STICKY_COOKIE.length + 1;
  const end = cookie.indexOf(';', from);
  let v = (end < 0 ? cookie.slice(from) : cookie.slice(from, end)).trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
  return v.length > 0 ? v : undefined;
}

const COOKIE_VALUE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]{1,256}$/;

/**
 * The Set-Cookie line that pins a session to `stickyId`, scoped and timed like the
 * application's JSESSIONID (its attributes are copied). Undefined when the id cannot be a
 * cookie value.
 */
export function stickyCookieLine(stickyId: string, sessionCookieAttributes: string): string | undefined {
  if (!COOKIE_VALUE.test(stickyId)) return undefined;
  const attrs = sessionCookieAttributes.length > 0 ? sessionCookieAttributes : '; Path=/';
  const httpOnly = /;\s*httponly\s*(;|$)/i.test(attrs) ? '' : '; HttpOnly';
  return `Set-Cookie: ${STICKY_COOKIE}=${stickyId}${attrs}${httpOnly}\r\n`;
}

export interface ForwardingFacts {
  clientIp: string;
  requestId: string;
  /** Epoch milliseconds at which the router received the request. */
  receivedAt: number;
}

/** The head sent to a backend: the client's lines plus the X-Forwarded-*, request id and start. */
export function backendRequestHead(req: RequestHead, f: ForwardingFacts): string {
  const xff = req.forwardedFor === undefined ? f.clientIp : `${req.forwardedFor}, ${f.clientIp}`;
  let head =
    `${req.method} ${req.target} HTTP/1.${req.minor}\r\n${req.headers}` +
    `X-Forwarded-For: ${xff}\r\n` +
    `X-Forwarded-Proto: ${req.forwardedProto ?? 'http'}\r\n` +
    `X-Request-Start: ${req.requestStart ?? f.receivedAt}\r\n` +
    `X-Vcap-Request-Id: ${f.requestId}\r\n`;
  if (req.upgrade !== undefined) head += `Connection: Upgrade\r\nUpgrade: ${req.upgrade}\r\n`;
  return head + '\r\n';
}

/** The head sent to the client for a backend's response. */
export function clientResponseHead(res: ResponseHead, requestId: string, extra: string, close: boolean): string {
  let head = `HTTP/1.1 ${res.status}${res.reason}\r\n${res.headers}X-Vcap-Request-Id: ${requestId}\r\n${extra}`;
  if (res.status === 101) head += `Connection: Upgrade\r\nUpgrade: ${res.upgrade ?? ''}\r\n`;
  else if (close) head += 'Connection: close\r\n';
  return head + '\r\n';
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  408: 'Request Timeout',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** A response the router answers itself, with the error code in X-Ingot-Router-Error. */
export function routerResponse(
  status: number,
  error: string,
  message: string,
  opts: { requestId?: string | undefined; close: boolean; head?: boolean },
): string {
  const body = message.endsWith('\n') ? message : `${message}\n`;
  return (
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    `X-Ingot-Router-Error: ${error}\r\n` +
    (opts.requestId !== undefined ? `X-Vcap-Request-Id: ${opts.requestId}\r\n` : '') +
    `Date: ${httpDate()}\r\n` +
    (opts.close ? 'Connection: close\r\n' : '') +
    `\r\n` +
    (opts.head ? '' : body)
  );
}

let dateSecond = 0;
let dateText = '';

/** The IMF-fixdate of now, computed once a second. */
export function httpDate(now = Date.now()): string {
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateText = new Date(s * 1000).toUTCString();
  }
  return dateText;
}

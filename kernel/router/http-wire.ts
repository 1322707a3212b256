// HTTP/1.1 on the wire, as the proxy needs it: request and response heads parsed strictly
// into what routing and framing need, and a scanner that finds where a chunked body ends.
// The proxy forwards header lines byte for byte and bodies as they came, so the parsers
// validate rather than rebuild; whatever could be read two ways (a request smuggling vector)
// is refused. Pure functions over strings and buffers; no I/O.
import { BadRequestError, BadResponseError } from './errors.ts';

/** How a message's body is delimited. */
export const BODY_NONE = 0;
export const BODY_LENGTH = 1;
export const BODY_CHUNKED = 2;
/** Response only: the body runs until the backend closes the connection. */
export const BODY_UNTIL_CLOSE = 3;
export type BodyKind = typeof BODY_NONE | typeof BODY_LENGTH | typeof BODY_CHUNKED | typeof BODY_UNTIL_CLOSE;

export interface RequestHead {
  method: string;
  /** The origin-form target sent to the backend (absolute-form is reduced to it). */
  target: string;
  /** The target without its query. */
  path: string;
  /** HTTP/1.<minor>. */
  minor: 0 | 1;
  /** The Host header's value (or the authority of an absolute-form target). */
  host: string;
  bodyKind: BodyKind;
  contentLength: number;
  /** The client wants the connection kept after this exchange. */
  keepAlive: boolean;
  /** The Upgrade header's value when the request asks to switch protocols. */
  upgrade: string | undefined;
  cookie: string | undefined;
  forwardedFor: string | undefined;
  forwardedProto: string | undefined;
  requestStart: string | undefined;
  requestId: string | undefined;
  referer: string | undefined;
  userAgent: string | undefined;
  /** The header lines to forward, each ending in CRLF; hop-by-hop and rewritten ones removed. */
  headers: string;
}

export interface ResponseHead {
  status: number;
  /** Everything after the status code on the status line (usually ` OK`). */
  reason: string;
  minor: 0 | 1;
  bodyKind: BodyKind;
  contentLength: number;
  /** The backend will take another request on this connection afterwards. */
  keepAlive: boolean;
  /** From `Keep-Alive: timeout=N`: how long the backend keeps the connection idle. */
  keepAliveTimeoutMs: number | undefined;
  /** The Upgrade header's value (on a 101). */
  upgrade: string | undefined;
  /** Attributes (`; Path=/; HttpOnly`…) of a `Set-Cookie: JSESSIONID=…`, when one is set. */
  sessionCookieAttributes: string | undefined;
  headers: string;
}

export const CRLF_CRLF = Buffer.from('\r\n\r\n', 'latin1');
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([^\x00-\x20\x7f]+) HTTP\/1\.([01])$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)((?: [^\x00-\x08\x0a-\x1f\x7f]*)?)$/;
/** Control characters other than HTAB, and any CR or LF not in a CRLF pair. */
const BAD_CHARS = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/;
const DIGITS = /^\d{1,15}$/;
/** Host header: reg-name or IPv4, or a bracketed IPv6 literal, and an optional port. */
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::\d{0,5})?$/;
const ABSOLUTE_FORM = /^https?:\/\/([^/?#@\s]+)([^#]*)/i;

/** Index of the CRLFCRLF ending a head in `buf` from `from`, or -1. */
export function findHeadEnd(buf: Buffer, from = 0): number {
  return buf.indexOf(CRLF_CRLF, from);
}

/** Empty lines a client may send before a request line (RFC 9112 §2.2): how many bytes to skip. */
export function leadingEmptyLines(buf: Buffer): number {
  let i = 0;
  while (i + 1 < buf.length && buf[i] === 13 && buf[i + 1] === 10) i += 2;
  return i;
}

/**
 * What request and response heads share: the lines kept for forwarding, the framing headers
 * (Content-Length, Transfer-Encoding) and Connection, which names what is for this hop only.
 */
class HeadFields {
  readonly kept: string[] = [];
  readonly keptNames: string[] = [];
  contentLength: number | undefined;
  transferEncoding: string | undefined;
  /** Lowercased tokens of every Connection header. */
  connection: string[] = [];
  // The line read last.
  lname = '';
  value = '';

  constructor(
    private readonly what: 'request' | 'response',
    private readonly fail: (reason: string) => Error,
  ) {}

  /** Reads a `Name: value` line into lname/value; throws when it is not one. */
  read(line: string): void {
    const colon = line.indexOf(':');
    if (colon <= 0) {
      const c = line.charCodeAt(0);
      throw this.fail(c === 32 || c === 9 ? 'Folded header lines are not accepted.' : `A ${this.what} header line has no name.`);
    }
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) throw this.fail(`The ${this.what} header name "${printable(name)}" is not a valid token.`);
    this.value = trimOws(line, colon + 1);
    this.lname = name.toLowerCase();
  }

  /** Takes the line just read if it is a framing or hop-by-hop header; true when taken. */
  takeShared(): boolean {
    const value = this.value;
    switch (this.lname) {
      case 'content-length': {
        const n = parseContentLength(value);
        if (n === undefined) throw this.fail(`The ${this.what} Content-Length is not a number.`);
        if (this.contentLength !== undefined && this.contentLength !== n) throw this.fail(`The ${this.what} has conflicting Content-Length headers.`);
        this.contentLength = n;
        return true;
      }
      case 'transfer-encoding':
        this.transferEncoding = this.transferEncoding === undefined ? value : `${this.transferEncoding}, ${value}`;
        return true;
      case 'connection':
        for (const t of value.toLowerCase().split(',')) this.connection.push(t.trim());
        return true;
      case 'keep-alive':
      case 'proxy-connection':
        return true;
    }
    return false;
  }

  keep(line: string, lname: string): void {
    this.kept.push(line);
    this.keptNames.push(lname);
  }

  /** Refuses a message framed both ways (the request smuggling classic). */
  checkFraming(): void {
    if (this.transferEncoding !== undefined && this.contentLength !== undefined) {
      throw this.fail(`The ${this.what} has both Content-Length and Transfer-Encoding.`);
    }
  }

  /** Lowercased transfer codings, in order. */
  codings(): string[] {
    return (this.transferEncoding ?? '').toLowerCase().split(',').map((c) => c.trim());
  }

  /** Forwards the framing headers as one normalised line. */
  keepFraming(): void {
    if (this.transferEncoding !== undefined) this.keep(`Transfer-Encoding: ${this.transferEncoding}`, 'transfer-encoding');
    else if (this.contentLength !== undefined) this.keep(`Content-Length: ${this.contentLength}`, 'content-length');
  }

  /** Drops the headers Connection names: they are for this hop only (never Host). */
  dropConnectionNamed(): void {
    for (const t of this.connection) {
      if (t === 'close' || t === 'keep-alive' || t === 'upgrade' || t === '' || t === 'host') continue;
      for (let k = this.keptNames.length - 1; k >= 0; k--) {
        if (this.keptNames[k] === t) {
          this.kept.splice(k, 1);
          this.keptNames.splice(k, 1);
        }
      }
    }
  }

  joined(): string {
    return this.kept.length > 0 ? this.kept.join('\r\n') + '\r\n' : '';
  }
}

const requestError = (reason: string): Error => new BadRequestError(reason);
const responseError = (reason: string): Error => new BadResponseError(reason);

/**
 * Parses a request head (`head` is latin1, without the final CRLFCRLF). Throws
 * BadRequestError, whose reason is a sentence for the client.
 */
export function parseRequestHead(head: string): RequestHead {
  if (BAD_CHARS.test(head)) throw new BadRequestError('The request head contains control characters or a bare CR or LF.');
  const lines = head.split('\r\n');
  const m = REQUEST_LINE.exec(lines[0]!);
  if (!m) throw new BadRequestError('The request line is not `METHOD target HTTP/1.x`.');
  const method = m[1]!;
  let target = m[2]!;
  const minor = m[3] === '1' ? 1 : 0;

  const f = new HeadFields('request', requestError);
  let host: string | undefined;
  let hostLine = -1;
  let upgrade: string | undefined;
  let cookie: string | undefined;
  let forwardedFor: string | undefined;
  let forwardedProto: string | undefined;
  let requestStart: string | undefined;
  let requestId: string | undefined;
  let referer: string | undefined;
  let userAgent: string | undefined;

  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    f.read(line);
    if (f.takeShared()) continue;
    const value = f.value;
    switch (f.lname) {
      case 'host':
        if (host !== undefined) throw new BadRequestError('The request has more than one Host header.');
        host = value;
        hostLine = f.kept.length;
        break;
      case 'upgrade':
        upgrade = value;
        continue;
      case 'te':
        continue;
      case 'x-forwarded-for':
        forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        continue;
      case 'x-forwarded-proto':
        forwardedProto ??= value;
        continue;
      case 'x-request-start':
        requestStart ??= value;
        continue;
      case 'x-vcap-request-id':
        requestId ??= value;
        continue;
      case 'cookie':
        cookie = cookie === undefined ? value : `${cookie}; ${value}`;
        break;
      case 'referer':
        referer = value;
        break;
      case 'user-agent':
        userAgent = value;
        break;
    }
    f.keep(line, f.lname);
  }

  if (target.charCodeAt(0) !== 47 /* / */) {
    const abs = ABSOLUTE_FORM.exec(target);
    if (abs) {
      // RFC 9112 §3.2.2: the authority of an absolute-form target replaces Host.
      host = abs[1]!;
      target = abs[2] || '/';
      if (target.charCodeAt(0) !== 47) target = `/${target}`;
      if (hostLine >= 0) f.kept[hostLine] = `Host: ${host}`;
      else f.keep(`Host: ${host}`, 'host');
    } else if (!(target === '*' && method === 'OPTIONS')) {
      throw new BadRequestError('The request target must be a path or an absolute http URL.');
    }
  }
  if (host === undefined) throw new BadRequestError('The request has no Host header, so it cannot be routed.');
  if (!HOST_VALUE.test(host)) throw new BadRequestError(`The Host header "${printable(host)}" is not a valid host.`);

  f.checkFraming();
  let bodyKind: BodyKind = BODY_NONE;
  if (f.transferEncoding !== undefined) {
    if (minor === 0) throw new BadRequestError('Transfer-Encoding is not allowed in an HTTP/1.0 request.');
    const codings = f.codings();
    if (codings[codings.length - 1] !== 'chunked' || codings.indexOf('chunked') !== codings.length - 1) {
      throw new BadRequestError('Transfer-Encoding must end with chunked, once.');
    }
    bodyKind = BODY_CHUNKED;
  } else if (f.contentLength !== undefined && f.contentLength > 0) {
    bodyKind = BODY_LENGTH;
  }
  f.keepFraming();
  f.dropConnectionNamed();

  // HTTP/1.0 keep-alive is an old extension; those connections close after one exchange.
  const keepAlive = minor === 1 && !f.connection.includes('close');
  const q = target.indexOf('?');
  const hash = target.indexOf('#');
  const cut = q < 0 ? hash : hash < 0 ? q : Math.min(q, hash);
  return {
    method,
    target,
    path: cut < 0 ? target : target.slice(0, cut),
    minor,
    host,
    bodyKind,
    contentLength: f.contentLength ?? 0,
    keepAlive,
    upgrade: f.connection.includes('upgrade') ? upgrade : undefined,
    cookie,
    forwardedFor,
    forwardedProto,
    requestStart,
    requestId,
    referer,
    userAgent,
    headers: f.joined(),
  };
}

/**
 * Parses a backend's response head (latin1, without the final CRLFCRLF) to a request made
 * with `method`. Throws BadResponseError.
 */
export function parseResponseHead(head: string, method: string): ResponseHead {
  if (BAD_CHARS.test(head)) throw new BadResponseError('The response head contains control characters or a bare CR or LF.');
  const lines = head.split('\r\n');
  const m = STATUS_LINE.exec(lines[0]!);
  if (!m) throw new BadResponseError('The status line is not `HTTP/1.x NNN reason`.');
  const minor = m[1] === '1' ? 1 : 0;
  const status = Number(m[2]);
  const f = new HeadFields('response', responseError);
  let keepAliveTimeoutMs: number | undefined;
  let upgrade: string | undefined;
  let sessionCookieAttributes: string | undefined;

  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    f.read(line);
    const value = f.value;
    if (f.lname === 'keep-alive') {
      const t = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(value);
      if (t) keepAliveTimeoutMs = Number(t[1]) * 1000;
    }
    if (f.takeShared()) continue;
    switch (f.lname) {
      case 'x-vcap-request-id':
        continue;
      case 'upgrade':
        upgrade = value;
        continue;
      case 'set-cookie':
        if (value.startsWith('JSESSIONID=')) {
          const semi = value.indexOf(';');
          sessionCookieAttributes = semi < 0 ? '' : value.slice(semi);
        }
        break;
    }
    f.keep(line, f.lname);
  }

  f.checkFraming();
  let bodyKind: BodyKind;
  if (f.transferEncoding !== undefined) {
    const codings = f.codings();
    bodyKind = codings[codings.length - 1] === 'chunked' ? BODY_CHUNKED : BODY_UNTIL_CLOSE;
  } else if (f.contentLength !== undefined) {
    bodyKind = f.contentLength > 0 ? BODY_LENGTH : BODY_NONE;
  } else {
    bodyKind = BODY_UNTIL_CLOSE;
  }
  if (status < 200 || status === 204 || status === 304 || method === 'HEAD') bodyKind = BODY_NONE;
  f.keepFraming();
  f.dropConnectionNamed();

  const close = f.connection.includes('close') || (minor === 0 && !f.connection.includes('keep-alive'));
  return {
    status,
    reason: m[3]!,
    minor,
    bodyKind,
    contentLength: f.contentLength ?? 0,
    keepAlive: !close && bodyKind !== BODY_UNTIL_CLOSE,
    keepAliveTimeoutMs,
    upgrade,
    sessionCookieAttributes,
    headers: f.joined(),
  };
}

// States of the chunked scanner.
const SIZE = 0;
const SIZE_MORE = 1;
const EXTENSION = 2;
const SIZE_LF = 3;
const DATA = 4;
const DATA_CR = 5;
const DATA_LF = 6;
const TRAILER_START = 7;
const TRAILER_LINE = 8;
const TRAILER_LF = 9;
const END_LF = 10;
const DONE = 11;

const MAX_CHUNK_SIZE = 2 ** 48;
const MAX_EXTENSION_BYTES = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;

/**
 * Follows a chunked body through any number of buffers without copying it, to find where it
 * ends. Throws (with `makeError`'s class) on framing that is not chunked coding.
 */
export class ChunkedScanner {
  private state = SIZE;
  private size = 0;
  private remaining = 0;
  private sideBytes = 0;
  /** Bytes of chunk data seen so far (the body's decoded length). */
  dataBytes = 0;

  constructor(private readonly makeError: (reason: string) => Error = (r) => new BadRequestError(r)) {}

  get done(): boolean {
    return this.state === DONE;
  }

  /** Scans `buf` from `start`; returns the index just past the body's end, or -1 if it goes on. */
  scan(buf: Buffer, start = 0): number {
    let i = start;
    const n = buf.length;
    while (i < n) {
      switch (this.state) {
        case DATA: {
          const take = Math.min(this.remaining, n - i);
          i += take;
          this.remaining -= take;
          this.dataBytes += take;
          if (this.remaining === 0) this.state = DATA_CR;
          continue;
        }
        case SIZE:
        case SIZE_MORE: {
          const v = hexValue(buf[i]!);
          if (v >= 0) {
            this.size = this.size * 16 + v;
            if (this.size > MAX_CHUNK_SIZE) throw this.makeError('A chunk size is too large.');
            this.state = SIZE_MORE;
          } else if (this.state === SIZE_MORE && (buf[i] === 59 /* ; */ || buf[i] === 32 || buf[i] === 9)) {
            this.state = EXTENSION;
            this.sideBytes = 0;
          } else if (this.state === SIZE_MORE && buf[i] === 13) {
            this.state = SIZE_LF;
          } else {
            throw this.makeError('A chunk size is not hexadecimal.');
          }
          i++;
          continue;
        }
        case EXTENSION: {
          const c = buf[i]!;
          if (c === 13) this.state = SIZE_LF;
          else if (c === 10 || ++this.sideBytes > MAX_EXTENSION_BYTES) throw this.makeError('A chunk extension is malformed or too long.');
          i++;
          continue;
        }
        case SIZE_LF:
          if (buf[i] !== 10) throw this.makeError('A chunk size line does not end in CRLF.');
          i++;
          if (this.size === 0) {
            this.state = TRAILER_START;
            this.sideBytes = 0;
          } else {
            this.remaining = this.size;
            this.size = 0;
            this.state = DATA;
          }
          continue;
        case DATA_CR:
          if (buf[i] !== 13) throw this.makeError('Chunk data is longer than its size.');
          this.state = DATA_LF;
          i++;
          continue;
        case DATA_LF:
          if (buf[i] !== 10) throw this.makeError('Chunk data does not end in CRLF.');
          this.state = SIZE;
          i++;
          continue;
        case TRAILER_START:
          if (buf[i] === 13) this.state = END_LF;
          else if (buf[i] === 10) throw this.makeError('A trailer line ends in a bare LF.');
          else this.state = TRAILER_LINE;
          i++;
          if (++this.sideBytes > MAX_TRAILER_BYTES) throw this.makeError('The chunked trailer is too large.');
          continue;
        case TRAILER_LINE:
          if (buf[i] === 13) this.state = TRAILER_LF;
          else if (buf[i] === 10) throw this.makeError('A trailer line ends in a bare LF.');
          i++;
          if (++this.sideBytes > MAX_TRAILER_BYTES) throw this.makeError('The chunked trailer is too large.');
          continue;
        case TRAILER_LF:
          if (buf[i] !== 10) throw this.makeError('A trailer line does not end in CRLF.');
          this.state = TRAILER_START;
          i++;
          continue;
        case END_LF:
          if (buf[i] !== 10) throw this.makeError('The chunked body does not end in CRLF.');
          this.state = DONE;
          return i + 1;
        default:
          return i;
      }
    }
    return this.state === DONE ? i : -1;
  }
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** `5`, or a list of equal values `5, 5` (RFC 9110 §8.6); undefined otherwise. */
function parseContentLength(value: string): number | undefined {
  if (DIGITS.test(value)) return Number(value);
  let n: number | undefined;
  for (const part of value.split(',')) {
    const p = part.trim();
    if (!DIGITS.test(p)) return undefined;
    const v = Number(p);
    if (n !== undefined && n !== v) return undefined;
    n = v;
  }
  return n;
}

function trimOws(line: string, from: number): string {
  let s = from;
  let e = line.length;
  while (s < e && (line.charCodeAt(s) === 32 || line.charCodeAt(s) === 9)) s++;
  while (e > s && (line.charCodeAt(e - 1) === 32 || line.charCodeAt(e - 1) === 9)) e--;
  return line.slice(s, e);
}

function printable(s: string): string {
  const short = s.length > 60 ? `${s.slice(0, 60)}...` : s;
  return short.replace(/[^\x20-\x7e]/g, '?');
}

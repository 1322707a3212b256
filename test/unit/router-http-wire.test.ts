// HTTP/1.1 heads and chunked framing as the proxy reads them: what is forwarded, what is
// refused (anything that could be read two ways), and where a chunked body ends however it
// is cut into packets.
import test from 'ava';
import fc from 'fast-check';
import { BadRequestError, BadResponseError } from '../../kernel/router/errors.ts';
import {
  BODY_CHUNKED,
  BODY_LENGTH,
  BODY_NONE,
  BODY_UNTIL_CLOSE,
  ChunkedScanner,
  findHeadEnd,
  leadingEmptyLines,
  parseRequestHead,
  parseResponseHead,
} from '../../kernel/router/http-wire.ts';

const head = (...lines: string[]): string => lines.join('\r\n');

test('a plain GET: routing facts, and the header lines to forward', (t) => {
  const r = parseRequestHead(head('GET /a/b?q=1 HTTP/1.1', 'Host: App.Example.com:8080', 'User-Agent: curl', 'Accept: */*'));
  t.is(r.method, 'GET');
  t.is(r.target, '/a/b?q=1');
  t.is(r.path, '/a/b');
  t.is(r.host, 'App.Example.com:8080');
  t.is(r.minor, 1);
  t.is(r.bodyKind, BODY_NONE);
  t.true(r.keepAlive);
  t.is(r.userAgent, 'curl');
  t.is(r.headers, 'Host: App.Example.com:8080\r\nUser-Agent: curl\r\nAccept: */*\r\n');
});

test('hop-by-hop headers, and those named in Connection, are not forwarded; forwarding headers are taken out to be rewritten', (t) => {
  const r = parseRequestHead(
    head(
      'POST /x HTTP/1.1',
      'Host: a.com',
      'Connection: keep-alive, X-Secret',
      'Keep-Alive: timeout=5',
      'Proxy-Connection: keep-alive',
      'TE: trailers',
      'X-Secret: 1',
      'X-Forwarded-For: 1.2.3.4',
      'X-Forwarded-For: 5.6.7.8',
      'X-Forwarded-Proto: https',
      'X-Vcap-Request-Id: abc',
      'Content-Length: 3',
    ),
  );
  t.is(r.headers, 'Host: a.com\r\nContent-Length: 3\r\n');
  t.is(r.forwardedFor, '1.2.3.4, 5.6.7.8');
  t.is(r.forwardedProto, 'https');
  t.is(r.requestId, 'abc');
  t.is(r.bodyKind, BODY_LENGTH);
  t.is(r.contentLength, 3);
});

test('Connection: close and HTTP/1.0 end the connection after the exchange', (t) => {
  t.false(parseRequestHead(head('GET / HTTP/1.1', 'Host: a', 'Connection: close')).keepAlive);
  t.false(parseRequestHead(head('GET / HTTP/1.0', 'Host: a', 'Connection: keep-alive')).keepAlive);
});

test('an upgrade is recognised only with Connection: upgrade', (t) => {
  t.is(parseRequestHead(head('GET /ws HTTP/1.1', 'Host: a', 'Connection: Upgrade', 'Upgrade: websocket')).upgrade, 'websocket');
  t.is(parseRequestHead(head('GET /ws HTTP/1.1', 'Host: a', 'Upgrade: websocket')).upgrade, undefined);
});

test('an absolute-form target gives the host and becomes origin-form', (t) => {
  const r = parseRequestHead(head('GET http://b.example.com:81/p?x HTTP/1.1', 'Host: ignored.com'));
  t.is(r.host, 'b.example.com:81');
  t.is(r.target, '/p?x');
  t.is(r.headers, 'Host: b.example.com:81\r\n');
});

test('chunked bodies and equal repeated Content-Lengths are accepted', (t) => {
  t.is(parseRequestHead(head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked')).bodyKind, BODY_CHUNKED);
  t.is(parseRequestHead(head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: gzip, chunked')).bodyKind, BODY_CHUNKED);
  const r = parseRequestHead(head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 5, 5', 'Content-Length: 5'));
  t.is(r.contentLength, 5);
  t.is(r.headers, 'Host: a\r\nContent-Length: 5\r\n', 'one normalised Content-Length goes on');
});

const refused: Array<[string, string]> = [
  ['no Host', head('GET / HTTP/1.1', 'Accept: x')],
  ['two Hosts', head('GET / HTTP/1.1', 'Host: a', 'Host: b')],
  ['bad Host', head('GET / HTTP/1.1', 'Host: a b')],
  ['bad Host chars', head('GET / HTTP/1.1', 'Host: a/b')],
  ['CL and TE', head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 5', 'Transfer-Encoding: chunked')],
  ['TE and CL', head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked', 'Content-Length: 5')],
  ['conflicting CLs', head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 5', 'Content-Length: 6')],
  ['CL list', head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 5, 6')],
  ['CL sign', head('POST / HTTP/1.1', 'Host: a', 'Content-Length: +5')],
  ['TE not ending chunked', head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked, gzip')],
  ['TE chunked twice', head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked, chunked')],
  ['TE in HTTP/1.0', head('POST / HTTP/1.0', 'Host: a', 'Transfer-Encoding: chunked')],
  ['folded header', head('GET / HTTP/1.1', 'Host: a', 'X-A: 1', ' continued')],
  ['space before colon', head('GET / HTTP/1.1', 'Host : a')],
  ['no colon', head('GET / HTTP/1.1', 'Host: a', 'Nonsense')],
  ['bare LF', 'GET / HTTP/1.1\r\nHost: a\nX: y'],
  ['bare CR', 'GET / HTTP/1.1\r\nHost: a\rX: y'],
  ['NUL', 'GET / HTTP/1.1\r\nHost: a\r\nX: y\0'],
  ['HTTP/2 line', head('GET / HTTP/2.0', 'Host: a')],
  ['garbage line', head('HELLO', 'Host: a')],
  ['relative target', head('GET foo HTTP/1.1', 'Host: a')],
  ['space in target', head('GET /a b HTTP/1.1', 'Host: a')],
];

for (const [what, h] of refused) {
  test(`refused: ${what}`, (t) => {
    const err = t.throws(() => parseRequestHead(h), { instanceOf: BadRequestError });
    t.regex(err!.reason, /\.$/, 'the reason is a sentence');
  });
}

test('random bytes in a head never crash the parser: it parses or refuses with a reason', (t) => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom('G', 'E', 'T', ' ', '/', 'H', ':', '\r', '\n', 'a', '1', '.', 'P', '\t', '\0') , maxLength: 80 }), (s) => {
      try {
        parseRequestHead(`GET / HTTP/1.1\r\nHost: a\r\n${s}`);
      } catch (err) {
        return err instanceof BadRequestError;
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('heads are found across the buffer; leading empty lines are skipped', (t) => {
  const buf = Buffer.from('\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nrest');
  const skip = leadingEmptyLines(buf);
  t.is(skip, 4);
  t.is(findHeadEnd(buf, skip), buf.indexOf('\r\n\r\nrest'));
});

test('responses: framing, keep-alive, sticky-session cookie, and headers the router replaces', (t) => {
  const r = parseResponseHead(
    head('HTTP/1.1 200 OK', 'Content-Length: 12', 'Connection: keep-alive', 'Keep-Alive: timeout=5', 'X-Vcap-Request-Id: theirs', 'Set-Cookie: JSESSIONID=abc; Path=/app; Secure'),
    'GET',
  );
  t.is(r.status, 200);
  t.is(r.reason, ' OK');
  t.is(r.bodyKind, BODY_LENGTH);
  t.true(r.keepAlive);
  t.is(r.keepAliveTimeoutMs, 5000);
  t.is(r.sessionCookieAttributes, '; Path=/app; Secure');
  t.is(r.headers, 'Set-Cookie: JSESSIONID=abc; Path=/app; Secure\r\nContent-Length: 12\r\n');
  t.is(parseResponseHead(head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'), 'GET').bodyKind, BODY_CHUNKED);
  t.is(parseResponseHead('HTTP/1.1 200 OK', 'GET').bodyKind, BODY_UNTIL_CLOSE);
  t.false(parseResponseHead('HTTP/1.1 200 OK', 'GET').keepAlive);
  t.is(parseResponseHead(head('HTTP/1.1 200 OK', 'Content-Length: 9'), 'HEAD').bodyKind, BODY_NONE);
  t.is(parseResponseHead(head('HTTP/1.1 304 Not Modified', 'Content-Length: 9'), 'GET').bodyKind, BODY_NONE);
  t.is(parseResponseHead('HTTP/1.1 204', 'GET').bodyKind, BODY_NONE);
  t.false(parseResponseHead(head('HTTP/1.1 200 OK', 'Content-Length: 1', 'Connection: close'), 'GET').keepAlive);
  t.false(parseResponseHead(head('HTTP/1.0 200 OK', 'Content-Length: 1'), 'GET').keepAlive);
  t.true(parseResponseHead(head('HTTP/1.0 200 OK', 'Content-Length: 1', 'Connection: keep-alive'), 'GET').keepAlive);
  t.is(parseResponseHead(head('HTTP/1.1 101 Switching Protocols', 'Connection: Upgrade', 'Upgrade: websocket'), 'GET').upgrade, 'websocket');
});

test('responses that could be read two ways are refused', (t) => {
  for (const h of [
    head('HTTP/1.1 200 OK', 'Content-Length: 1', 'Transfer-Encoding: chunked'),
    head('HTTP/1.1 200 OK', 'Content-Length: 1', 'Content-Length: 2'),
    head('HTTP/1.1 200 OK', 'Bad Header: 1'),
    'HTTP/1.1 200 OK\r\nX: a\nY: b',
    'HTTP/1.1 2000 OK',
    'HTTP/1.1 099 Nope',
    'ICY 200 OK',
  ]) {
    t.throws(() => parseResponseHead(h, 'GET'), { instanceOf: BadResponseError }, JSON.stringify(h));
  }
});

// ---- chunked bodies ---------------------------------------------------------------------

function encodeChunked(parts: Buffer[], trailer: string[] = []): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    if (p.length === 0) continue;
    out.push(Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n'));
  }
  out.push(Buffer.from(`0\r\n${trailer.map((l) => `${l}\r\n`).join('')}\r\n`));
  return Buffer.concat(out);
}

test('the scanner finds the end of a chunked body however it is split, and counts its data', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
      fc.array(fc.constantFrom('X-Trailer: 1', 'Digest: abc'), { maxLength: 2 }),
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
      fc.uint8Array({ maxLength: 20 }),
      (parts, trailer, cuts, after) => {
        const body = encodeChunked(parts.map((p) => Buffer.from(p)), trailer);
        const stream = Buffer.concat([body, Buffer.from(after)]);
        const scanner = new ChunkedScanner();
        let offset = 0;
        let i = 0;
        while (offset < stream.length) {
          const size = cuts[i++ % cuts.length]!;
          const piece = stream.subarray(offset, offset + size);
          const end = scanner.scan(piece);
          if (end >= 0) return offset + end === body.length && scanner.dataBytes === parts.reduce((a, p) => a + p.length, 0);
          offset += piece.length;
        }
        return false;
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});

test('the scanner accepts extensions and refuses malformed framing', (t) => {
  const s = new ChunkedScanner();
  t.is(s.scan(Buffer.from('3;name=value\r\nabc\r\n0\r\n\r\n')), 24);
  for (const bad of ['x\r\n', '3\r\nabcd\r\n', '3\nabc\r\n', '\r\n', '3\r\nabc\r\n0\r\n\nX', '-1\r\n', 'ffffffffffffff\r\n']) {
    t.throws(() => new ChunkedScanner().scan(Buffer.from(bad)), { instanceOf: BadRequestError }, JSON.stringify(bad));
  }
  t.throws(() => new ChunkedScanner((r) => new BadResponseError(r)).scan(Buffer.from('zz\r\n')), { instanceOf: BadResponseError });
});

// The headers the router adds or writes: X-Forwarded-*, X-Request-Start, X-Vcap-Request-Id,
// the sticky-session cookie, and its own error responses.
import test from 'ava';
import fc from 'fast-check';
import {
  acceptableRequestId,
  backendRequestHead,
  clientAddress,
  clientResponseHead,
  routerResponse,
  stickyCookieLine,
  stickyIdFromCookie,
} from '../../kernel/router/headers.ts';
import { parseRequestHead, parseResponseHead } from '../../kernel/router/http-wire.ts';

const facts = { clientIp: '192.0.2.7', requestId: 'req-1', receivedAt: 1700000000123 };

test('the backend sees X-Forwarded-For appended, the proto, the request start and the request id', (t) => {
  const req = parseRequestHead('GET /x HTTP/1.1\r\nHost: a.com\r\nX-Forwarded-For: 10.1.1.1\r\nConnection: keep-alive');
  t.is(
    backendRequestHead(req, facts),
    'GET /x HTTP/1.1\r\nHost: a.com\r\nX-Forwarded-For: 10.1.1.1, 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Request-Start: 1700000000123\r\nX-Vcap-Request-Id: req-1\r\n\r\n',
  );
});

test("a client's X-Forwarded-Proto and X-Request-Start are kept", (t) => {
  const req = parseRequestHead('GET / HTTP/1.1\r\nHost: a.com\r\nX-Forwarded-Proto: https\r\nX-Request-Start: 42');
  const h = backendRequestHead(req, facts);
  t.regex(h, /\r\nX-Forwarded-For: 192\.0\.2\.7\r\n/);
  t.regex(h, /\r\nX-Forwarded-Proto: https\r\n/);
  t.regex(h, /\r\nX-Request-Start: 42\r\n/);
});

test('an upgrade request keeps Connection: Upgrade and its Upgrade header', (t) => {
  const req = parseRequestHead('GET /ws HTTP/1.1\r\nHost: a.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k');
  t.regex(backendRequestHead(req, facts), /Sec-WebSocket-Key: k\r\n.*Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n$/s);
});

test('the client gets the request id back, and Connection: close when the connection ends', (t) => {
  const res = parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: 2', 'GET');
  t.is(clientResponseHead(res, 'req-1', '', false), 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Vcap-Request-Id: req-1\r\n\r\n');
  t.regex(clientResponseHead(res, 'req-1', '', true), /Connection: close\r\n\r\n$/);
});

test('client-supplied request ids are kept only when short and plain', (t) => {
  t.true(acceptableRequestId('5b0c6a8e-2f6a-4a47-9b5e-1c2d3e4f5a6b'));
  t.false(acceptableRequestId(undefined));
  t.false(acceptableRequestId(''));
  t.false(acceptableRequestId('a b'));
  t.false(acceptableRequestId('x'.repeat(129)));
});

test('__VCAP_ID__ is read from a Cookie header, and only as a whole cookie name', (t) => {
  t.is(stickyIdFromCookie('JSESSIONID=x; __VCAP_ID__=abc-1; other=2'), 'abc-1');
  t.is(stickyIdFromCookie('__VCAP_ID__="quoted"'), 'quoted');
  t.is(stickyIdFromCookie('x__VCAP_ID__=no; __VCAP_ID__=yes'), 'yes');
  t.is(stickyIdFromCookie('x__VCAP_ID__=no'), undefined);
  t.is(stickyIdFromCookie('JSESSIONID=x'), undefined);
  t.is(stickyIdFromCookie(undefined), undefined);
});

test('the sticky cookie copies the session cookie attributes and is HttpOnly', (t) => {
  t.is(stickyCookieLine('inst-1', '; Path=/app; Max-Age=60; Secure'), 'Set-Cookie: __VCAP_ID__=inst-1; Path=/app; Max-Age=60; Secure; HttpOnly\r\n');
  t.is(stickyCookieLine('inst-1', '; Path=/; HttpOnly'), 'Set-Cookie: __VCAP_ID__=inst-1; Path=/; HttpOnly\r\n');
  t.is(stickyCookieLine('inst-1', ''), 'Set-Cookie: __VCAP_ID__=inst-1; Path=/; HttpOnly\r\n');
  t.is(stickyCookieLine('bad;id', ''), undefined);
});

test('a sticky id survives the round trip through its cookie', (t) => {
  fc.assert(
    fc.property(fc.stringMatching(/^[A-Za-z0-9_.-]{1,40}$/), (id) => {
      const line = stickyCookieLine(id, '; Path=/')!;
      const cookie = line.slice('Set-Cookie: '.length, line.indexOf(';'));
      return stickyIdFromCookie(`a=b; ${cookie}`) === id;
    }),
  );
  t.pass();
});

test("the router's own responses carry the error code, the request id and a sentence", (t) => {
  const r = routerResponse(404, 'unknown_route', "Requested route ('x.com') does not exist.", { requestId: 'r1', close: false });
  t.regex(r, /^HTTP\/1\.1 404 Not Found\r\n/);
  t.regex(r, /\r\nX-Ingot-Router-Error: unknown_route\r\n/);
  t.regex(r, /\r\nX-Vcap-Request-Id: r1\r\n/);
  t.regex(r, /\r\nContent-Length: 42\r\n/);
  t.notRegex(r, /Connection: close/);
  t.true(r.endsWith("\r\n\r\nRequested route ('x.com') does not exist.\n"));
  const h = routerResponse(502, 'endpoint_failure', 'Nope.', { close: true, head: true });
  t.regex(h, /Connection: close\r\n\r\n$/);
});

test('IPv4-mapped client addresses are shown as IPv4', (t) => {
  t.is(clientAddress('::ffff:127.0.0.1'), '127.0.0.1');
  t.is(clientAddress('::1'), '::1');
  t.is(clientAddress(undefined), 'unknown');
});

// The routing table's rules: case-insensitive hosts without ports, wildcards, path prefixes
// on segment boundaries, unregister and pruning, and a lookup whose cost does not grow with
// the number of routes. Checked against a naive reference with random tables.
import test from 'ava';
import fc from 'fast-check';
import { parseRouteUri, requestRouteHost, RouteTable } from '../../kernel/router/route-table.ts';

const at = (port: number, extra: Record<string, unknown> = {}) => ({ host: '10.0.0.1', port, ...extra });

function tableWith(routes: Record<string, number>): RouteTable {
  const t = new RouteTable();
  for (const [uri, port] of Object.entries(routes)) t.register(uri, at(port), 0);
  return t;
}

function portFor(t: RouteTable, host: string, path = '/'): number | undefined {
  return t.lookup(requestRouteHost(host), path)?.endpoints[0]?.port;
}

test('route URIs are canonicalised: lowercase host, no port, scheme or trailing slash', (t) => {
  t.deepEqual(parseRouteUri('Example.COM'), { host: 'example.com', wildcard: false, path: '', key: 'example.com' });
  t.is(parseRouteUri('http://Example.com:8080/Api/')?.key, 'example.com/Api');
  t.is(parseRouteUri('*.Apps.Example.com')?.key, '*.apps.example.com');
  t.is(parseRouteUri('example.com.')?.key, 'example.com');
  for (const bad of ['', '*.', 'a b.com', 'example.com/x?y=1', 'example.com/a#b', '-bad.com', 'a..b', 'x.com//double', '*.*.x.com', 'ex ample.com/p']) {
    t.is(parseRouteUri(bad), undefined, bad);
  }
});

test('hosts match case-insensitively and ignore the port', (t) => {
  const table = tableWith({ 'app.example.com': 1 });
  t.is(portFor(table, 'APP.Example.com:8080'), 1);
  t.is(portFor(table, 'app.example.com.'), 1);
  t.is(portFor(table, 'other.example.com'), undefined);
  t.is(requestRouteHost('[::1]:8080'), '[::1]');
});

test('a wildcard matches any name beneath it; the most specific wins and an exact host beats it', (t) => {
  const table = tableWith({ '*.apps.example.com': 1, '*.eu.apps.example.com': 2, 'www.apps.example.com': 3 });
  t.is(portFor(table, 'a.apps.example.com'), 1);
  t.is(portFor(table, 'a.b.c.apps.example.com'), 1);
  t.is(portFor(table, 'x.eu.apps.example.com'), 2);
  t.is(portFor(table, 'www.apps.example.com'), 3);
  t.is(portFor(table, 'apps.example.com'), undefined, 'the wildcard does not match its own base');
});

test('paths match on whole segments and the longest prefix wins', (t) => {
  const table = tableWith({ 'example.com': 1, 'example.com/api': 2, 'example.com/api/v2': 3 });
  t.is(portFor(table, 'example.com', '/'), 1);
  t.is(portFor(table, 'example.com', '/api'), 2);
  t.is(portFor(table, 'example.com', '/api/'), 2);
  t.is(portFor(table, 'example.com', '/api/users'), 2);
  t.is(portFor(table, 'example.com', '/api/v2/users'), 3);
  t.is(portFor(table, 'example.com', '/apix'), 1, 'not a segment boundary');
  t.is(portFor(table, 'example.com', '/API'), 1, 'paths are case-sensitive');
});

test('a host with only path routes does not catch other paths, but a wildcard may', (t) => {
  const table = tableWith({ 'a.example.com/api': 1 });
  t.is(portFor(table, 'a.example.com', '/other'), undefined);
  table.register('*.example.com', at(2), 0);
  t.is(portFor(table, 'a.example.com', '/other'), 2);
  t.is(portFor(table, 'a.example.com', '/api/x'), 1);
});

test('register refreshes, updates and adds; unregister removes only the named instance', (t) => {
  const table = new RouteTable();
  t.is(table.register('a.com', at(1, { instanceId: 'i1' }), 0), 'added');
  t.is(table.register('a.com', at(1, { instanceId: 'i1' }), 5), 'refreshed');
  t.is(table.lookup('a.com', '/')!.endpoints[0]!.updatedAt, 5);
  t.is(table.register('a.com', at(1, { instanceId: 'i2' }), 6), 'updated');
  t.is(table.register('a.com', at(2, { instanceId: 'i3' }), 6), 'added');
  t.is(table.register('bad uri', at(2), 6), 'invalid_uri');
  t.is(table.routeCount, 1);
  t.is(table.endpointCount, 2);
  t.is(table.unregister('a.com', '10.0.0.1:1', 'i1'), undefined, 'a stale unregister for a reused port is ignored');
  t.truthy(table.unregister('A.com', '10.0.0.1:1', 'i2'));
  t.truthy(table.unregister('a.com', '10.0.0.1:2'));
  t.is(table.routeCount, 0);
  t.is(table.endpointCount, 0);
  t.is(table.lookup('a.com', '/'), undefined);
});

test('prune removes endpoints past their threshold (their own, else the default); freshen resets the clock', (t) => {
  const table = new RouteTable();
  table.register('a.com', at(1), 0);
  table.register('a.com', at(2, { staleAfterMs: 100_000 }), 0);
  table.register('b.com', at(3), 50_000);
  t.deepEqual(table.prune(30_000, 60_000), []);
  const removed = table.prune(70_000, 60_000);
  t.deepEqual(removed.map((r) => [r.uri, r.endpoint.port]), [['a.com', 1]]);
  table.freshen(200_000);
  t.deepEqual(table.prune(250_000, 60_000), []);
  t.is(table.endpointCount, 2);
});

test('with 100,000 routes every lookup still finds its route, with the same number of hash probes as with 10', (t) => {
  const small = new RouteTable();
  const large = new RouteTable();
  for (let i = 0; i < 10; i++) small.register(`app-${i}.example.com`, at(i), 0);
  for (let i = 0; i < 100_000; i++) large.register(`app-${i}.example.com`, at(i % 60_000), 0);
  large.register('*.wild.example.com', at(1), 0);
  small.register('*.wild.example.com', at(1), 0);
  for (const i of [0, 7, 54_321, 99_999]) t.is(large.lookup(`app-${i}.example.com`, '/')?.endpoints[0]?.port, i % 60_000);

  const probes = (table: RouteTable, host: string, path: string): number => {
    const original = Map.prototype.get;
    let n = 0;
    Map.prototype.get = function (this: Map<unknown, unknown>, k: unknown) {
      n++;
      return original.call(this, k);
    };
    try {
      table.lookup(host, path);
    } finally {
      Map.prototype.get = original;
    }
    return n;
  };
  for (const [host, path] of [
    ['app-3.example.com', '/'],
    ['x.y.wild.example.com', '/a/b/c'],
    ['missing.example.com', '/'],
  ] as const) {
    t.is(probes(large, host, path), probes(small, host, path), `${host}${path}`);
  }
});

// ---- against a reference ------------------------------------------------------------------

const label = fc.constantFrom('a', 'b', 'c', 'api', 'www');
const host = fc.array(label, { minLength: 1, maxLength: 3 }).map((ls) => `${ls.join('.')}.test`);
const path = fc.array(fc.constantFrom('x', 'y', 'api'), { maxLength: 2 }).map((ss) => (ss.length ? `/${ss.join('/')}` : ''));
const route = fc.tuple(fc.boolean(), host, path).map(([wild, h, p]) => `${wild ? '*.' : ''}${h}${p}`);

/** The rules, spelled out the slow way. */
function reference(routes: Map<string, number>, reqHost: string, reqPath: string): number | undefined {
  const candidates = (key: (h: string) => boolean): number | undefined => {
    let best: { len: number; port: number } | undefined;
    for (const [uri, port] of routes) {
      const k = parseRouteUri(uri)!;
      if (!key(k.wildcard ? `*.${k.host}` : k.host)) continue;
      if (k.path !== '' && !(reqPath === k.path || reqPath.startsWith(k.path + '/'))) continue;
      if (!best || k.path.length > best.len) best = { len: k.path.length, port };
    }
    return best?.port;
  };
  const exact = candidates((h) => h === reqHost);
  if (exact !== undefined) return exact;
  const labels = reqHost.split('.');
  for (let i = 1; i < labels.length; i++) {
    const w = candidates((h) => h === `*.${labels.slice(i).join('.')}`);
    if (w !== undefined) return w;
  }
  return undefined;
}

test('lookup agrees with the reference rules on random tables and requests', (t) => {
  fc.assert(
    fc.property(fc.uniqueArray(route, { maxLength: 25 }), host, fc.constantFrom('/', '/x', '/x/y', '/api', '/api/x', '/y/api', '/apix'), (uris, h, p) => {
      const routes = new Map(uris.map((u, i) => [parseRouteUri(u)!.key, i + 1]));
      const table = new RouteTable();
      for (const [uri, port] of routes) table.register(uri, at(port), 0);
      const got = table.lookup(requestRouteHost(h.toUpperCase()), p)?.endpoints[0]?.port;
      return got === reference(routes, h, p);
    }),
    { numRuns: 400 },
  );
  t.pass();
});

// The cloud controller's state and bits: the store on SQLite (the cases shared with
// PostgreSQL, test/helpers/cc-state-cases.ts), db.url validation, the blobstore, tokens,
// password hashes, signed URLs, package checks (traversal, symlinks) and the recent-log ring
// buffer.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import yauzl from 'yauzl';
import { hashPassword, verifyPassword } from '../../kernel/cloud-controller/auth/passwords.ts';
import { checkSignature, signature, signUrl, UrlSigner } from '../../kernel/cloud-controller/auth/signed-urls.ts';
import { ISSUER, TokenError, TokenIssuer } from '../../kernel/cloud-controller/auth/tokens.ts';
import { Blobstore } from '../../kernel/cloud-controller/blobstore.ts';
import { ccConfig } from '../../kernel/cloud-controller/config.ts';
import { DbError, openStore, type OrganizationRecord } from '../../kernel/cloud-controller/db/mod.ts';
import { ConfigError, parseConfig } from '../../kernel/component/mod.ts';
import { LogStore, RingBuffer } from '../../kernel/cloud-controller/logs.ts';
import { buildZip, checkEntries, cleanPath, ingestZip, mergeResources, PackageError, parseMode, symlinkEscapes, unsafePath } from '../../kernel/cloud-controller/package-bits.ts';
import { leadsOutside } from '../../kernel/archive/links.ts';
import { renameInZip, zipOf } from '../helpers/cc-controller.ts';
import { registerStoreCases } from '../helpers/cc-state-cases.ts';
import { scratchDir } from '../helpers/tmp.ts';

const scratch = (label: string) => scratchDir(`cc-${label}`);
const org = (name: string, created_at: string): OrganizationRecord => ({ guid: `g-${name}`, name, created_at, updated_at: created_at });

registerStoreCases(test, { engine: 'sqlite', database: async () => `sqlite://${join(scratch('db'), 'cc.db')}` });

test('sqlite: an in-memory database serves the store', async (t) => {
  const store = await openStore('sqlite::memory:');
  await store.organizations.insert(org('m', '2024-01-01T00:00:00.000Z'));
  t.is(await store.organizations.count(), 1);
  await store.close();
});

test('db.url: sqlite and postgres urls are accepted; anything else is refused with db.url named, never the password', async (t) => {
  const base = { nats: { servers: ['nats://127.0.0.1:4222'], user: 'k', password: 'kernel-password' }, system_domain: 'sys.example.com', blobstore: { dir: 'b' }, jwt: { secret: 'x'.repeat(32) }, admin: { user: 'a', password: 'admin-password' }, bulk_api: { user: 'b', password: 'bulk-password' } };
  const parse = (url: string) => parseConfig(JSON.stringify({ ...base, db: { url } }), 'cc.yml', ccConfig);
  for (const url of ['sqlite:///var/ingot/cc.db', 'sqlite::memory:', 'postgres://cc:pw@db.internal:5432/ingot', 'postgresql://cc:pw@10.0.0.5/ingot', 'postgres://cc@localhost/ingot?host=/run/postgresql']) {
    t.is(parse(url).db.url, url);
  }
  const refused = (url: string, why: RegExp) => {
    const err = t.throws(() => parse(url), { instanceOf: ConfigError }, url);
    t.regex(err!.message, /^cc\.yml:1 db\.url: /, url);
    t.regex(err!.message, why, url);
    t.notRegex(err!.message, /s3cret/, 'the password stays out of the message');
  };
  refused('sqlite://relative/cc.db', /must be absolute/);
  refused('mysql://u:s3cret@h/db', /scheme mysql: is not supported/);
  refused('postgres://u:s3cret@h:5432/', /names no database/);
  refused('postgres://:s3cret@h/db', /names no user/);
  refused('postgres://u:s3cret@h/db?host=run/pg', /absolute socket directory/);
  await t.throwsAsync(openStore('mysql://u:s3cret@h/db'), { instanceOf: DbError, message: /scheme mysql: of db\.url is not supported/ });
});

test('passwords: scrypt hashes verify and differ per salt', async (t) => {
  const h1 = await hashPassword('correct horse');
  const h2 = await hashPassword('correct horse');
  t.not(h1, h2);
  t.regex(h1, /^scrypt\$16384\$8\$1\$/);
  t.true(await verifyPassword('correct horse', h1));
  t.false(await verifyPassword('wrong', h1));
  t.false(await verifyPassword('x', 'garbage'));
});

test('tokens: signed, typed, expiring', async (t) => {
  const secret = 'x'.repeat(40);
  const issuer = new TokenIssuer(secret, 60, 600);
  const pair = await issuer.issue({ guid: 'g1', username: 'ann', admin: true });
  t.is(pair.token_type, 'bearer');
  t.is(pair.expires_in, 60);
  const v = await issuer.verifyAccess(pair.access_token);
  t.is(v.user_guid, 'g1');
  t.true(v.scopes.includes('cloud_controller.admin'));
  t.is(await issuer.verifyRefresh(pair.refresh_token), 'g1');
  await t.throwsAsync(issuer.verifyAccess(pair.refresh_token), { instanceOf: TokenError });
  await t.throwsAsync(issuer.verifyRefresh(pair.access_token), { instanceOf: TokenError });
  await t.throwsAsync(new TokenIssuer('y'.repeat(40), 60, 60).verifyAccess(pair.access_token), { message: /Invalid/ });
  const expired = await new SignJWT({ typ: 'access', scope: [] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('g1')
    .setIssuer(ISSUER)
    .setIssuedAt(Math.floor(Date.now() / 1000) - 100)
    .setExpirationTime(Math.floor(Date.now() / 1000) - 10)
    .sign(new TextEncoder().encode(secret));
  const err = await t.throwsAsync(issuer.verifyAccess(expired), { instanceOf: TokenError });
  t.is(err.code, 'expired');
  const user = await issuer.issue({ guid: 'g2', username: 'bob', admin: false });
  t.false((await issuer.verifyAccess(user.access_token)).scopes.includes('cloud_controller.admin'));
});

test('signed URLs: valid until expiry, bound to method and path', (t) => {
  const url = new URL(signUrl('k', 'http://cc:9022/', 'GET', '/internal/v3/packages/p/download', 1000));
  t.is(url.origin + url.pathname, 'http://cc:9022/internal/v3/packages/p/download');
  const q = url.searchParams;
  t.deepEqual(checkSignature('k', 'GET', url.pathname, q, 999), { ok: true });
  t.deepEqual(checkSignature('k', 'GET', url.pathname, q, 1001), { ok: false, reason: 'expired' });
  t.deepEqual(checkSignature('k', 'PUT', url.pathname, q, 999), { ok: false, reason: 'invalid' });
  t.deepEqual(checkSignature('k', 'GET', '/internal/v3/packages/other/download', q, 999), { ok: false, reason: 'invalid' });
  t.deepEqual(checkSignature('other', 'GET', url.pathname, q, 999), { ok: false, reason: 'invalid' });
  t.deepEqual(checkSignature('k', 'GET', url.pathname, new URLSearchParams(`expires=2000&signature=${q.get('signature')}`), 999), { ok: false, reason: 'invalid' });
  t.deepEqual(checkSignature('k', 'GET', url.pathname, new URLSearchParams(''), 999), { ok: false, reason: 'missing' });
  t.deepEqual(checkSignature('k', 'GET', url.pathname, new URLSearchParams('expires=x&signature=00'), 999), { ok: false, reason: 'invalid' });
  t.is(signature('k', 'GET', '/a', 1).length, 64);
  const signer = new UrlSigner('k', 'http://cc', () => 100);
  t.true(signer.check('PUT', '/x', new URL(signer.sign('PUT', '/x', 5)).searchParams).ok);
});

test('package paths: traversal, absolute paths and escaping symlinks are unsafe', (t) => {
  t.is(unsafePath('app/server.js'), null);
  t.regex(unsafePath('../etc/passwd')!, /leaving/);
  t.regex(unsafePath('a/../../b')!, /leaving/);
  t.regex(unsafePath('/etc/passwd')!, /absolute/);
  t.regex(unsafePath('C:/x')!, /absolute/);
  t.regex(unsafePath('a\\b')!, /backslash/);
  t.false(symlinkEscapes('lib/current', 'v2'));
  t.false(symlinkEscapes('lib/current', '../bin/x'));
  t.true(symlinkEscapes('lib/current', '../../x'));
  t.true(symlinkEscapes('x', '/etc/passwd'));
  t.true(symlinkEscapes('x', '..'));
  t.is(parseMode('0755'), 0o755);
  t.is(parseMode('644'), 0o644);
  t.is(parseMode(undefined), 0o644);
  t.is(parseMode(0o100755), 0o755);
  t.throws(() => parseMode('rwx'), { instanceOf: PackageError });
  const links = new Map([
    ['a', '.'],
    ['b', 'a/../x'],
    ['c', 'sub/deeper'],
    ['loop1', 'loop2'],
    ['loop2', 'loop1'],
    ['d', 'c/../../y'],
  ]);
  t.false(leadsOutside(links, 'a'));
  t.true(leadsOutside(links, 'b'), 'a link through a link that aliases the root');
  t.false(leadsOutside(links, 'c'));
  t.false(leadsOutside(links, 'd'), 'c/../../y is sub/deeper/../../y, which is y: inside');
  t.true(leadsOutside(new Map([['c', 'sub/deeper'], ['e', 'c/../../../y']]), 'e'));
  t.true(leadsOutside(links, 'loop1'));
  t.throws(() => checkEntries([{ kind: 'symlink', path: 'a', mode: 0o777, target: '.' }, { kind: 'symlink', path: 'b', mode: 0o777, target: 'a/../x' }]), { message: /through other links/ });
  t.throws(() => checkEntries([{ kind: 'dir', path: 'x', mode: 0o755 }, { kind: 'file', path: 'f', mode: 0o644, sha1: 'a', size: 1 }, { kind: 'file', path: 'f', mode: 0o644, sha1: 'b', size: 1 }]), { message: /more than once/ });
  t.is(cleanPath('./a//b/'), 'a/b');
  t.is(cleanPath('./'), '');
});

async function zipEntries(path: string): Promise<Record<string, { mode: number; content: string }>> {
  const zip = await yauzl.openPromise(path, { lazyEntries: false, autoClose: false });
  const out: Record<string, { mode: number; content: string }> = {};
  for await (const e of zip.eachEntry()) {
    const s = await zip.openReadStreamPromise(e);
    const chunks: Buffer[] = [];
    for await (const c of s as AsyncIterable<Buffer>) chunks.push(c);
    out[e.fileName] = { mode: e.externalFileAttributes >>> 16, content: Buffer.concat(chunks).toString() };
  }
  zip.close();
  return out;
}

test('a zip fills the resource cache and rebuilds with matched resources', async (t) => {
  const dir = scratch('bits');
  const blobs = await Blobstore.open(join(dir, 'blobs'));
  const first = join(dir, 'first.zip');
  writeFileSync(first, await zipOf({ 'server.js': 'console.log(1)', 'bin/run': { content: '#!/bin/sh', mode: 0o755 }, 'lib/link': { symlink: '../server.js' } }));
  const entries = await ingestZip(first, blobs, { maxUnzippedBytes: 1e6 });
  t.deepEqual(
    entries.map((e) => [e.kind, e.path]),
    [
      ['file', 'server.js'],
      ['file', 'bin/run'],
      ['symlink', 'lib/link'],
    ],
  );
  const serverSha = (entries[0] as { sha1: string }).sha1;
  t.true(await blobs.has('resources', serverSha));
  // A second package: one new file uploaded, server.js matched from the cache.
  const second = join(dir, 'second.zip');
  writeFileSync(second, await zipOf({ 'new.txt': 'new' }));
  const merged = await mergeResources(await ingestZip(second, blobs, { maxUnzippedBytes: 1e6 }), [{ path: 'server.js', sha1: serverSha, size: 14, mode: 0o600 }], blobs);
  const out = join(dir, 'out.zip');
  await buildZip(merged, blobs, out);
  const got = await zipEntries(out);
  t.deepEqual(Object.keys(got).sort(), ['new.txt', 'server.js']);
  t.is(got['server.js']!.content, 'console.log(1)');
  t.is(got['server.js']!.mode & 0o7777, 0o600);
  await t.throwsAsync(mergeResources([], [{ path: 'x', sha1: 'f'.repeat(40), size: 1, mode: 0o644 }], blobs), { message: /not in the resource cache/ });
  await t.throwsAsync(mergeResources([], [{ path: 'x', sha1: serverSha, size: 99, mode: 0o644 }], blobs), { message: /not in the resource cache/ });
  await t.throwsAsync(mergeResources([], [{ path: '../x', sha1: serverSha, size: 14, mode: 0o644 }], blobs), { message: /leaving/ });
});

test('unsafe zips are refused', async (t) => {
  const dir = scratch('bad');
  const blobs = await Blobstore.open(join(dir, 'blobs'));
  const write = (name: string, buf: Buffer): string => {
    const p = join(dir, name);
    writeFileSync(p, buf);
    return p;
  };
  const traversal = write('t.zip', renameInZip(await zipOf({ 'xx/evil.txt': 'x' }), 'xx/evil', '../evil'));
  await t.throwsAsync(ingestZip(traversal, blobs, { maxUnzippedBytes: 1e6 }), { instanceOf: PackageError, message: /unsafe path|leaving/ });
  const absolute = write('a.zip', renameInZip(await zipOf({ 'xetc/passwd': 'x' }), 'xetc/passwd', '/etc/passwd'));
  await t.throwsAsync(ingestZip(absolute, blobs, { maxUnzippedBytes: 1e6 }), { instanceOf: PackageError, message: /absolute/ });
  const link = write('l.zip', await zipOf({ 'lib/link': { symlink: '../../../etc/passwd' } }));
  await t.throwsAsync(ingestZip(link, blobs, { maxUnzippedBytes: 1e6 }), { instanceOf: PackageError, message: /points outside/ });
  const big = write('b.zip', await zipOf({ 'a.txt': 'a'.repeat(5000) }));
  await t.throwsAsync(ingestZip(big, blobs, { maxUnzippedBytes: 1000 }), { instanceOf: PackageError, message: /more than 1000 bytes/ });
  await t.throwsAsync(ingestZip(write('n.zip', Buffer.from('not a zip at all')), blobs, { maxUnzippedBytes: 1000 }), { instanceOf: PackageError, message: /not a valid zip/ });
});

test('recent logs: a ring buffer per app, and live listeners', (t) => {
  const ring = new RingBuffer<number>(3);
  for (let i = 1; i <= 5; i++) ring.push(i);
  t.deepEqual(ring.toArray(), [3, 4, 5]);
  t.deepEqual(ring.toArray(2), [4, 5]);
  t.is(ring.size, 3);
  const logs = new LogStore(2, 2);
  const line = (app_id: string, n: number) => ({ app_id, source: 'APP' as const, stream: 'out' as const, timestamp: n, line: `l${n}` });
  const heard: string[] = [];
  const stop = logs.listen('a', (l) => heard.push(l.line));
  logs.add(line('a', 1));
  logs.add(line('a', 2));
  logs.add(line('a', 3));
  stop();
  logs.add(line('a', 4));
  t.deepEqual(heard, ['l1', 'l2', 'l3']);
  t.deepEqual(logs.recent('a').map((l) => l.line), ['l3', 'l4']);
  logs.add(line('b', 1));
  logs.add(line('c', 1));
  t.deepEqual(logs.recent('a'), [], 'the least recently written app is dropped past maxApps');
  t.is(logs.listenerCount, 0);
});

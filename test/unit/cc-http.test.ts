// The cloud controller's HTTP edge, pure parts: path routing, pagination links, query
// validation, body issue messages and the streaming multipart parser.
import test from 'ava';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ApiError } from '../../kernel/cloud-controller/errors.ts';
import { describeIssues, formatBytes } from '../../kernel/cloud-controller/http/body.ts';
import { boundaryOf, dispositionParams, parseMultipart } from '../../kernel/cloud-controller/http/multipart.ts';
import { pagination, totalPages, window } from '../../kernel/cloud-controller/http/pagination.ts';
import { csv, listQuery, orderBy, parseQuery } from '../../kernel/cloud-controller/http/query.ts';
import { PathRouter } from '../../kernel/cloud-controller/http/router.ts';
import { scratchDir } from '../helpers/tmp.ts';

test('the router matches methods and parameters, and lists allowed methods for 405', (t) => {
  const r = new PathRouter<string>();
  r.add('GET', '/v3/apps', 'list');
  r.add('GET', '/v3/apps/:guid', 'get');
  r.add('POST', '/v3/apps/:guid/actions/start', 'start');
  r.add('GET', '/v3/apps/:guid/processes/:type', 'process');
  r.add('GET', '/v3/apps/:guid/droplets/current', 'current');
  r.add('GET', '/v3/apps/:guid/droplets/:other', 'param');
  t.deepEqual(r.match('GET', '/v3/apps'), { match: { route: 'list', params: {} } });
  t.deepEqual(r.match('GET', '/v3/apps/abc/'), { match: { route: 'get', params: { guid: 'abc' } } });
  t.deepEqual(r.match('post', '/v3/apps/a%20b/actions/start'), { match: { route: 'start', params: { guid: 'a b' } } });
  t.deepEqual(r.match('GET', '/v3/apps/x/processes/web'), { match: { route: 'process', params: { guid: 'x', type: 'web' } } });
  t.is((r.match('GET', '/v3/apps/x/droplets/current') as { match: { route: string } }).match.route, 'current', 'literal segments win');
  t.deepEqual(r.match('DELETE', '/v3/apps/x/actions/start'), { allowed: ['POST'] });
  t.is(r.match('GET', '/v3/nope'), null);
  t.is(r.match('GET', '/v3/apps/%E0%A4%A'), null, 'a malformed escape matches nothing');
});

test('pagination links keep the query and bound next/previous', (t) => {
  const base = new URL('http://api.example/v3/apps?names=a,b&per_page=2&page=2');
  const p = pagination(base, 5, { page: 2, perPage: 2 });
  t.is(p.total_results, 5);
  t.is(p.total_pages, 3);
  const q = (href: string) => Object.fromEntries(new URL(href).searchParams);
  t.deepEqual(q(p.first.href), { names: 'a,b', per_page: '2', page: '1' });
  t.deepEqual(q(p.last.href), { names: 'a,b', per_page: '2', page: '3' });
  t.is(q(p.next!.href).page, '3');
  t.is(q(p.previous!.href).page, '1');
  const last = pagination(base, 5, { page: 3, perPage: 2 });
  t.is(last.next, null);
  const empty = pagination(base, 0, { page: 1, perPage: 50 });
  t.is(empty.total_pages, 1);
  t.is(empty.previous, null);
  t.deepEqual(window({ page: 3, perPage: 20 }), { offset: 40, limit: 20 });
});

test('pages cover every result exactly once (property)', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 1, max: 60 }), (total, perPage) => {
      const seen: number[] = [];
      for (let page = 1; page <= totalPages(total, perPage); page++) {
        const { offset, limit } = window({ page, perPage });
        for (let i = offset; i < Math.min(total, offset + limit); i++) seen.push(i);
      }
      return seen.length === total && seen.every((v, i) => v === i);
    }),
  );
  t.pass();
});

test('query strings are validated: unknown keys and bad values are a 400 naming them', (t) => {
  const schema = listQuery({ names: csv.optional() }, ['created_at', 'name']);
  const q = parseQuery(new URLSearchParams('names=a,,b&page=2&order_by=-name'), schema);
  t.deepEqual(q, { names: ['a', 'b'], page: 2, per_page: 50, order_by: '-name' });
  t.deepEqual(orderBy(q.order_by), { column: 'name', desc: true });
  t.deepEqual(orderBy('+created_at'), { column: 'created_at', desc: false });
  const unknown = t.throws(() => parseQuery(new URLSearchParams('nmes=a'), schema), { instanceOf: ApiError });
  t.is(unknown.status, 400);
  t.regex(unknown.message, /Unknown query parameter\(s\): 'nmes'/);
  t.regex(t.throws(() => parseQuery(new URLSearchParams('per_page=5001'), schema))!.message, /per_page/);
  t.regex(t.throws(() => parseQuery(new URLSearchParams('page=0'), schema))!.message, /page/);
  t.regex(t.throws(() => parseQuery(new URLSearchParams('order_by=state'), schema))!.message, /order_by/);
  t.regex(t.throws(() => parseQuery(new URLSearchParams('page=1&page=2'), schema))!.message, /more than once/);
});

test('body issues name each field path', (t) => {
  const schema = z.object({ name: z.string(), lifecycle: z.object({ data: z.object({ buildpacks: z.array(z.string()) }) }) }).strict();
  const r = schema.safeParse({ lifecycle: { data: { buildpacks: ['ok', 3] } }, extra: 1 });
  t.false(r.success);
  const text = describeIssues((r as z.SafeParseError<unknown>).error);
  t.regex(text, /name: Required/);
  t.regex(text, /lifecycle\.data\.buildpacks\[1\]: Expected string, received number/);
  t.regex(text, /\(body\): Unknown field\(s\): 'extra'/);
  t.is(formatBytes(1024 * 1024), '1 MB');
  t.is(formatBytes(2048), '2 KB');
  t.is(formatBytes(1000), '1000 bytes');
});

test('multipart headers: boundary and disposition parameters', (t) => {
  t.is(boundaryOf('multipart/form-data; boundary=----abc'), '----abc');
  t.is(boundaryOf('multipart/form-data; charset=utf-8; boundary="x y"'), 'x y');
  t.is(boundaryOf('application/zip'), undefined);
  t.deepEqual(dispositionParams('form-data; name="bits"; filename="a \\"b\\".zip"'), { name: 'bits', filename: 'a "b".zip' });
});

function multipartBody(boundary: string, file: Buffer, resources: string): Buffer {
  return Buffer.concat([
    Buffer.from(`preamble\r\n--${boundary}\r\nContent-Disposition: form-data; name="resources"\r\n\r\n${resources}\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="bits"; filename="app.zip"\r\nContent-Type: application/zip\r\n\r\n`),
    file,
    Buffer.from(`\r\n--${boundary}--\r\nepilogue`),
  ]);
}

async function* chunked(buf: Buffer, cuts: number[]): AsyncGenerator<Buffer> {
  let at = 0;
  for (const c of [...new Set(cuts)].sort((a, b) => a - b)) {
    if (c <= at || c >= buf.length) continue;
    yield buf.subarray(at, c);
    at = c;
  }
  yield buf.subarray(at);
}

test('the multipart parser streams files to disk however the body is chunked (property)', async (t) => {
  const dir = scratchDir('cc-mp');
  let n = 0;
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.array(fc.integer({ min: 1, max: 3500 }), { maxLength: 12 }), async (bytes, cuts) => {
      const boundary = 'XbOuNdArY';
      // Content that looks like the start of a delimiter must survive.
      const file = Buffer.concat([Buffer.from('\r\n--XbOuNd'), Buffer.from(bytes), Buffer.from('\r\n--')]);
      const body = multipartBody(boundary, file, '[{"x":1}]');
      const out = await parseMultipart(chunked(body, cuts), boundary, { fileFields: ['bits'], tempPath: () => join(dir, `f${n++}`), maxFieldBytes: 1024 });
      t.is(out.fields.resources, '[{"x":1}]');
      t.deepEqual(readFileSync(out.files.bits!.path), file);
      t.is(out.files.bits!.size, file.length);
      t.is(out.files.bits!.filename, 'app.zip');
    }),
    { numRuns: 60 },
  );
});

test('the multipart parser refuses truncated bodies and oversized fields', async (t) => {
  const dir = scratchDir('cc-mp');
  const body = multipartBody('B', Buffer.from('zip'), 'r');
  const opts = { fileFields: ['bits'], tempPath: () => join(dir, `t${Math.random()}`), maxFieldBytes: 1024 };
  await t.throwsAsync(parseMultipart(chunked(body.subarray(0, body.length - 15), []), 'B', opts), { message: /ended before/ });
  await t.throwsAsync(parseMultipart(chunked(multipartBody('B', Buffer.from('z'), 'x'.repeat(2000)), []), 'B', opts), { message: /larger than 1024/ });
});

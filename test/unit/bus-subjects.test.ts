import test from 'ava';
import fc from 'fast-check';
import { describeZod, subjects, replies } from '../../kernel/bus/mod.ts';

test('families build concrete subjects and expose their wildcard pattern', (t) => {
  t.is(subjects.deaStart('dea-7').subject, 'dea.dea-7.start');
  t.is(subjects.deaStart.subject, 'dea.*.start');
  t.is(subjects.logs('app-1').subject, 'logs.app-1');
  t.is(subjects.serviceNode('redis', 'bind', 'n1').subject, 'services.redis.bind.n1');
  t.is(subjects.serviceNodeAnnounce('redis').subject, 'services.redis.announce');
});

test('a data-derived subject token may never be a wildcard or contain a dot', (t) => {
  for (const bad of ['*', '>', 'a.b', '', 'a b']) {
    t.throws(() => subjects.logs(bad), { message: /not a valid subject token/ });
  }
});

test('router.register accepts the wire shape and refuses wrong types with a path', (t) => {
  const ok = subjects.routerRegister.schema.safeParse({ host: '10.0.0.5', port: 61001, uris: ['a.example.com'], app_id: 'x', tags: { component: 'dea' }, extra: 1 });
  t.true(ok.success);
  t.is((ok as { data: Record<string, unknown> }).data.extra, 1, 'unknown fields pass through to newer receivers');
  const bad = subjects.routerRegister.schema.safeParse({ host: '10.0.0.5', port: '61001', uris: [1] });
  t.false(bad.success);
  if (!bad.success) t.regex(describeZod(bad.error), /port: Expected number, received string; uris\.0: Expected string, received number/);
});

test('every catalogue schema refuses arbitrary JSON scalars and arrays', (t) => {
  const schemas = [...Object.values(subjects).map((s) => s.schema), ...Object.values(replies)];
  fc.assert(
    fc.property(fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null), fc.array(fc.integer())), (value) => {
      for (const schema of schemas) if (schema.safeParse(value).success) return false;
      return true;
    }),
  );
  t.pass();
});

test('dea start requires a sha256 of the droplet', (t) => {
  const base = {
    app_id: 'a', name: 'web', index: 0, version: 'v1', droplet_uri: 'http://cc/droplets/a', uris: [], limits: { memory_mb: 256, disk_mb: 1024 }, env: {}, services: [],
  };
  t.false(subjects.deaStart.schema.safeParse({ ...base, droplet_sha256: 'abc' }).success);
  t.true(subjects.deaStart.schema.safeParse({ ...base, droplet_sha256: 'a'.repeat(64) }).success);
});

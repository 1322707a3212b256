import test from 'ava';
import fc from 'fast-check';
import { ManifestError, applyOps, locate, parsePointer, parseVarFlags, readYaml, type YamlSource } from '../../orchestrator/manifest/mod.ts';
import { canonical, doc, getAt, paths, pointer, setAt, tree } from '../fixtures/manifests/arbitraries.ts';
import { fixture } from '../fixtures/manifests/load.ts';

const source = (value: unknown): YamlSource => ({ file: 'base.yml', value });
const ops = (text: string, file = 'ops.yml') => readYaml(text, file);

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ManifestError) return err.lines;
    throw err;
  }
  throw new Error('expected a ManifestError');
}

test('the ops fixture: replace by name, create with ?, remove, append', (t) => {
  const base = fixture('kernel.yml');
  const before = structuredClone(base.value);
  const out = applyOps(base, [fixture('ops-scale.yml')]).value as {
    instance_groups: Array<{ name: string; instances: number; jobs: Array<{ properties: Record<string, Record<string, unknown>> }> }>;
    releases: unknown[];
  };
  t.deepEqual(base.value, before, 'the input is not changed');
  t.deepEqual(out.instance_groups.map((g) => `${g.name}×${g.instances}`), ['nats×3', 'router×1', 'cloud-controller×1', 'dea×4']);
  t.is(out.instance_groups[1]!.jobs[0]!.properties.router!.port, 80);
  t.is(out.instance_groups[0]!.jobs[0]!.properties.nats!.debug, true);
  t.deepEqual(out.releases[1], { name: 'extra', version: 1 });
});

test('? creates missing maps, and an optional matcher creates the item', (t) => {
  const out = applyOps(source({ groups: [] }), [
    ops('- type: replace\n  path: /a?/b/c\n  value: 1\n- type: replace\n  path: /groups/name=x?/size\n  value: 2\n'),
  ]);
  t.deepEqual(out.value, { a: { b: { c: 1 } }, groups: [{ name: 'x', size: 2 }] });
});

test('index and escaped keys', (t) => {
  const out = applyOps(source({ list: [1, 2, 3], 'a/b': { '~c': 0 } }), [
    ops('- type: replace\n  path: /list/0\n  value: 9\n- type: remove\n  path: /list/1\n- type: replace\n  path: /a~1b/~0c\n  value: 5\n'),
  ]);
  t.deepEqual(out.value, { list: [9, 3], 'a/b': { '~c': 5 } });
});

test('optional remove of something missing does nothing', (t) => {
  const out = applyOps(source({ a: 1, list: [] }), [ops('- type: remove\n  path: /b?\n- type: remove\n  path: /list/name=z?\n')]);
  t.deepEqual(out.value, { a: 1, list: [] });
});

test('errors name the ops file, the entry and the path that failed, all at once', (t) => {
  const base = fixture('kernel.yml');
  const text = `- type: replace
  path: /instance_groups/name=nope/instances
  value: 1
- type: remove
  path: /zzz
- type: replace
  path: /instance_groups/9/instances
  value: 1
- type: add
  path: /x
- type: replace
  path: /update/canaries/deeper
  value: 1
`;
  t.deepEqual(problems(() => applyOps(base, [ops(text, '/ops/scale.yml')])), [
    'scale.yml:2 [0]: replace /instance_groups/name=nope/instances failed at /instance_groups/name=nope: no item with name=nope',
    'scale.yml:5 [1]: remove /zzz failed at /zzz: no key zzz',
    'scale.yml:7 [2]: replace /instance_groups/9/instances failed at /instance_groups/9: index 9 out of range (the array has 5 items)',
    'scale.yml:9 [3].type: expected replace or remove, got "add"',
    'scale.yml:12 [4]: replace /update/canaries/deeper failed at /update/canaries/deeper: expected a map, found a number',
  ]);
});

test('a value an ops file put in is located in the ops file', (t) => {
  const out = applyOps(fixture('kernel.yml'), [ops('- type: replace\n  path: /instance_groups/name=dea/instances\n  value: lots\n', '/ops/o.yml')]);
  t.deepEqual(locate(out, ['instance_groups', 3, 'instances']), { file: '/ops/o.yml', line: 3 });
  t.is(locate(out, ['instance_groups', 3, 'vm_type']).file, fixture('kernel.yml').file);
});

test('parsePointer reads every token kind', (t) => {
  t.deepEqual(parsePointer('/a/0/-/name=x?/b'), [
    { kind: 'key', key: 'a', optional: false },
    { kind: 'index', index: 0, optional: false },
    { kind: 'append', optional: false },
    { kind: 'match', key: 'name', value: 'x', optional: true },
    { kind: 'key', key: 'b', optional: true },
  ]);
});

test('-v flags keep their values as strings', (t) => {
  t.deepEqual(parseVarFlags(['a=1', 'url=http://x?y=z']), { a: '1', url: 'http://x?y=z' });
  t.throws(() => parseVarFlags(['nokey']), { instanceOf: ManifestError });
});

test('property: an empty ops list is the identity', (t) => {
  fc.assert(
    fc.property(doc, (value) => {
      const out = applyOps(source(value), []);
      return canonical(out.value) === canonical(value);
    }),
  );
  t.pass();
});

test('property: replace at an existing path changes only that path', (t) => {
  fc.assert(
    fc.property(
      doc.filter((d) => paths(d).length > 0),
      fc.nat(),
      tree,
      (value, n, replacement) => {
        const all = paths(value);
        const path = all[n % all.length]!;
        const out = applyOps(source(value), [source([{ type: 'replace', path: pointer(path), value: replacement }])]);
        return canonical(out.value) === canonical(setAt(value, path, replacement));
      },
    ),
  );
  t.pass();
});

test('property: remove then replace restores the document', (t) => {
  fc.assert(
    fc.property(
      doc.filter((d) => paths(d).length > 0),
      fc.nat(),
      (value, n) => {
        // Map keys, and the last item of an array (restored by appending): go-patch cannot insert mid-array.
        const all = paths(value).filter((p) => {
          const last = p[p.length - 1];
          if (typeof last === 'string') return true;
          return (getAt(value, p.slice(0, -1)) as unknown[]).length - 1 === last;
        });
        const path = all[n % all.length]!;
        const last = path[path.length - 1];
        const restorePath = typeof last === 'number' ? pointer([...path.slice(0, -1), '-']) : pointer(path);
        const out = applyOps(source(value), [
          source([
            { type: 'remove', path: pointer(path) },
            { type: 'replace', path: restorePath, value: getAt(value, path) },
          ]),
        ]);
        return canonical(out.value) === canonical(value);
      },
    ),
  );
  t.pass();
});

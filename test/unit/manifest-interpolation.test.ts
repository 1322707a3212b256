import { X509Certificate, createPrivateKey } from 'node:crypto';
import test from 'ava';
import fc from 'fast-check';
import {
  ManifestError,
  MemoryVariableStore,
  interpolate,
  locate,
  readYaml,
  referencedVariables,
  type YamlSource,
} from '../../orchestrator/manifest/mod.ts';
import { canonical, doc, key, paths, scalar, tree } from '../fixtures/manifests/arbitraries.ts';
import { fixture } from '../fixtures/manifests/load.ts';

const source = (value: unknown): YamlSource => ({ file: 'base.yml', value });

async function problems(p: Promise<unknown>): Promise<string[]> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ManifestError) return err.lines;
    throw err;
  }
  throw new Error('expected a ManifestError');
}

test('a whole-value placeholder keeps its type; a partial one is stringified', async (t) => {
  const out = await interpolate(
    source({ n: '((n))', b: '((b))', m: '((m))', url: 'nats://((user)):((n))@host', list: ['((n))'] }),
    { n: 3, b: false, m: { a: [1] }, user: 'u' },
    new MemoryVariableStore(),
  );
  t.deepEqual(out.value, { n: 3, b: false, m: { a: [1] }, url: 'nats://u:3@host', list: [3] });
});

test('((var.key)) reads a sub-key', async (t) => {
  const out = await interpolate(source({ cert: '((tls.certificate))', deep: '((a.b.c))' }), { tls: { certificate: 'PEM' }, a: { b: { c: 1 } } }, new MemoryVariableStore());
  t.deepEqual(out.value, { cert: 'PEM', deep: 1 });
});

test('missing variables are named where they are used, all at once', async (t) => {
  const text = 'name: x\nproperties:\n  a: ((one))\n  b: [((two))]\n  c: http://((one))/\n  d: ((tls.missing))\n  e: pre-((map))\n';
  t.deepEqual(await problems(interpolate(readYaml(text, '/m/local.yml'), { tls: { certificate: 'x' }, map: { a: 1 } }, new MemoryVariableStore())), [
    'local.yml:3 properties.a: variable one is not defined: pass it with -v one=… or add it to variables',
    'local.yml:4 properties.b[0]: variable two is not defined: pass it with -v two=… or add it to variables',
    'local.yml:5 properties.c: variable one is not defined: pass it with -v one=… or add it to variables',
    'local.yml:6 properties.d: variable tls has no key missing',
    'local.yml:7 properties.e: variable map is a map or list and cannot be placed inside a string',
  ]);
});

test('passwords are generated once, stored, and reused', async (t) => {
  const store = new MemoryVariableStore();
  const first = (await interpolate(fixture('kernel.yml'), { system_domain: 'a' }, store)).value as any;
  const second = (await interpolate(fixture('kernel.yml'), { system_domain: 'a' }, store)).value as any;
  const password = first.instance_groups[0].jobs[0].properties.nats.password as string;
  t.regex(password, /^[A-Za-z0-9]{30}$/);
  t.is(second.instance_groups[0].jobs[0].properties.nats.password, password);
  t.regex(first.instance_groups[2].jobs[0].properties.cc.db_password, /^[A-Za-z0-9]{40}$/);
  t.deepEqual([...store.values.keys()].sort(), ['cc_db_password', 'nats_password']);
  t.is(first.variables[0].name, 'nats_password', 'the variables section is left as written');
});

test('-v values win over the store; interpolated values stay located', async (t) => {
  const store = new MemoryVariableStore();
  await store.set('nats_password', 'stored');
  const out = await interpolate(fixture('kernel.yml'), { nats_password: 'given', system_domain: 'a' }, store);
  t.is((out.value as any).instance_groups[0].jobs[0].properties.nats.password, 'given');
  t.is(locate(out, ['instance_groups', 0, 'jobs', 0, 'properties', 'nats', 'password']).line, 41);
});

test('certificates: a CA, and a leaf it signs with SANs and usages', async (t) => {
  const text = `variables:
- {name: ca, type: certificate, options: {is_ca: true, common_name: ingot-ca}}
- {name: nats_tls, type: certificate, options: {ca: ca, common_name: nats.ingot, alternative_names: [10.244.0.10, nats.service], extended_key_usage: [server_auth, client_auth]}}
- {name: key, type: rsa}
- {name: ssh, type: ssh}
tls: ((nats_tls))
ca: ((nats_tls.ca))
key: ((key.private_key))
ssh: ((ssh.public_key))
`;
  const out = (await interpolate(readYaml(text, 'm.yml'), {}, new MemoryVariableStore())).value as any;
  const ca = new X509Certificate(out.ca);
  const leaf = new X509Certificate(out.tls.certificate);
  t.true(ca.ca);
  t.true(ca.verify(ca.publicKey));
  t.false(leaf.ca);
  t.true(leaf.verify(ca.publicKey), 'signed by the CA');
  t.true(leaf.checkIssued(ca));
  t.is(leaf.subject, 'CN=nats.ingot');
  t.is(leaf.subjectAltName, 'IP Address:10.244.0.10, DNS:nats.service');
  t.true(leaf.checkPrivateKey(createPrivateKey(out.tls.private_key)));
  t.is(out.tls.ca, out.ca);
  t.notThrows(() => createPrivateKey(out.key));
  t.regex(out.ssh, /^ssh-rsa AAAAB3NzaC1yc2E/);
});

test('a certificate whose CA is not defined is named at its definition', async (t) => {
  const text = 'variables:\n- {name: leaf, type: certificate, options: {ca: nope}}\ntls: ((leaf))\n';
  t.deepEqual(await problems(interpolate(readYaml(text, 'm.yml'), {}, new MemoryVariableStore())), [
    'm.yml:2 variables[0]: ca nope of variable leaf is not a certificate variable',
  ]);
});

test('property: interpolating a document with no placeholders is the identity', async (t) => {
  await fc.assert(
    fc.asyncProperty(doc, async (value) => {
      const out = await interpolate(source(value), {}, new MemoryVariableStore());
      return canonical(out.value) === canonical(value);
    }),
  );
  t.pass();
});

test('property: interpolation never loses or invents keys, and keeps a whole value exactly', async (t) => {
  await fc.assert(
    fc.asyncProperty(doc, fc.nat(), tree, key, async (value, n, replacement, name) => {
      // Put a placeholder at one leaf-or-container position and give its variable a value.
      const all = paths(value);
      if (all.length === 0) return true;
      const path = all[n % all.length]!;
      const withRef = structuredClone(value) as any;
      let here = withRef;
      path.slice(0, -1).forEach((k) => (here = here[k]));
      here[path[path.length - 1]!] = `((${name}))`;
      const out = await interpolate(source(withRef), { [name]: replacement }, new MemoryVariableStore());
      const expected = structuredClone(withRef);
      let e = expected;
      path.slice(0, -1).forEach((k) => (e = e[k]));
      e[path[path.length - 1]!] = replacement;
      return canonical(out.value) === canonical(expected) && referencedVariables(out.value).size === 0;
    }),
  );
  t.pass();
});

test('property: a partial placeholder stringifies a scalar', async (t) => {
  await fc.assert(
    fc.asyncProperty(scalar, async (v) => {
      const out = await interpolate(source({ s: 'a-((v))-b' }), { v }, new MemoryVariableStore());
      return (out.value as { s: string }).s === `a-${String(v)}-b`;
    }),
  );
  t.pass();
});

test('variable options may use -v values', async (t) => {
  const text = 'variables:\n- {name: ca, type: certificate, options: {is_ca: true, common_name: ((domain))}}\n- {name: pw, type: password, options: {length: ((len))}}\nca: ((ca.certificate))\npw: ((pw))\n';
  const out = (await interpolate(readYaml(text, 'm.yml'), { domain: 'ingot.test', len: 12 }, new MemoryVariableStore())).value as { ca: string; pw: string };
  t.is(new X509Certificate(out.ca).subject, 'CN=ingot.test');
  t.is(out.pw.length, 12);
  t.deepEqual(await problems(interpolate(readYaml(text, 'm.yml'), { len: 12 }, new MemoryVariableStore())), [
    'm.yml:2 variables[0]: options of variable ca use ((domain)), which is not given with -v',
  ]);
});

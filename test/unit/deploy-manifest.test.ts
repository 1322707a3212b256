// What `ingot deploy` sends: ops files applied, -v values put in, other ((variables)) left for
// the director, and mistakes named with file and line.
import test from 'ava';
import { parse } from 'yaml';
import { prepareManifest } from '../../orchestrator/client/deploy-manifest.ts';

const MANIFEST = `name: ingot
instance_groups:
- name: router
  instances: 1
  jobs:
  - name: router
    properties:
      router: { port: ((router_port)), banner: "hello ((who))", password: ((router_password)), cert: ((tls.certificate)) }
variables:
- name: router_password
  type: password
`;

test('ops files apply in order, -v values go in with their place, other variables stay for the director', (t) => {
  const ops = { file: 'scale.yml', text: '- type: replace\n  path: /instance_groups/name=router/instances\n  value: 2\n' };
  const out = prepareManifest({ text: MANIFEST, file: 'm.yml' }, [ops], { router_port: '8081', who: 'world', router_password: 'from-v' });
  t.is(out.name, 'ingot');
  const doc = parse(out.yaml);
  t.is(doc.instance_groups[0].instances, 2);
  const p = doc.instance_groups[0].jobs[0].properties.router;
  t.is(p.port, '8081');
  t.is(p.banner, 'hello world');
  t.is(p.password, 'from-v');
  t.is(p.cert, '((tls.certificate))', 'a sub-key is the director’s');
  t.deepEqual(doc.variables, [{ name: 'router_password', type: 'password' }]);
  const untouched = parse(prepareManifest({ text: MANIFEST, file: 'm.yml' }, [], {}).yaml);
  t.is(untouched.instance_groups[0].jobs[0].properties.router.password, '((router_password))');
});

test('mistakes name the file and line: bad YAML, a bad ops path, no name, a bad -v flag', (t) => {
  t.throws(() => prepareManifest({ text: 'name: [x\n', file: 'bad.yml' }, [], {}), { message: /bad\.yml:\d/ });
  t.throws(() => prepareManifest({ text: MANIFEST, file: 'm.yml' }, [{ file: 'ops.yml', text: '- type: replace\n  path: /nope/name=x/y\n  value: 1\n' }], {}), {
    message: /ops\.yml:\d/,
  });
  t.throws(() => prepareManifest({ text: 'instance_groups: []\n', file: 'anon.yml' }, [], {}), { message: /anon\.yml:1 name: a deployment manifest needs a name/ });
});

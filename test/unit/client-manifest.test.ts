import test from 'ava';
import { ConfigError } from '../../kernel/component/mod.ts';
import { overlay, parseManifest } from '../../kernel/client/manifest.ts';

function problems(text: string): string[] {
  try {
    parseManifest(text, '/apps/shop/manifest.yml');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const FULL = `---
applications:
- name: shop
  path: ./web
  memory: 512M
  disk_quota: 2G
  instances: 3
  buildpacks: [nodejs]
  command: node server.js
  env:
    MODE: production
    WORKERS: 4
    DEBUG: false
  routes:
  - route: shop.example.com
  - route: example.com/shop
  health-check-type: http
  health-check-http-endpoint: /healthz
  timeout: 120
- name: worker
  no-route: true
  buildpack: python
  health-check-type: none
`;

test('reads every supported key of Cloud Foundry manifests', (t) => {
  const m = parseManifest(FULL, '/apps/shop/manifest.yml');
  t.deepEqual(m.applications[0], {
    name: 'shop',
    path: '/apps/shop/web',
    memoryMb: 512,
    diskMb: 2048,
    instances: 3,
    buildpacks: ['nodejs'],
    command: 'node server.js',
    env: { MODE: 'production', WORKERS: '4', DEBUG: 'false' },
    routes: ['shop.example.com', 'example.com/shop'],
    healthCheckType: 'http',
    healthCheckEndpoint: '/healthz',
    timeoutS: 120,
  });
  t.deepEqual(m.applications[1], { name: 'worker', noRoute: true, buildpacks: ['python'], healthCheckType: 'process' });
});

test('a bad value names the file, its line and the key', (t) => {
  t.deepEqual(problems('applications:\n- name: a\n  memory: 12XB\n'), [
    'manifest.yml:3 applications[0].memory: "12XB" is not a size; expected a whole number with M or G, such as 256M, 1G or 512 (MB)',
  ]);
  t.deepEqual(problems('applications:\n- name: a\n  instances: three\n'), ['manifest.yml:3 applications[0].instances: expected a number, got string']);
  t.deepEqual(problems('applications:\n- name: a\n  health-check-type: tcp\n'), [
    "manifest.yml:3 applications[0].health-check-type: invalid enum value. Expected 'port' | 'http' | 'process' | 'none', received 'tcp'",
  ]);
});

test('every problem is reported at once, unknown keys included', (t) => {
  const p = problems(['applications:', '- name: a', '  memory: lots', '  colour: blue', '  env:', '    PORT: 1', '    VCAP_X: 2', '  routes:', '  - rout: a.example.com', '- name: b'].join('\n') + '\n');
  t.true(p.includes('manifest.yml:3 applications[0].memory: "lots" is not a size; expected a whole number with M or G, such as 256M, 1G or 512 (MB)'), p.join('\n'));
  t.true(p.includes('manifest.yml:4 applications[0]: unknown key (colour)'), p.join('\n'));
  t.true(p.includes('manifest.yml:6 applications[0].env.PORT: the platform sets PORT'), p.join('\n'));
  t.true(p.includes('manifest.yml:7 applications[0].env.VCAP_X: the platform sets the VCAP_ variables'), p.join('\n'));
  t.true(p.includes('manifest.yml:9 applications[0].routes[0]: unknown key (rout)'), p.join('\n'));
  t.is(p.length, 6, p.join('\n'));
  // Checks across fields run once every field is valid.
  t.deepEqual(problems('applications:\n- name: a\n- name: b\n- name: a\n'), ['manifest.yml:4 applications[2].name: "a" is also applications[0]']);
});

test('contradictions and shapes: no-route with routes, a missing name, no applications, bad YAML', (t) => {
  t.deepEqual(problems('applications:\n- name: a\n  no-route: true\n  routes:\n  - route: a.example.com\n'), ['manifest.yml:3 applications[0].no-route: no-route cannot be combined with routes']);
  t.deepEqual(problems('applications:\n- memory: 1G\n'), ['manifest.yml:2 applications[0].name: required']);
  t.deepEqual(problems('applications: []\n'), ['manifest.yml:1 applications: expected at least one application']);
  t.deepEqual(problems('name: a\n'), ['manifest.yml:1 applications: required', 'manifest.yml:1: unknown key (name)']);
  t.regex(problems('applications:\n- name: [a\n')[0]!, /^manifest\.yml:\d+ /);
  t.deepEqual(problems('applications:\n- name: a\n  route: a.example.com\n'), ['manifest.yml:3 applications[0]: unknown key (route)']);
});

test('flags override the manifest; --no-route drops its routes', (t) => {
  const [shop] = parseManifest(FULL, '/apps/shop/manifest.yml').applications;
  const o = overlay(shop!, { instances: 1, memoryMb: 128, path: '/elsewhere', noRoute: true });
  t.like(o, { name: 'shop', instances: 1, memoryMb: 128, diskMb: 2048, path: '/elsewhere', noRoute: true, command: 'node server.js' });
  t.is(o.routes, undefined);
  t.deepEqual(overlay(shop!, {}), shop);
});

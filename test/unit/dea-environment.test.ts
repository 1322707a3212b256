import test from 'ava';
import { createRequire } from 'node:module';
import { instanceEnvironment } from '../../kernel/dea/environment.ts';
import { matches, type Instance } from '../../kernel/dea/instance.ts';
import type { DeaStart } from '../../kernel/bus/mod.ts';

const require = createRequire(import.meta.url);

const start: DeaStart = {
  app_id: 'a1',
  name: 'shop',
  index: 2,
  version: 'v7',
  droplet_uri: 'http://cc/droplets/a1',
  droplet_sha256: 'f'.repeat(64),
  uris: ['shop.apps.example.com'],
  limits: { memory_mb: 128, disk_mb: 512 },
  env: { GREETING: 'hi', PORT: '1' },
  services: [{ name: 'cache', label: 'redis', plan: 'default', tags: ['kv'], credentials: { uri: 'redis://:pw@10.0.0.9:6379' } }],
};

test('cfenv reads the environment the DEA builds', (t) => {
  const env = instanceEnvironment(start, { instanceId: 'i-1', host: '10.244.0.5', hostPort: 61001, containerPort: 8080, startedAt: new Date(0), home: '/home/vcap/app', tmp: '/tmp' });
  const saved = { ...process.env };
  try {
    Object.assign(process.env, env);
    const cfenv = require('cfenv') as { getAppEnv(): any };
    const appEnv = cfenv.getAppEnv();
    t.is(appEnv.name, 'shop');
    t.is(appEnv.port, 8080);
    t.false(appEnv.isLocal);
    t.deepEqual(appEnv.urls, ['https://shop.apps.example.com']);
    t.is(appEnv.getServiceCreds('cache').uri, 'redis://:pw@10.0.0.9:6379');
    t.is(appEnv.app.instance_index, 2);
  } finally {
    process.env = saved;
  }
  t.is(env.PORT, '8080', "the platform's PORT wins over the app's");
  t.is(env.GREETING, 'hi');
  t.is(env.MEMORY_LIMIT, '128m');
  t.is(env.HOME, '/home/vcap/app');
});

test('stop and find filters: absent fields match everything', (t) => {
  const i = { app_id: 'a1', version: 'v7', instance_id: 'i-1', index: 2, state: 'RUNNING' } as Instance;
  t.true(matches(i, { app_id: 'a1' }));
  t.false(matches(i, { app_id: 'a2' }));
  t.true(matches(i, { app_id: 'a1', version: 'v7', indices: [1, 2], states: ['RUNNING'], instance_ids: ['i-1'] }));
  t.false(matches(i, { app_id: 'a1', version: 'v6' }));
  t.false(matches(i, { app_id: 'a1', indices: [0] }));
  t.false(matches(i, { app_id: 'a1', states: ['CRASHED'] }));
  t.false(matches(i, { app_id: 'a1', instance_ids: [] }));
});

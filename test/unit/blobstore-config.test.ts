// The blobstore component's config, its release job rendered into it, and the controller's
// `blobstore` block: every mistake named by file, line and key.
import test from 'ava';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { blobstoreConfig } from '../../kernel/blobstore/config.ts';
import { ccConfig } from '../../kernel/cloud-controller/config.ts';
import { parseConfig } from '../../kernel/component/mod.ts';
import type { LinkData } from '../../orchestrator/manifest/types.ts';
import { loadJobs, renderJob, RenderError } from '../../orchestrator/release/mod.ts';
import { configProblems } from '../helpers/services-config.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const nats = 'nats:\n  servers: [nats://10.0.0.1:4222]\n  user: u\n  password: p\n';

function problems(text: string, schema: typeof blobstoreConfig | typeof ccConfig = blobstoreConfig, file = '/var/vcap/jobs/blobstore/config/blobstore.yml'): string[] {
  return configProblems(text, file, schema);
}

test('dir, user and a password of 16 characters are all it needs; the rest has defaults', (t) => {
  const c = parseConfig(`${nats}dir: /var/vcap/store/blobstore\nuser: blobstore\npassword: sixteen-chars-pw\n`, 'blobstore.yml', blobstoreConfig);
  t.is(c.host, '0.0.0.0');
  t.is(c.port, 9028);
  t.is(c.max_blob_mb, 2048);
  t.is(c.dir, '/var/vcap/store/blobstore');
});

test('every problem at once, each with file, line and key', (t) => {
  const p = problems(`${nats}user: blobstore\npassword: short\nport: 70000\nmax_blob_mb: 0\nbucket: x\n`);
  t.deepEqual(p.sort(), [
    'blobstore.yml:1 dir: required',
    'blobstore.yml:9: unknown key (bucket)',
    'blobstore.yml:6 password: expected at least 16 characters',
    'blobstore.yml:7 port: number must be less than or equal to 65535',
    'blobstore.yml:8 max_blob_mb: number must be greater than 0',
  ].sort());
});

test('the release job renders a config the component accepts; its password has no default', (t) => {
  const job = loadJobs(join(repo, 'kernel/jobs'), repo, new Set(['ingot', 'nats-server'])).find((j) => j.name === 'blobstore')!;
  const link: LinkData = { instances: [{ name: 'nats', index: 0, address: '10.0.0.1', az: 'z1' }], properties: { nats: { port: 4222, user: 'kernel', password: 'secret' } } };
  const out = renderJob(job.spec, job.templates, { blobstore: { password: 'a-password-of-20-chars' } }, { nats: link }, { root: '/var/vcap', index: 0, address: '10.0.0.9' });
  const text = out.files['config/blobstore.yml']!;
  const c = parseConfig(text, 'blobstore.yml', blobstoreConfig);
  t.like(c, { dir: '/var/vcap/store/blobstore', port: 9028, user: 'blobstore', password: 'a-password-of-20-chars', max_blob_mb: 2048, status: { port: 9026 } });
  const spec = JSON.parse(out.files['spec.json']!) as { processes: Array<{ args: string[]; ready: unknown }> };
  t.deepEqual(spec.processes[0]!.args.slice(0, 2), ['component', 'blobstore']);
  t.deepEqual(job.spec.provides?.map((p) => ({ name: p.name, type: p.type, properties: p.properties })), [{ name: 'blobstore', type: 'blobstore', properties: ['blobstore.port', 'blobstore.user', 'blobstore.password'] }]);
  const err = t.throws(() => renderJob(job.spec, job.templates, {}, { nats: link }, { root: '/var/vcap', index: 0 }), { instanceOf: RenderError });
  t.true(err.problems.some((p) => p.includes('missing required property blobstore.password')), err.problems.join('\n'));
  t.is(parse(text).password, 'a-password-of-20-chars');
});

const cc = (blobstore: string) =>
  `${nats}system_domain: sys.example.com\ndb:\n  url: 'sqlite::memory:'\njwt:\n  secret: ${'x'.repeat(32)}\nadmin:\n  user: a\n  password: admin-password\nbulk_api:\n  user: b\n  password: bulk-password\nblobstore:\n${blobstore}`;

test("the controller's blobstore: a directory, or a url with its credential", (t) => {
  t.deepEqual(parseConfig(cc('  dir: /var/blobs\n'), 'cc.yml', ccConfig).blobstore, { dir: '/var/blobs', timeout_s: 30, cache_mb: 1024 });
  const remote = parseConfig(cc('  dir: /var/scratch\n  url: http://10.0.0.8:9025\n  user: blobstore\n  password: sixteen-chars-pw\n'), 'cc.yml', ccConfig).blobstore;
  t.deepEqual(remote, { dir: '/var/scratch', url: 'http://10.0.0.8:9025', user: 'blobstore', password: 'sixteen-chars-pw', timeout_s: 30, cache_mb: 1024 });
});

test("the controller's blobstore: a url without a credential, a credential in the url or without a url is refused", (t) => {
  const file = 'cc.yml';
  t.deepEqual(problems(cc('  dir: /s\n  url: http://10.0.0.8:9025\n'), ccConfig, file).sort(), ['cc.yml:17 blobstore.password: required with url', 'cc.yml:17 blobstore.user: required with url'].sort());
  t.deepEqual(problems(cc('  dir: /s\n  url: http://u:pw@10.0.0.8:9025\n  user: u\n  password: sixteen-chars-pw\n'), ccConfig, file), ['cc.yml:18 blobstore.url: must not hold a credential: set user and password']);
  t.deepEqual(problems(cc('  dir: /s\n  password: sixteen-chars-pw\n'), ccConfig, file), ['cc.yml:18 blobstore.password: only with url (the blobstore component); a local directory has no credential']);
  t.deepEqual(problems(cc('  dir: /s\n  url: ftp://10.0.0.8\n  user: u\n  password: sixteen-chars-pw\n'), ccConfig, file), ['cc.yml:18 blobstore.url: expected an http:// or https:// url, not ftp:']);
  t.deepEqual(problems(cc('  dir: /s\n  url: http://h:1\n  user: u\n  password: short\n'), ccConfig, file), ['cc.yml:20 blobstore.password: expected at least 16 characters']);
});

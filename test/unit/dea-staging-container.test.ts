// The staging container's pure parts: where a bind may go, and how argv becomes one shell line.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { bindTargetProblem } from '../../kernel/dea/container/options.ts';
import { compileContainerSpec } from '../../kernel/dea/container/mod.ts';
import { shellQuote } from '../../kernel/dea/staging-container.ts';

test('bind targets: under /tmp or /home/vcap, normalized, never over the app directory', (t) => {
  for (const ok of ['/tmp/cache', '/tmp/buildpacks/0', '/home/vcap/deps']) t.is(bindTargetProblem(ok), null, ok);
  for (const bad of ['/etc', '/tmp', '/home/vcap', '/home/vcap/app', '/home/vcap/app/x', '/tmp/../etc', '/tmp/a/', 'tmp/a', '/tmp/a b', '/proc/x']) {
    t.truthy(bindTargetProblem(bad), bad);
  }
});

test('a container spec with a bad bind is refused, naming the bind', (t) => {
  const base = { id: 'c1', memoryBytes: 64 << 20, diskBytes: 1 << 30, pids: 64 };
  const err = t.throws(() => compileContainerSpec({ ...base, binds: [{ source: 'relative', target: '/etc/passwd' }] }));
  t.regex(err!.message, /binds\.0\.source: expected an absolute path/);
  t.regex(err!.message, /binds\.0\.target: expected a path under \/tmp or \/home\/vcap/);
  t.deepEqual(compileContainerSpec({ ...base, binds: [{ source: '/a', target: '/tmp/a' }] }).binds, [{ source: '/a', target: '/tmp/a', readOnly: false }]);
});

test('shellQuote: sh reads back every argument exactly', (t) => {
  const args = ['/tmp/buildpacks/0/bin/compile', '/home/vcap/app', "it's", 'a b', '$HOME', '`id`', '"q"', '', 'ünï', 'x;rm -rf /'];
  const line = `printf '%s\\n' ${args.map(shellQuote).join(' ')}`;
  const out = spawnSync('/bin/sh', ['-c', line], { encoding: 'utf8' }).stdout;
  t.deepEqual(out.split('\n').slice(0, -1), args);
});

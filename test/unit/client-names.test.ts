import test from 'ava';
import { ClientUsageError } from '../../kernel/client/errors.ts';
import { appNameProblem, domainProblem, hostProblem, pathProblem } from '../../kernel/client/names.ts';
import { nameArg } from '../../kernel/client/commands/common.ts';
import { availability } from '../../kernel/client/commands/domains.ts';

test('app names: anything but empty, a leading blank, a slash or past 255 characters', (t) => {
  for (const ok of ['web', 'my app', 'web-2', 'Ünïcode', 'a'.repeat(255)]) t.is(appNameProblem(ok), null, ok);
  t.regex(appNameProblem('')!, /cannot be empty/);
  t.regex(appNameProblem(' web')!, /cannot begin with whitespace/);
  t.regex(appNameProblem('a/b')!, /cannot contain \//);
  t.regex(appNameProblem('a'.repeat(256))!, /no more than 255/);
});

test('domains: DNS names of two labels or more', (t) => {
  for (const ok of ['example.com', 'apps.ingot.test', 'x-1.a.b', `${'a'.repeat(63)}.com`]) t.is(domainProblem(ok), null, ok);
  t.regex(domainProblem('localhost')!, /at least two labels/);
  for (const bad of ['-a.com', 'a-.com', 'a..com', 'a_b.com', 'a.com.', `${'a'.repeat(64)}.com`]) t.regex(domainProblem(bad) ?? '', /each label/, bad);
  t.regex(domainProblem(`${'a.'.repeat(127)}com`)!, /no more than 253/);
});

test('a bad name argument is one line naming it and its value, quoted when blank', (t) => {
  t.is(nameArg('--path', '/ok', pathProblem), '/ok');
  t.is(t.throws(() => nameArg('--path', 'shop', pathProblem), { instanceOf: ClientUsageError })?.message, '--path shop: path must begin with /');
  t.is(t.throws(() => nameArg('new-name', '', appNameProblem), { instanceOf: ClientUsageError })?.message, 'new-name "": an app name cannot be empty');
  t.is(t.throws(() => nameArg('--hostname', 'w w', hostProblem), { instanceOf: ClientUsageError })?.message, '--hostname "w w": host must be lower-case letters, digits and hyphens, not starting or ending with a hyphen');
});

test("a domain's availability: private when tied to an org, shared otherwise", (t) => {
  t.is(availability({ guid: 'd', name: 'example.com' }), 'shared');
  t.is(availability({ guid: 'd', name: 'example.com', relationships: { organization: { data: null } } }), 'shared');
  t.is(availability({ guid: 'd', name: 'example.com', relationships: { organization: { data: { guid: 'o' } } } }), 'private');
});

// Two tenants on one platform, through the CLI as each would use it (issue 9): the admin makes
// two orgs with a space each and three users; alice develops in acme/web, bob in beta/b1,
// carol audits acme/web. Each pushes and sees only its own space; bob cannot find, read,
// follow or delete alice's app, nor target her org; carol reads alice's app but changes
// nothing; a space quota refuses a scale and a push past it; the events say who did what.
// Every API route is proven one by one in test/integration/cc-tenancy.test.ts; this is
// the same rule end to end, with real staging, containers and the router.
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { fileURLToPath } from 'node:url';
import { ADMIN } from '../helpers/cc-controller.ts';
import { startPlatform, type CliResult, type Platform } from '../helpers/platform.ts';
import { scratchDir } from '../helpers/tmp.ts';

interface Ctx {
  p: Platform;
  /** Each user's INGOT_HOME: its own target and tokens. */
  homes: Record<'alice' | 'bob' | 'carol', string>;
}
const test = anyTest as TestFn<Ctx>;
const SITE = fileURLToPath(new URL('../../examples/static-site', import.meta.url));
type User = keyof Ctx['homes'] | 'admin';

async function as(t: ExecutionContext<Ctx>, user: User, args: string[], timeoutMs = 180_000): Promise<CliResult> {
  const r = await t.context.p.cli(args, timeoutMs, user === 'admin' ? {} : { home: t.context.homes[user] });
  if (r.code !== 0) t.log(`${user}: ingot ${args.join(' ')} → ${r.code}\n${r.stdout}\n${r.stderr}`);
  t.is(r.code, 0, `${user}: ingot ${args.join(' ')}: ${r.stderr.trim()}`);
  return r;
}

/** The command fails with one line matching `pattern` (never a stack). */
async function refused(t: ExecutionContext<Ctx>, user: User, args: string[], pattern: RegExp): Promise<void> {
  const r = await t.context.p.cli(args, 120_000, user === 'admin' ? {} : { home: t.context.homes[user] });
  t.is(r.code, 1, `${user}: ingot ${args.join(' ')} should fail: ${r.stdout}`);
  t.regex(r.stderr.trim(), pattern, `${user}: ingot ${args.join(' ')}`);
  t.is(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
}

test.before(async (t) => {
  t.timeout(180_000);
  const p = await startPlatform({ label: 'e2e-tenancy' });
  t.context = { p, homes: { alice: scratchDir('alice-home'), bob: scratchDir('bob-home'), carol: scratchDir('carol-home') } };
  for (const [user, password] of [['admin', ADMIN.password], ['alice', 'alice-password'], ['bob', 'bob-password'], ['carol', 'carol-password']] as const) {
    const home = user === 'admin' ? {} : { home: t.context.homes[user] };
    const api = await p.cli(['api', p.apiUrl], 60_000, home);
    if (api.code !== 0) throw new Error(`${user}: ingot api: ${api.stderr}`);
    if (user === 'admin') {
      const login = await p.cli(['login', '-u', ADMIN.user, '-p', password]);
      if (login.code !== 0) throw new Error(`admin: ingot login: ${login.stderr}`);
      for (const args of [
        ['create-org', 'acme'],
        ['create-space', 'web', '-o', 'acme'],
        ['create-org', 'beta'],
        ['create-space', 'b1', '-o', 'beta'],
        ['create-user', 'alice', 'alice-password'],
        ['create-user', 'bob', 'bob-password'],
        ['create-user', 'carol', 'carol-password'],
        ['set-org-role', 'alice', 'acme', 'OrgUser'],
        ['set-space-role', 'alice', 'acme', 'web', 'SpaceDeveloper'],
        ['set-org-role', 'bob', 'beta', 'OrgUser'],
        ['set-space-role', 'bob', 'beta', 'b1', 'SpaceDeveloper'],
        ['set-org-role', 'carol', 'acme', 'OrgUser'],
        ['set-space-role', 'carol', 'acme', 'web', 'SpaceAuditor'],
      ]) {
        const r = await p.cli(args);
        if (r.code !== 0) throw new Error(`admin: ingot ${args.join(' ')}: ${r.stderr}`);
      }
    }
  }
});

test.after.always(async (t) => {
  t.timeout(120_000);
  await t.context.p?.stop();
});

test.serial('each user logs in to its own space and pushes there', async (t) => {
  t.timeout(400_000);
  const { p } = t.context;
  await as(t, 'alice', ['login', '-u', 'alice', '-p', 'alice-password']);
  await as(t, 'alice', ['target', '-o', 'acme', '-s', 'web']);
  const pushed = await as(t, 'alice', ['push', 'alice-site', '-p', SITE, '-m', '64M']);
  t.regex(pushed.stdout, /Creating app alice-site in space acme\/web/);
  t.is((await p.get(p.appHost('alice-site'))).status, 200);

  await as(t, 'bob', ['login', '-u', 'bob', '-p', 'bob-password']);
  await as(t, 'bob', ['target', '-o', 'beta', '-s', 'b1']);
  await as(t, 'bob', ['push', 'bob-site', '-p', SITE, '-m', '64M']);
  t.is((await p.get(p.appHost('bob-site'))).status, 200);

  // Alice's orgs are hers: bob's list has only beta, alice's only acme.
  t.deepEqual(JSON.parse((await as(t, 'bob', ['orgs', '--json'])).stdout).map((o: { name: string }) => o.name), ['beta']);
  t.deepEqual(JSON.parse((await as(t, 'alice', ['orgs', '--json'])).stdout).map((o: { name: string }) => o.name), ['acme']);
});

test.serial("bob cannot find, read, follow, change or delete alice's app, nor target her org", async (t) => {
  t.timeout(120_000);
  const apps = await as(t, 'bob', ['apps', '--json']);
  t.deepEqual(JSON.parse(apps.stdout).map((a: { name: string }) => a.name), ['bob-site']);
  await refused(t, 'bob', ['app', 'alice-site'], /app alice-site not found in space beta\/b1/);
  await refused(t, 'bob', ['logs', 'alice-site', '--recent'], /app alice-site not found/);
  await refused(t, 'bob', ['env', 'alice-site'], /app alice-site not found/);
  await refused(t, 'bob', ['stop', 'alice-site'], /app alice-site not found/);
  // As cf does, deleting an app that is not there says so and succeeds: for bob it is not there.
  t.regex((await as(t, 'bob', ['delete', 'alice-site', '-f'])).stdout, /App alice-site does not exist\./);
  await refused(t, 'bob', ['target', '-o', 'acme'], /organization acme not found/);
  // Alice's app still serves.
  t.is((await t.context.p.get(t.context.p.appHost('alice-site'))).status, 200);
});

test.serial("carol, auditor of acme/web, reads alice's app and changes nothing", async (t) => {
  t.timeout(120_000);
  await as(t, 'carol', ['login', '-u', 'carol', '-p', 'carol-password']);
  await as(t, 'carol', ['target', '-o', 'acme', '-s', 'web']);
  t.deepEqual(JSON.parse((await as(t, 'carol', ['apps', '--json'])).stdout).map((a: { name: string }) => a.name), ['alice-site']);
  t.regex((await as(t, 'carol', ['app', 'alice-site'])).stdout, /1\/1|running/);
  await as(t, 'carol', ['logs', 'alice-site', '--recent']);
  await refused(t, 'carol', ['env', 'alice-site'], /not authorized/i);
  await refused(t, 'carol', ['stop', 'alice-site'], /not authorized/i);
  await refused(t, 'carol', ['scale', 'alice-site', '-i', '2'], /not authorized/i);
  await refused(t, 'carol', ['delete', 'alice-site', '-f'], /not authorized/i);
  await refused(t, 'carol', ['push', 'carol-site', '-p', SITE], /not authorized|Invalid space/i);
  t.is((await t.context.p.get(t.context.p.appHost('alice-site'))).status, 200, 'still serving');
});

test.serial("a space quota refuses a scale and a push past it, naming the quota; nothing is half-done", async (t) => {
  t.timeout(400_000);
  const { p } = t.context;
  await as(t, 'admin', ['create-space-quota', 'small', '-o', 'acme', '-m', '128M', '-i', '2']);
  await as(t, 'admin', ['set-space-quota', 'web', 'small', '-o', 'acme']);
  // alice-site uses 64 MB × 1; three instances would be 192 MB.
  await refused(t, 'alice', ['scale', 'alice-site', '-i', '3'], /quota exceeded: space quota 'small'/);
  t.is(JSON.parse((await as(t, 'alice', ['app', 'alice-site', '--json'])).stdout).instances, 1, 'still one instance');
  // A second app of 128 MB would make 192 MB: created and staged, its start refused, left stopped.
  const r = await t.context.p.cli(['push', 'big', '-p', SITE, '-m', '128M'], 300_000, { home: t.context.homes.alice });
  t.is(r.code, 1, r.stdout);
  t.regex(r.stderr, /memory quota exceeded: space quota 'small' allows 128 MB/);
  const apps = JSON.parse((await as(t, 'alice', ['apps', '--json'])).stdout) as Array<{ name: string; state: string }>;
  t.is(apps.find((a) => a.name === 'big')?.state, 'STOPPED');
  t.is((await p.get(p.appHost('alice-site'))).status, 200, 'the app within the quota still serves');
});

test.serial("events say who did what to alice's app; bob cannot read them", async (t) => {
  const events = JSON.parse((await as(t, 'alice', ['events', 'alice-site', '--json'])).stdout) as Array<{ type: string; actor: { name: string } }>;
  const byAlice = events.filter((e) => e.actor.name === 'alice').map((e) => e.type);
  for (const type of ['audit.app.create', 'audit.app.package.upload', 'audit.app.build.create', 'audit.app.start', 'audit.app.map-route']) t.true(byAlice.includes(type), `${type} by alice in ${JSON.stringify(byAlice)}`);
  await refused(t, 'bob', ['events', 'alice-site'], /app alice-site not found/);
  // carol, the auditor, reads them.
  t.true(JSON.parse((await as(t, 'carol', ['events', 'alice-site', '--json'])).stdout).length >= byAlice.length);
});

test.serial('the admin sees both tenants', async (t) => {
  const all = await as(t, 'admin', ['orgs', '--json']);
  t.deepEqual(JSON.parse(all.stdout).map((o: { name: string }) => o.name).sort(), ['acme', 'beta', 'default']);
});

// The tenancy commands as a user runs them: the real CLI (a child process) against a real
// cloud controller process — create-org, create-space, orgs, spaces, set-/unset-org-role,
// set-/unset-space-role, space-users, delete-space, delete-org — and what a user given a
// role then sees. Mistakes are one line on stderr.
import anyTest, { type TestFn } from 'ava';
import { ADMIN, startController, type Controller } from '../helpers/cc-controller.ts';
import { ingot, useCliHome } from '../helpers/cc-tenants.ts';
import { NatsServer } from '../helpers/nats-server.ts';

const test = anyTest as TestFn<{ nats: NatsServer; cc: Controller }>;

useCliHome('client-orgs-home');

test.before(async (t) => {
  const nats = await NatsServer.start();
  const cc = await startController(nats);
  t.context = { nats, cc };
});

test.after.always(async (t) => {
  await t.context.cc?.kill();
  await t.context.nats?.stop();
});

test.serial('an admin creates an org and a space and gives a user roles; the user then sees them', async (t) => {
  const { cc } = t.context;
  await ingot(t, ['api', cc.url]);
  await ingot(t, ['login', '-u', ADMIN.user, '-p', ADMIN.password]);

  t.regex((await ingot(t, ['create-org', 'acme'])).stdout, /Created org acme\./);
  await ingot(t, ['create-org', 'acme'], /Creating org acme: Organization 'acme' already exists/);
  t.regex((await ingot(t, ['create-space', 'dev', '-o', 'acme'])).stdout, /Created space dev in org acme\./);
  await ingot(t, ['create-space', 'dev', '-o', 'nope'], /organization nope not found/);

  const orgs = await ingot(t, ['orgs']);
  t.regex(orgs.stdout, /Getting orgs as admin/);
  t.regex(orgs.stdout, /^acme$/m);
  t.regex(orgs.stdout, /^default$/m);
  t.deepEqual(JSON.parse((await ingot(t, ['spaces', '-o', 'acme', '--json'])).stdout).map((s: { name: string }) => s.name), ['dev']);
  t.regex((await ingot(t, ['spaces'])).stdout, /Getting spaces in org default as admin[^]*\ndefault$/m, 'the targeted org');

  await ingot(t, ['create-user', 'dana', 'dana-password']);
  await ingot(t, ['create-user', 'eve', 'eve-password']);
  await ingot(t, ['set-space-role', 'dana', 'acme', 'dev', 'Owner'], /role Owner: expected one of SpaceManager, SpaceDeveloper, SpaceAuditor/);
  await ingot(t, ['set-org-role', 'dana', 'acme', 'SpaceDeveloper'], /role SpaceDeveloper: expected one of OrgManager, OrgUser, OrgAuditor/);
  await ingot(t, ['set-space-role', 'dana', 'acme', 'dev', 'SpaceDeveloper'], /do not have a role in that space's organization/);
  t.regex((await ingot(t, ['set-org-role', 'dana', 'acme', 'OrgUser'])).stdout, /Assigned role organization_user to user dana in org acme\./);
  t.regex((await ingot(t, ['set-space-role', 'dana', 'acme', 'dev', 'spacedeveloper'])).stdout, /Assigned role space_developer to user dana in space acme\/dev\./);
  t.regex((await ingot(t, ['set-space-role', 'dana', 'acme', 'dev', 'SpaceDeveloper'])).stdout, /already has role space_developer/);
  await ingot(t, ['set-org-role', 'nobody', 'acme', 'OrgUser'], /Invalid user/);

  const users = await ingot(t, ['space-users', 'acme', 'dev']);
  t.regex(users.stdout, /SPACE DEVELOPER\n {2}dana/);
  t.regex(users.stdout, /SPACE AUDITOR\n {2}No users found\./);
  t.deepEqual(JSON.parse((await ingot(t, ['org-users', 'acme', '--json'])).stdout).find((r: { role: string }) => r.role === 'organization_user').users, ['dana']);

  // dana sees acme and dev; eve, with no role there, does not.
  await ingot(t, ['login', '-u', 'dana', '-p', 'dana-password', '-o', 'acme', '-s', 'dev']);
  t.regex((await ingot(t, ['orgs'])).stdout, /^acme$/m);
  t.regex((await ingot(t, ['spaces'])).stdout, /Getting spaces in org acme as dana[^]*\ndev$/m);
  await ingot(t, ['create-org', 'mine'], /Creating org mine: You are not authorized/);
  await ingot(t, ['create-space', 'qa'], /Creating space qa in org acme: You are not authorized/);
  await ingot(t, ['login', '-u', 'eve', '-p', 'eve-password']);
  t.notRegex((await ingot(t, ['orgs'])).stdout, /acme/);
  await ingot(t, ['spaces', '-o', 'acme'], /organization acme not found/);
});

test.serial('roles come off, and spaces and orgs are deleted — with -f, or refused without a terminal', async (t) => {
  await ingot(t, ['login', '-u', ADMIN.user, '-p', ADMIN.password]);
  t.regex((await ingot(t, ['unset-space-role', 'dana', 'acme', 'dev', 'SpaceDeveloper'])).stdout, /Removed role space_developer from user dana in space acme\/dev\./);
  t.regex((await ingot(t, ['unset-space-role', 'dana', 'acme', 'dev', 'SpaceDeveloper'])).stdout, /has no role space_developer/);
  t.regex((await ingot(t, ['unset-org-role', 'dana', 'acme', 'OrgUser'])).stdout, /Removed role organization_user/);
  await ingot(t, ['delete-space', 'dev', '-o', 'acme'], /give -f to delete the space dev without a terminal/);
  await ingot(t, ['delete-org', 'acme', '-f'], /Delete the spaces of this organization first/);
  t.regex((await ingot(t, ['delete-space', 'dev', '-o', 'acme', '-f'])).stdout, /Deleted space dev in org acme\./);
  t.regex((await ingot(t, ['delete-org', 'acme', '-f'])).stdout, /Deleted org acme\./);
  t.regex((await ingot(t, ['delete-org', 'acme', '-f'])).stdout, /Org acme does not exist\./);
  t.notRegex((await ingot(t, ['orgs'])).stdout, /acme/);
});

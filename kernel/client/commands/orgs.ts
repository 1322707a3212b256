// `ingot orgs`, `spaces`, `create-org`, `delete-org`, `create-space`, `delete-space`,
// `set-org-role`, `unset-org-role`, `set-space-role`, `unset-space-role`, `org-users` and
// `space-users`: the tenancy of the platform. Roles are named as the cf CLI names them
// (OrgManager, SpaceDeveloper, …) and sent as the v3 API's role types.
import type { Argv } from 'yargs';
import type { Organization, Space } from '../api-types.ts';
import { ApiRequestError, ClientError, ClientUsageError, step } from '../errors.ts';
import { openSession, type Session } from '../session.ts';
import { table } from '../table.ts';
import { jsonOption, print, printJson } from './common.ts';
import { confirmDelete } from './prompt.ts';

export const ORG_ROLES = { OrgManager: 'organization_manager', OrgUser: 'organization_user', OrgAuditor: 'organization_auditor' } as const;
export const SPACE_ROLES = { SpaceManager: 'space_manager', SpaceDeveloper: 'space_developer', SpaceAuditor: 'space_auditor' } as const;

/** A cf CLI role name (any case) as the API's role type, or a one-line error listing the names. */
export function roleType(name: string, roles: Record<string, string>): string {
  const found = Object.entries(roles).find(([k]) => k.toLowerCase() === name.toLowerCase());
  if (!found) throw new ClientUsageError(`role ${name}: expected one of ${Object.keys(roles).join(', ')}`);
  return found[1];
}

/** The heading `org-users` and `space-users` print over a role's holders: `ORG MANAGER`. */
function heading(type: string): string {
  return type.replace(/^organization_/, 'org_').replace(/_/g, ' ').toUpperCase();
}

/** The named org, or the targeted one. */
export async function orgNamed(s: Session, name: string | undefined): Promise<Organization> {
  const wanted = name ?? s.target.organization?.name;
  if (!wanted) throw new ClientUsageError('no organization is targeted; give -o ORG or run ingot target -o ORG');
  const [org] = await s.client.organizations([wanted]);
  if (!org) throw new ClientError('not_found', `organization ${wanted} not found`);
  return org;
}

export async function spaceNamed(s: Session, org: Organization, name: string): Promise<Space> {
  const [space] = await s.client.spaces(org.guid, [name]);
  if (!space) throw new ClientError('not_found', `space ${name} not found in organization ${org.name}`);
  return space;
}

/** Asks before a delete unless -f; refuses without a terminal to ask on. */
function confirmed(force: boolean, what: string): Promise<boolean> {
  return confirmDelete(force, what, `Really delete ${what} and everything in it? [yN]: `);
}

/** Gives a role; one the user holds already is no error (as cf). */
async function giveRole(s: Session, type: string, username: string, target: { organizationGuid: string } | { spaceGuid: string }, label: string): Promise<void> {
  try {
    await step(`Assigning role ${type} to user ${username} in ${label}`, () => s.client.createRole(type, username, target));
    print(`Assigned role ${type} to user ${username} in ${label}.`);
  } catch (err) {
    if (!(err instanceof ClientError && err.cause instanceof ApiRequestError && err.cause.title === 'CF-UniquenessError')) throw err;
    print(`User ${username} already has role ${type} in ${label}.`);
  }
}

/** Takes a role away; one the user does not hold is no error (as cf). */
async function takeRole(s: Session, type: string, username: string, target: { organizationGuid: string } | { spaceGuid: string }, label: string): Promise<void> {
  const { roles, users } = await s.client.roles({ types: [type], ...('spaceGuid' in target ? { spaceGuid: target.spaceGuid } : { organizationGuid: target.organizationGuid }) });
  const user = users.find((u) => u.username === username);
  const role = user && roles.find((r) => r.relationships.user.data?.guid === user.guid);
  if (!role) return print(`User ${username} has no role ${type} in ${label}.`);
  await step(`Removing role ${type} from user ${username} in ${label}`, () => s.client.deleteRole(role.guid));
  print(`Removed role ${type} from user ${username} in ${label}.`);
}

/** Who holds which role, grouped by role as `cf org-users` prints it. */
async function printHolders(s: Session, target: { organizationGuid: string } | { spaceGuid: string }, types: string[], json: boolean, intro: string): Promise<void> {
  const { roles, users } = await s.client.roles({ types, ...('spaceGuid' in target ? { spaceGuid: target.spaceGuid } : { organizationGuid: target.organizationGuid }) });
  const nameOf = new Map(users.map((u) => [u.guid, u.username]));
  const byType = types.map((type) => ({ role: type, users: roles.filter((r) => r.type === type).map((r) => nameOf.get(r.relationships.user.data?.guid ?? '') ?? '?').sort() }));
  if (json) return printJson(byType);
  print(intro);
  for (const { role, users: names } of byType) print(['', heading(role), ...(names.length ? names.map((n) => `  ${n}`) : ['  No users found.'])]);
}

/** Gives (or takes) a role by the cf CLI's name, in an org or, when `spaceName` is given, a space of it. */
async function changeRole(give: boolean, username: string, orgName: string, spaceName: string | undefined, roleName: string): Promise<void> {
  const type = roleType(roleName, spaceName === undefined ? ORG_ROLES : SPACE_ROLES);
  const s = await openSession();
  const org = await orgNamed(s, orgName);
  const space = spaceName === undefined ? undefined : await spaceNamed(s, org, spaceName);
  const target = space ? { spaceGuid: space.guid } : { organizationGuid: org.guid };
  await (give ? giveRole : takeRole)(s, type, username, target, space ? `space ${org.name}/${space.name}` : `org ${org.name}`);
}

/** set-org-role, unset-org-role, set-space-role, unset-space-role. */
function roleCommands(y: Argv): Argv {
  const word = { type: 'string', demandOption: true } as const;
  for (const give of [true, false]) {
    const verb = give ? 'set' : 'unset';
    const what = give ? 'Give a user a role' : 'Take a role from a user';
    y = y
      .command(
        `${verb}-org-role <username> <org> <role>`,
        `${what} in an organization (${Object.keys(ORG_ROLES).join(', ')})`,
        (a) => a.positional('username', word).positional('org', word).positional('role', word),
        (args) => changeRole(give, args.username, args.org, undefined, args.role),
      )
      .command(
        `${verb}-space-role <username> <org> <space> <role>`,
        `${what} in a space (${Object.keys(SPACE_ROLES).join(', ')}); a space role needs a role in the org first`,
        (a) => a.positional('username', word).positional('org', word).positional('space', word).positional('role', word),
        (args) => changeRole(give, args.username, args.org, args.space, args.role),
      );
  }
  return y;
}

export const orgArg = { type: 'string', describe: 'Organization (default: the targeted one)' } as const;

export function orgCommands(y: Argv): Argv {
  return roleCommands(y)
    .command(
      'orgs',
      'List the organizations you can see',
      (a) => a.option('json', jsonOption),
      async (args) => {
        const s = await openSession();
        const orgs = await s.client.organizations();
        if (args.json) return printJson(orgs.map((o) => ({ name: o.name, guid: o.guid })));
        print(`Getting orgs as ${s.target.user ?? 'you'}...`);
        if (orgs.length === 0) return print('No orgs found.');
        print(['', ...table(['name'], orgs.map((o) => [o.name]))]);
      },
    )
    .command(
      'spaces',
      'List the spaces of the targeted organization',
      (a) => a.option('o', { alias: 'org', ...orgArg }).option('json', jsonOption),
      async (args) => {
        const s = await openSession();
        const org = await orgNamed(s, args.o);
        const spaces = await s.client.spaces(org.guid);
        if (args.json) return printJson(spaces.map((x) => ({ name: x.name, guid: x.guid })));
        print(`Getting spaces in org ${org.name} as ${s.target.user ?? 'you'}...`);
        if (spaces.length === 0) return print('No spaces found.');
        print(['', ...table(['name'], spaces.map((x) => [x.name]))]);
      },
    )
    .command(
      'create-org <name>',
      'Create an organization (admins only)',
      (a) => a.positional('name', { type: 'string', demandOption: true }),
      async (args) => {
        const s = await openSession();
        const org = await step(`Creating org ${args.name}`, () => s.client.createOrganization(args.name));
        print([`Created org ${org.name}.`, `To target it: ingot target -o ${org.name}`]);
      },
    )
    .command(
      'delete-org <name>',
      'Delete an organization (admins only; its spaces must be deleted first)',
      (a) => a.positional('name', { type: 'string', demandOption: true }).option('f', { alias: 'force', type: 'boolean', default: false, describe: 'Do not ask for confirmation' }),
      async (args) => {
        const s = await openSession();
        const [org] = await s.client.organizations([args.name]);
        if (!org) return print(`Org ${args.name} does not exist.`);
        if (!(await confirmed(args.f, `the org ${args.name}`))) return print('Delete cancelled.');
        await step(`Deleting org ${org.name}`, () => s.client.deleteOrganization(org.guid));
        if (s.target.organization?.guid === org.guid) await s.store.updateApi(({ organization: _o, space: _s, ...rest }) => rest);
        print(`Deleted org ${org.name}.`);
      },
    )
    .command(
      'create-space <name>',
      'Create a space (admins and the org’s managers)',
      (a) => a.positional('name', { type: 'string', demandOption: true }).option('o', { alias: 'org', ...orgArg }),
      async (args) => {
        const s = await openSession();
        const org = await orgNamed(s, args.o);
        const space = await step(`Creating space ${args.name} in org ${org.name}`, () => s.client.createSpace(args.name, org.guid));
        print([`Created space ${space.name} in org ${org.name}.`, `To target it: ingot target -o ${org.name} -s ${space.name}`]);
      },
    )
    .command(
      'delete-space <name>',
      'Delete a space (admins and the org’s managers; its apps and routes must be deleted first)',
      (a) =>
        a
          .positional('name', { type: 'string', demandOption: true })
          .option('o', { alias: 'org', ...orgArg })
          .option('f', { alias: 'force', type: 'boolean', default: false, describe: 'Do not ask for confirmation' }),
      async (args) => {
        const s = await openSession();
        const org = await orgNamed(s, args.o);
        const [space] = await s.client.spaces(org.guid, [args.name]);
        if (!space) return print(`Space ${args.name} does not exist in org ${org.name}.`);
        if (!(await confirmed(args.f, `the space ${args.name}`))) return print('Delete cancelled.');
        await step(`Deleting space ${space.name}`, () => s.client.deleteSpace(space.guid));
        if (s.target.space?.guid === space.guid) await s.store.updateApi(({ space: _s, ...rest }) => rest);
        print(`Deleted space ${space.name} in org ${org.name}.`);
      },
    )
    .command(
      'org-users <org>',
      'List who holds which role in an organization',
      (a) => a.positional('org', { type: 'string', demandOption: true }).option('json', jsonOption),
      async (args) => {
        const s = await openSession();
        const org = await orgNamed(s, args.org);
        await printHolders(s, { organizationGuid: org.guid }, Object.values(ORG_ROLES), args.json, `Getting users in org ${org.name} as ${s.target.user ?? 'you'}...`);
      },
    )
    .command(
      'space-users <org> <space>',
      'List who holds which role in a space',
      (a) => a.positional('org', { type: 'string', demandOption: true }).positional('space', { type: 'string', demandOption: true }).option('json', jsonOption),
      async (args) => {
        const s = await openSession();
        const org = await orgNamed(s, args.org);
        const space = await spaceNamed(s, org, args.space);
        await printHolders(s, { spaceGuid: space.guid }, Object.values(SPACE_ROLES), args.json, `Getting users in space ${org.name}/${space.name} as ${s.target.user ?? 'you'}...`);
      },
    );
}

// `ingot domains`, `create-shared-domain`, `delete-shared-domain`, `create-private-domain` and
// `delete-private-domain`: the domains routes are made in. A shared domain serves every org and
// only admins change it; a private one belongs to one org, whose managers change it and whose
// spaces alone route in it. The platform's own (system and apps domains) cannot be deleted.
import type { Argv } from 'yargs';
import type { Domain } from '../api-types.ts';
import { ClientUsageError, step } from '../errors.ts';
import { domainProblem } from '../names.ts';
import { openSession } from '../session.ts';
import { table } from '../table.ts';
import { forceOption, jsonOption, nameArg, print, printJson } from './common.ts';
import { orgNamed } from './orgs.ts';
import { confirmDelete } from './prompt.ts';

/** cf's availability column: a domain tied to an org is private to it, any other is shared. */
export function availability(d: Domain): 'private' | 'shared' {
  return d.relationships?.organization.data ? 'private' : 'shared';
}

const domainArg = { type: 'string', demandOption: true, describe: 'A DNS name, e.g. example.com' } as const;

export function domainCommands(y: Argv): Argv {
  return y
    .command(
      'domains',
      'List the domains the targeted organization can make routes in',
      (a) => a.option('json', jsonOption),
      async (args) => {
        const s = await openSession();
        const org = s.target.organization;
        if (!org) throw new ClientUsageError('no organization is targeted; run ingot target -o ORG');
        // The controller lists the private domains of every org the user is in (every org for an
        // admin); the targeted org routes only in its own and the shared ones.
        const domains = (await s.client.domains()).filter((d) => availability(d) === 'shared' || d.relationships?.organization.data?.guid === org.guid);
        const rows = domains.map((d) => ({ name: d.name, guid: d.guid, availability: availability(d), internal: d.internal ?? false })).sort((a, b) => a.name.localeCompare(b.name));
        if (args.json) return printJson(rows);
        print(`Getting domains in org ${org.name} as ${s.target.user ?? 'you'}...`);
        if (rows.length === 0) return print('No domains found.');
        print(['', ...table(['name', 'availability', 'internal'], rows.map((r) => [r.name, r.availability, r.internal ? 'true' : '']))]);
      },
    )
    .command(
      'create-shared-domain <domain>',
      'Create a domain every organization can make routes in (admins only)',
      // No --internal: the controller stores the flag but its routers do not honour it yet.
      (a) => a.positional('domain', domainArg),
      async (args) => {
        const name = nameArg('domain', args.domain.toLowerCase(), domainProblem);
        const s = await openSession();
        const domain = await step(`Creating shared domain ${name}`, () => s.client.createDomain(name));
        print(`Created shared domain ${domain.name}.`);
      },
    )
    .command(
      'delete-shared-domain <domain>',
      'Delete a shared domain (admins only; its routes must be deleted first)',
      (a) => a.positional('domain', domainArg).option('f', forceOption),
      async (args) => {
        await deleteDomain(args.f, nameArg('domain', args.domain.toLowerCase(), domainProblem), 'shared');
      },
    )
    .command(
      'create-private-domain <org> <domain>',
      'Create a domain only the organization can make routes in (admins and the org’s managers)',
      (a) => a.positional('org', { type: 'string', demandOption: true, describe: 'The organization that owns it' }).positional('domain', domainArg),
      async (args) => {
        const name = nameArg('domain', args.domain.toLowerCase(), domainProblem);
        const s = await openSession();
        const org = await orgNamed(s, args.org);
        const domain = await step(`Creating private domain ${name} for org ${org.name}`, () => s.client.createDomain(name, org.guid));
        print(`Created private domain ${domain.name} for org ${org.name}.`);
      },
    )
    .command(
      'delete-private-domain <domain>',
      'Delete a private domain (admins and its org’s managers; its routes must be deleted first)',
      (a) => a.positional('domain', domainArg).option('f', forceOption),
      async (args) => {
        await deleteDomain(args.f, nameArg('domain', args.domain.toLowerCase(), domainProblem), 'private');
      },
    );
}

/** delete-shared-domain and delete-private-domain: each deletes only its kind, as cf. */
async function deleteDomain(force: boolean, name: string, kind: 'private' | 'shared'): Promise<void> {
  const s = await openSession();
  const [domain] = await s.client.domains([name]);
  if (!domain) return print(`Domain ${name} does not exist.`);
  if (availability(domain) !== kind) throw new ClientUsageError(`domain ${name} is a ${availability(domain)} domain; delete it with ingot delete-${availability(domain)}-domain`);
  if (!(await confirmDelete(force, `the domain ${name}`))) return print('Delete cancelled.');
  await step(`Deleting domain ${name}`, () => s.client.deleteDomain(domain.guid));
  print(`Deleted domain ${name}.`);
}

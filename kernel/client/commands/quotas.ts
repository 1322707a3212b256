// `ingot create-quota`, `quotas`, `set-quota`, `create-space-quota`, `space-quotas` and
// `set-space-quota`: limits on total memory, app instances, routes and service instances, for
// an org (admins) or for spaces of an org (its managers). A limit not given is unlimited; the
// controller refuses a start, scale or route past a quota, naming it.
import type { Argv } from 'yargs';
import type { OrganizationQuota, QuotaLimits, SpaceQuota } from '../api-types.ts';
import { ClientError, step } from '../errors.ts';
import { openSession, type Session } from '../session.ts';
import { formatMb } from '../size.ts';
import { table } from '../table.ts';
import { countFlag, jsonOption, print, printJson, sizeFlag } from './common.ts';
import { orgArg, orgNamed, spaceNamed } from './orgs.ts';

const MAX_COUNT = 1_000_000;

interface LimitArgs {
  m?: string;
  i?: number;
  r?: number;
  s?: number;
}

function limitOptions<T>(a: Argv<T>) {
  return a
    .option('m', { alias: 'memory', type: 'string', describe: 'Total memory of started apps (e.g. 1G, 512M); unlimited if not given' })
    .option('i', { alias: 'instance-limit', type: 'number', describe: 'Total app instances; unlimited if not given' })
    .option('r', { alias: 'route-limit', type: 'number', describe: 'Total routes; unlimited if not given' })
    .option('s', { alias: 'service-instance-limit', type: 'number', describe: 'Total service instances (enforced once services exist)' });
}

/** The flags as limits, each checked and named when wrong. */
function limitsOf(a: LimitArgs): QuotaLimits {
  const out: QuotaLimits = {};
  const mem = sizeFlag(a.m, '-m');
  if (mem !== undefined) out.total_memory_in_mb = mem;
  for (const [flag, key, value] of [['-i', 'total_instances', a.i], ['-r', 'total_routes', a.r], ['-s', 'total_service_instances', a.s]] as const) {
    const n = countFlag(value, flag, MAX_COUNT);
    if (n !== undefined) out[key] = n;
  }
  return out;
}

const shown = (n: number | null | undefined, render: (n: number) => string = String) => (n === null || n === undefined ? 'unlimited' : render(n));

function quotaRows(quotas: Array<OrganizationQuota | SpaceQuota>): string[] {
  return table(
    ['name', 'total memory', 'instances', 'routes', 'service instances'],
    quotas.map((q) => [q.name, shown(q.apps.total_memory_in_mb, formatMb), shown(q.apps.total_instances), shown(q.routes.total_routes), shown(q.services.total_service_instances)]),
  );
}

const quotaJson = (q: OrganizationQuota | SpaceQuota) => ({
  name: q.name,
  guid: q.guid,
  total_memory_in_mb: q.apps.total_memory_in_mb ?? null,
  total_instances: q.apps.total_instances ?? null,
  total_routes: q.routes.total_routes ?? null,
  total_service_instances: q.services.total_service_instances ?? null,
});

async function orgQuotaNamed(s: Session, name: string): Promise<OrganizationQuota> {
  const [q] = await s.client.organizationQuotas([name]);
  if (!q) throw new ClientError('not_found', `quota ${name} not found`);
  return q;
}

export function quotaCommands(y: Argv): Argv {
  const word = { type: 'string', demandOption: true } as const;
  return y
    .command(
      'create-quota <name>',
      'Create an organization quota (admins only)',
      (a) => limitOptions(a.positional('name', word)),
      async (args) => {
        const limits = limitsOf(args);
        const s = await openSession();
        await step(`Creating quota ${args.name}`, () => s.client.createOrganizationQuota(args.name, limits));
        print([`Created quota ${args.name}.`, `To apply it: ingot set-quota ORG ${args.name}`]);
      },
    )
    .command(
      'quotas',
      'List the organization quotas you can see',
      (a) => a.option('json', jsonOption),
      async (args) => {
        const s = await openSession();
        const quotas = await s.client.organizationQuotas();
        if (args.json) return printJson(quotas.map(quotaJson));
        print(`Getting quotas as ${s.target.user ?? 'you'}...`);
        if (quotas.length === 0) return print('No quotas found.');
        print(['', ...quotaRows(quotas)]);
      },
    )
    .command(
      'set-quota <org> <quota>',
      'Apply an organization quota to an organization (admins only)',
      (a) => a.positional('org', word).positional('quota', word),
      async (args) => {
        const s = await openSession();
        const org = await orgNamed(s, args.org);
        const quota = await orgQuotaNamed(s, args.quota);
        await step(`Setting quota ${quota.name} to org ${org.name}`, () => s.client.applyOrganizationQuota(quota.guid, org.guid));
        print(`Set quota ${quota.name} to org ${org.name}.`);
      },
    )
    .command(
      'create-space-quota <name>',
      'Create a space quota in an organization (admins and the org’s managers)',
      (a) => limitOptions(a.positional('name', word).option('o', { alias: 'org', ...orgArg })),
      async (args) => {
        const limits = limitsOf(args);
        const s = await openSession();
        const org = await orgNamed(s, args.o);
        await step(`Creating space quota ${args.name} in org ${org.name}`, () => s.client.createSpaceQuota(args.name, org.guid, limits));
        print([`Created space quota ${args.name} in org ${org.name}.`, `To apply it: ingot set-space-quota SPACE ${args.name} -o ${org.name}`]);
      },
    )
    .command(
      'space-quotas',
      'List the space quotas of an organization',
      (a) => a.option('o', { alias: 'org', ...orgArg }).option('json', jsonOption),
      async (args) => {
        const s = await openSession();
        const org = await orgNamed(s, args.o);
        const quotas = await s.client.spaceQuotas(org.guid);
        if (args.json) return printJson(quotas.map(quotaJson));
        print(`Getting space quotas in org ${org.name} as ${s.target.user ?? 'you'}...`);
        if (quotas.length === 0) return print('No space quotas found.');
        print(['', ...quotaRows(quotas)]);
      },
    )
    .command(
      'set-space-quota <space> <quota>',
      'Apply a space quota to a space of its organization (admins and the org’s managers)',
      (a) => a.positional('space', word).positional('quota', word).option('o', { alias: 'org', ...orgArg }),
      async (args) => {
        const s = await openSession();
        const org = await orgNamed(s, args.o);
        const space = await spaceNamed(s, org, args.space);
        const [quota] = await s.client.spaceQuotas(org.guid, [args.quota]);
        if (!quota) throw new ClientError('not_found', `space quota ${args.quota} not found in org ${org.name}`);
        await step(`Setting space quota ${quota.name} to space ${space.name}`, () => s.client.applySpaceQuota(quota.guid, space.guid));
        print(`Set space quota ${quota.name} to space ${org.name}/${space.name}.`);
      },
    );
}

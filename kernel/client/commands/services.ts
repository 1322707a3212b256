// `ingot marketplace`, `create-service`, `update-service`, `services`, `service`, `bind-service`,
// `unbind-service`, `delete-service`, `create-service-key`, `service-keys`, `service-key`,
// `delete-service-key`, `create-user-provided-service`, `create-service-broker` and
// `service-brokers`: the marketplace and the service instances of the targeted space, as the
// cf CLI has them. A binding reaches an app at its next start, so bind-service says to restart.
import { existsSync, readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import type { ServiceBinding, ServiceInstance, ServiceOffering, ServicePlan } from '../api-types.ts';
import { ApiRequestError, ClientError, ClientUsageError, step } from '../errors.ts';
import { findApp, openSession, openSpaceSession, spaceLabel, type SpaceSession } from '../session.ts';
import { bindingSettled, waitForOperation } from '../service-waits.ts';
import { keyValues, table } from '../table.ts';
import { jsonOption, print, printJson } from './common.ts';
import { ask, canPrompt } from './prompt.ts';

const word = { type: 'string', demandOption: true } as const;

/** `-c '{"a":1}'` or `-c params.json`: a JSON object, or a one-line error naming the flag. */
export function jsonObjectFlag(value: string | undefined, flag: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  const text = value.trim().startsWith('{') ? value : existsSync(value) ? readFileSync(value, 'utf8') : undefined;
  if (text === undefined) throw new ClientUsageError(`${flag} ${value}: expected a JSON object or the path of a file holding one`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ClientUsageError(`${flag}: invalid JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ClientUsageError(`${flag}: expected a JSON object`);
  return parsed as Record<string, unknown>;
}

const tagsOf = (value: string | undefined): string[] | undefined =>
  value === undefined
    ? undefined
    : value
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean);

/** The instance of that name in the targeted space, or a one-line error. */
export async function findServiceInstance(s: SpaceSession, name: string): Promise<ServiceInstance> {
  const [found] = await s.client.serviceInstances(s.space.guid, [name]);
  if (!found) throw new ClientError('not_found', `service instance ${name} not found in space ${spaceLabel(s)}`);
  return found;
}

async function findKey(s: SpaceSession, instance: ServiceInstance, key: string): Promise<ServiceBinding | undefined> {
  const [found] = await s.client.serviceBindings({ instanceGuids: [instance.guid], type: 'key', names: [key] });
  return found;
}

/** The offering of that name (and broker, when several brokers offer one of that name). */
async function offeringNamed(s: SpaceSession, name: string, broker: string | undefined): Promise<ServiceOffering> {
  const offerings = await s.client.serviceOfferings({ names: [name], ...(broker ? { brokerNames: [broker] } : {}) });
  if (offerings.length === 0) throw new ClientError('not_found', `service offering ${name} not found${broker ? ` at broker ${broker}` : ''}; see ingot marketplace`);
  if (offerings.length > 1) {
    throw new ClientUsageError(`service offering ${name} is offered by several brokers (${offerings.map((o) => o.service_broker_name ?? o.guid).join(', ')}); choose one with -b BROKER`);
  }
  return offerings[0]!;
}

/** The plan of that name in the instance's own offering, or a one-line error naming the offering. */
async function newPlan(s: SpaceSession, instance: ServiceInstance, name: string): Promise<ServicePlan> {
  const currentGuid = instance.relationships.service_plan?.data?.guid;
  const [current] = currentGuid ? await s.client.servicePlans({ guids: [currentGuid] }) : [];
  const offeringGuid = current?.relationships.service_offering.data?.guid;
  if (!offeringGuid) throw new ClientError('not_found', `service instance ${instance.name}: its plan is no longer offered`);
  const [plan] = await s.client.servicePlans({ offeringGuids: [offeringGuid], names: [name] });
  if (plan) return plan;
  const offering = (await s.client.serviceOfferings()).find((o) => o.guid === offeringGuid);
  throw new ClientError('not_found', `plan ${name} not found for service offering ${offering?.name ?? offeringGuid}; see ingot marketplace -e ${offering?.name ?? ''}`.trimEnd());
}

async function confirmDelete(force: boolean, what: string): Promise<boolean> {
  if (force) return true;
  if (!canPrompt()) throw new ClientUsageError(`give -f to delete ${what} without a terminal to confirm on`);
  return /^y(es)?$/i.test((await ask(`Really delete ${what}? [yN]: `)).trim());
}

const operationText = (i: ServiceInstance) => `${i.last_operation.type} ${i.last_operation.state}`;

/** Waits for the instance's operation; one that did not succeed is a one-line error saying what was being done. */
async function succeeded(s: SpaceSession, instance: ServiceInstance, doing: string): Promise<ServiceInstance> {
  const done = await waitForOperation(s, instance);
  if (done.last_operation.state === 'succeeded') return done;
  throw new ClientError('api_error', `${doing}: ${operationText(done)}${done.last_operation.description ? `: ${done.last_operation.description}` : ''}`);
}

export function serviceCommands(y: Argv): Argv {
  return y
    .command(
      'marketplace',
      'List the service offerings and their plans',
      (a) => a.option('e', { alias: 'service', type: 'string', describe: 'Show the plans of this offering' }).option('b', { alias: 'broker', type: 'string', describe: 'Only this broker' }).option('json', jsonOption),
      async (args) => {
        const s = await openSession();
        const offerings = await s.client.serviceOfferings({ ...(args.e ? { names: [args.e] } : {}), ...(args.b ? { brokerNames: [args.b] } : {}) });
        if (args.e && offerings.length === 0) throw new ClientError('not_found', `service offering ${args.e} not found`);
        const plans = offerings.length ? await s.client.servicePlans({ offeringGuids: offerings.map((o) => o.guid) }) : [];
        const plansOf = (o: ServiceOffering): ServicePlan[] => plans.filter((p) => p.relationships.service_offering.data?.guid === o.guid);
        if (args.json) return printJson(offerings.map((o) => ({ name: o.name, description: o.description, broker: o.service_broker_name ?? null, tags: o.tags, plans: plansOf(o).map((p) => ({ name: p.name, description: p.description, free: p.free })) })));
        print(`Getting service offerings as ${s.target.user ?? 'you'}...`);
        if (offerings.length === 0) return print('No service offerings found.');
        if (args.e) {
          for (const o of offerings) print(['', `${o.name} (broker ${o.service_broker_name ?? '?'}): ${o.description}`, '', ...table(['plan', 'description', 'free or paid'], plansOf(o).map((p) => [p.name, p.description, p.free ? 'free' : 'paid']))]);
          return;
        }
        print(['', ...table(['offering', 'plans', 'description', 'broker'], offerings.map((o) => [o.name, plansOf(o).map((p) => p.name).join(', '), o.description, o.service_broker_name ?? '']))]);
      },
    )
    .command(
      'create-service <service> <plan> <name>',
      'Create a service instance of an offering’s plan',
      (a) =>
        a
          .positional('service', word)
          .positional('plan', word)
          .positional('name', word)
          .option('c', { type: 'string', describe: 'Parameters for the broker: JSON or a file holding JSON' })
          .option('t', { type: 'string', describe: 'Tags, comma-separated' })
          .option('b', { alias: 'broker', type: 'string', describe: 'The broker, when several offer the service' }),
      async (args) => {
        const parameters = jsonObjectFlag(args.c, '-c');
        const s = await openSpaceSession();
        const offering = await offeringNamed(s, args.service, args.b);
        const [plan] = await s.client.servicePlans({ offeringGuids: [offering.guid], names: [args.plan] });
        if (!plan) throw new ClientError('not_found', `plan ${args.plan} not found for service offering ${offering.name}; see ingot marketplace -e ${offering.name}`);
        print(`Creating service instance ${args.name} in space ${spaceLabel(s)} as ${s.target.user ?? 'you'}...`);
        const tags = tagsOf(args.t);
        const created = await step(`Creating service instance ${args.name}`, () =>
          s.client.createServiceInstance({ type: 'managed', name: args.name, spaceGuid: s.space.guid, planGuid: plan.guid, ...(parameters ? { parameters } : {}), ...(tags ? { tags } : {}) }),
        );
        await succeeded(s, created, `Creating service instance ${args.name}`);
        print(['', `Service instance ${args.name} created.`]);
      },
    )
    .command(
      'update-service <name>',
      'Change a service instance’s plan, parameters or tags',
      (a) =>
        a
          .positional('name', word)
          .option('p', { type: 'string', describe: 'The new plan (of the same offering)' })
          .option('c', { type: 'string', describe: 'Parameters for the broker: JSON or a file holding JSON' })
          .option('t', { type: 'string', describe: 'Tags, comma-separated (replacing the present ones)' }),
      async (args) => {
        const parameters = jsonObjectFlag(args.c, '-c');
        const tags = tagsOf(args.t);
        if (!args.p && !parameters && !tags) throw new ClientUsageError('nothing to update: give -p PLAN, -c PARAMETERS or -t TAGS');
        const s = await openSpaceSession();
        const instance = await findServiceInstance(s, args.name);
        if (instance.type !== 'managed' && (args.p || parameters)) throw new ClientUsageError(`service instance ${args.name} is user-provided: it has no plan or parameters`);
        const planGuid = args.p ? (await newPlan(s, instance, args.p)).guid : undefined;
        print(`Updating service instance ${args.name} in space ${spaceLabel(s)} as ${s.target.user ?? 'you'}...`);
        const updated = await step(`Updating service instance ${args.name}`, () =>
          s.client.updateServiceInstance(instance.guid, { ...(planGuid ? { planGuid } : {}), ...(parameters ? { parameters } : {}), ...(tags ? { tags } : {}) }),
        );
        await succeeded(s, updated, `Updating service instance ${args.name}`);
        print(['', `Service instance ${args.name} updated${args.p ? ` to plan ${args.p}` : ''}.`]);
      },
    )
    .command(
      'services',
      'List the service instances of the targeted space',
      (a) => a.option('json', jsonOption),
      async (args) => {
        const s = await openSpaceSession();
        const instances = await s.client.serviceInstances(s.space.guid);
        const [bindings, apps, plans, offerings] = await Promise.all([
          instances.length ? s.client.serviceBindings({ instanceGuids: instances.map((i) => i.guid), type: 'app' }) : [],
          s.client.apps(s.space.guid),
          s.client.servicePlans({ guids: instances.flatMap((i) => (i.relationships.service_plan?.data ? [i.relationships.service_plan.data.guid] : [])) }),
          s.client.serviceOfferings(),
        ]);
        const appName = new Map(apps.map((a) => [a.guid, a.name]));
        const row = (i: ServiceInstance) => {
          const plan = plans.find((p) => p.guid === i.relationships.service_plan?.data?.guid);
          const offering = plan && offerings.find((o) => o.guid === plan.relationships.service_offering.data?.guid);
          const bound = bindings.filter((b) => b.relationships.service_instance.data?.guid === i.guid).map((b) => appName.get(b.relationships.app?.data?.guid ?? '') ?? '?');
          return { name: i.name, service: i.type === 'user-provided' ? 'user-provided' : (offering?.name ?? '?'), plan: plan?.name ?? '', bound_apps: bound, last_operation: operationText(i) };
        };
        const rows = instances.map(row);
        if (args.json) return printJson(rows);
        print(`Getting service instances in space ${spaceLabel(s)} as ${s.target.user ?? 'you'}...`);
        if (rows.length === 0) return print('No service instances found.');
        print(['', ...table(['name', 'offering', 'plan', 'bound apps', 'last operation'], rows.map((r) => [r.name, r.service, r.plan, r.bound_apps.join(', '), r.last_operation]))]);
      },
    )
    .command(
      'service <name>',
      'Show a service instance',
      (a) => a.positional('name', word).option('json', jsonOption),
      async (args) => {
        const s = await openSpaceSession();
        const instance = await findServiceInstance(s, args.name);
        const planGuid = instance.relationships.service_plan?.data?.guid;
        const [plan] = planGuid ? await s.client.servicePlans({ guids: [planGuid] }) : [];
        const offering = plan ? (await s.client.serviceOfferings()).find((o) => o.guid === plan.relationships.service_offering.data?.guid) : undefined;
        const bindings = await s.client.serviceBindings({ instanceGuids: [instance.guid] });
        const apps = new Map((await s.client.apps(s.space.guid)).map((a) => [a.guid, a.name]));
        const boundApps = bindings.filter((b) => b.type === 'app').map((b) => apps.get(b.relationships.app?.data?.guid ?? '') ?? '?');
        const keys = bindings.filter((b) => b.type === 'key').map((b) => b.name ?? '');
        const info = {
          name: instance.name,
          guid: instance.guid,
          type: instance.type,
          offering: offering?.name ?? (instance.type === 'user-provided' ? 'user-provided' : null),
          broker: offering?.service_broker_name ?? null,
          plan: plan?.name ?? null,
          tags: instance.tags,
          dashboard_url: instance.dashboard_url ?? null,
          last_operation: instance.last_operation,
          bound_apps: boundApps,
          service_keys: keys,
        };
        if (args.json) return printJson(info);
        print(
          keyValues([
            ['name', info.name],
            ['guid', info.guid],
            ['type', info.type],
            ['offering', info.offering ?? ''],
            ['broker', info.broker ?? ''],
            ['plan', info.plan ?? ''],
            ['tags', info.tags.join(', ')],
            ['dashboard url', info.dashboard_url ?? ''],
            ['last operation', `${operationText(instance)}${instance.last_operation.description ? ` (${instance.last_operation.description})` : ''}`],
            ['bound apps', boundApps.join(', ') || '(none)'],
            ['service keys', keys.join(', ') || '(none)'],
          ]),
        );
      },
    )
    .command(
      'bind-service <app> <name>',
      'Bind a service instance to an app (it sees the credentials at its next start)',
      (a) => a.positional('app', word).positional('name', word).option('c', { type: 'string', describe: 'Binding parameters for the broker: JSON or a file holding JSON' }),
      async (args) => {
        const parameters = jsonObjectFlag(args.c, '-c');
        const s = await openSpaceSession();
        const app = await findApp(s, args.app);
        const instance = await findServiceInstance(s, args.name);
        print(`Binding service instance ${instance.name} to app ${app.name} in space ${spaceLabel(s)} as ${s.target.user ?? 'you'}...`);
        const doing = `Binding service instance ${instance.name} to app ${app.name}`;
        let binding: ServiceBinding;
        try {
          binding = await s.client.createServiceBinding({ type: 'app', instanceGuid: instance.guid, appGuid: app.guid, ...(parameters ? { parameters } : {}) });
        } catch (err) {
          if (err instanceof ApiRequestError && err.title === 'CF-UniquenessError') return print(`App ${app.name} is already bound to service instance ${instance.name}.`);
          throw new ClientError(err instanceof ClientError ? err.code : 'api_error', `${doing}: ${(err as Error).message}`, { cause: err });
        }
        await bindingSettled(s, binding, doing);
        print(['OK', '', `TIP: Use 'ingot restart ${app.name}' to ensure your app sees the service instance.`]);
      },
    )
    .command(
      'unbind-service <app> <name>',
      'Unbind a service instance from an app (its credentials are revoked)',
      (a) => a.positional('app', word).positional('name', word),
      async (args) => {
        const s = await openSpaceSession();
        const app = await findApp(s, args.app);
        const instance = await findServiceInstance(s, args.name);
        const [binding] = await s.client.serviceBindings({ instanceGuids: [instance.guid], appGuids: [app.guid], type: 'app' });
        if (!binding) return print(`Binding between ${instance.name} and ${app.name} did not exist.`);
        const doing = `Unbinding service instance ${instance.name} from app ${app.name}`;
        await bindingSettled(s, await step(doing, () => s.client.deleteServiceBinding(binding.guid)), doing);
        print(`Unbound service instance ${instance.name} from app ${app.name}.`);
      },
    )
    .command(
      'delete-service <name>',
      'Delete a service instance (deprovisioned at its broker)',
      (a) => a.positional('name', word).option('f', { alias: 'force', type: 'boolean', default: false, describe: 'Do not ask for confirmation' }),
      async (args) => {
        const s = await openSpaceSession();
        const [instance] = await s.client.serviceInstances(s.space.guid, [args.name]);
        if (!instance) return print(`Service instance ${args.name} does not exist.`);
        if (!(await confirmDelete(args.f, `the service instance ${args.name}`))) return print('Delete cancelled.');
        await step(`Deleting service instance ${args.name}`, () => s.client.deleteServiceInstance(instance.guid));
        print(`Deleted service instance ${args.name}.`);
      },
    )
    .command(
      'create-service-key <name> <key>',
      'Create a service key: credentials of their own for use outside an app',
      (a) => a.positional('name', word).positional('key', word).option('c', { type: 'string', describe: 'Parameters for the broker: JSON or a file holding JSON' }),
      async (args) => {
        const parameters = jsonObjectFlag(args.c, '-c');
        const s = await openSpaceSession();
        const instance = await findServiceInstance(s, args.name);
        const doing = `Creating service key ${args.key} for service instance ${instance.name}`;
        const key = await step(doing, () => s.client.createServiceBinding({ type: 'key', instanceGuid: instance.guid, name: args.key, ...(parameters ? { parameters } : {}) }));
        await bindingSettled(s, key, doing);
        print(`Created service key ${args.key} for service instance ${instance.name}.`);
      },
    )
    .command(
      'service-keys <name>',
      'List the service keys of a service instance',
      (a) => a.positional('name', word).option('json', jsonOption),
      async (args) => {
        const s = await openSpaceSession();
        const instance = await findServiceInstance(s, args.name);
        const keys = await s.client.serviceBindings({ instanceGuids: [instance.guid], type: 'key' });
        if (args.json) return printJson(keys.map((k) => ({ name: k.name, guid: k.guid })));
        print(`Getting keys for service instance ${instance.name} as ${s.target.user ?? 'you'}...`);
        if (keys.length === 0) return print('No service keys found.');
        print(['', ...table(['name', 'last operation'], keys.map((k) => [k.name ?? '', k.last_operation ? `${k.last_operation.type} ${k.last_operation.state}` : '']))]);
      },
    )
    .command(
      'service-key <name> <key>',
      'Show a service key’s credentials',
      (a) => a.positional('name', word).positional('key', word).option('json', jsonOption),
      async (args) => {
        const s = await openSpaceSession();
        const instance = await findServiceInstance(s, args.name);
        const key = await findKey(s, instance, args.key);
        if (!key) throw new ClientError('not_found', `service key ${args.key} not found for service instance ${instance.name}`);
        const credentials = await s.client.serviceBindingCredentials(key.guid);
        if (args.json) return printJson(credentials);
        print([`Getting key ${args.key} for service instance ${instance.name} as ${s.target.user ?? 'you'}...`, '', JSON.stringify(credentials, null, 2)]);
      },
    )
    .command(
      'delete-service-key <name> <key>',
      'Delete a service key (its credentials are revoked)',
      (a) => a.positional('name', word).positional('key', word).option('f', { alias: 'force', type: 'boolean', default: false, describe: 'Do not ask for confirmation' }),
      async (args) => {
        const s = await openSpaceSession();
        const instance = await findServiceInstance(s, args.name);
        const key = await findKey(s, instance, args.key);
        if (!key) return print(`Service key ${args.key} does not exist for service instance ${instance.name}.`);
        if (!(await confirmDelete(args.f, `the service key ${args.key}`))) return print('Delete cancelled.');
        const doing = `Deleting service key ${args.key}`;
        await bindingSettled(s, await step(doing, () => s.client.deleteServiceBinding(key.guid)), doing);
        print(`Deleted service key ${args.key} of service instance ${instance.name}.`);
      },
    )
    .command(
      'create-user-provided-service <name>',
      'Make a service instance of credentials you give (an external database, say)',
      (a) =>
        a
          .positional('name', word)
          .option('p', { type: 'string', describe: 'Credentials: JSON or a file holding JSON' })
          .option('l', { type: 'string', describe: 'A syslog drain URL' })
          .option('t', { type: 'string', describe: 'Tags, comma-separated' }),
      async (args) => {
        const credentials = jsonObjectFlag(args.p, '-p');
        const s = await openSpaceSession();
        const tags = tagsOf(args.t);
        await step(`Creating user-provided service instance ${args.name}`, () =>
          s.client.createServiceInstance({ type: 'user-provided', name: args.name, spaceGuid: s.space.guid, ...(credentials ? { credentials } : {}), ...(args.l ? { syslogDrainUrl: args.l } : {}), ...(tags ? { tags } : {}) }),
        );
        print(`Created user-provided service instance ${args.name} in space ${spaceLabel(s)}.`);
      },
    )
    .command(
      'create-service-broker <name> <username> <password> <url>',
      'Register an Open Service Broker by URL (admins only)',
      (a) => a.positional('name', word).positional('username', word).positional('password', word).positional('url', word),
      async (args) => {
        const s = await openSession();
        const broker = await step(`Creating service broker ${args.name}`, () => s.client.createServiceBroker({ name: args.name, url: args.url, username: args.username, password: args.password }));
        const offerings = await s.client.serviceOfferings({ brokerNames: [broker.name] });
        print(`Created service broker ${broker.name} at ${broker.url}, offering ${offerings.map((o) => o.name).join(', ') || 'nothing'}.`);
      },
    )
    .command(
      'service-brokers',
      'List the service brokers (admins only)',
      (a) => a.option('json', jsonOption),
      async (args) => {
        const s = await openSession();
        const brokers = await s.client.serviceBrokers();
        if (args.json) return printJson(brokers.map((b) => ({ name: b.name, url: b.url, source: b.source ?? null })));
        print(`Getting service brokers as ${s.target.user ?? 'you'}...`);
        if (brokers.length === 0) return print('No service brokers found.');
        print(['', ...table(['name', 'url', 'registered by'], brokers.map((b) => [b.name, b.url, b.source === 'announce' ? 'gateway announce' : 'admin']))]);
      },
    );
}

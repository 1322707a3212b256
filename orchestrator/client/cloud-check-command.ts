// The operator's repairs and the health monitor's word (BOSH's commands): `ingot -d DEP
// cloud-check` (`cck`: the cck_scan task followed, the problems listed, then a resolution for
// each — asked on the terminal, `--auto` the default of each, `--resolution R` R wherever it is
// offered — applied by the cck_apply task; `--report` only lists, and fails when there is
// something to list), `ingot -d DEP recreate [GROUP[/INDEX]]`, `ingot update-resurrection
// on|off` and `ingot -d DEP events` (`events` is an app verb too: cli/verbs.ts). Choosing and
// rendering are pure.
import type { Argv } from 'yargs';
import { jsonOption, print, printJson } from '../../kernel/client/commands/common.ts';
import { ask, canPrompt } from '../../kernel/client/commands/prompt.ts';
import { ClientUsageError, step } from '../../kernel/client/errors.ts';
import { table } from '../../kernel/client/table.ts';
import { confirm, followAndReport } from './director-commands.ts';
import { deploymentArg } from './director-args.ts';
import { openDirector } from './director-session.ts';
import type { DirectorEvent, Problem } from './director-types.ts';
import { parseInstanceTarget } from './instance-ops-commands.ts';
import { formatDate } from './task-output.ts';

/** `cloud-check --report` found something: one line, exit 1. */
export class ProblemsFoundError extends Error {
  override name = 'ProblemsFoundError';
  readonly code = 'problems_found';
}

/** Every resolution the director knows (BOSH's names). */
export const RESOLUTION_NAMES = ['recreate_vm', 'reboot_vm', 'delete_vm_reference', 'delete_disk_reference', 'reattach_disk', 'reattach_disk_and_reboot', 'ignore'] as const;

/** The resolution of each problem for `--auto` (its first, the default) or `--resolution R` (R where offered, else ignore). Pure. */
export function chooseResolutions(problems: Problem[], choice: { auto: true } | { resolution: string }): Record<string, string> {
  if ('resolution' in choice && !(RESOLUTION_NAMES as readonly string[]).includes(choice.resolution)) {
    throw new ClientUsageError(`--resolution ${choice.resolution}: expected one of ${RESOLUTION_NAMES.join(', ')}`);
  }
  const out: Record<string, string> = {};
  for (const p of problems) {
    const offered = p.resolutions.map((r) => r.name);
    if ('auto' in choice) out[String(p.id)] = offered[0] ?? 'ignore';
    else out[String(p.id)] = offered.includes(choice.resolution) ? choice.resolution : 'ignore';
  }
  return out;
}

export function renderProblems(problems: Problem[]): string[] {
  return table(['#', 'Type', 'Description'], problems.map((p) => [String(p.id), p.type, p.description]));
}

export function renderEvents(events: DirectorEvent[], o: { timeZone?: string } = {}): string[] {
  const when = (iso: string) => (Number.isNaN(Date.parse(iso)) ? iso : formatDate(Math.floor(Date.parse(iso) / 1000), o.timeZone ? { timeZone: o.timeZone } : {}));
  const context = (e: DirectorEvent) => {
    const c = e.context as { severity?: unknown; summary?: unknown };
    return [c.severity !== undefined ? `severity ${String(c.severity)}` : '', typeof c.summary === 'string' ? c.summary : ''].filter(Boolean).join(': ');
  };
  return table(
    ['ID', 'Time', 'User', 'Action', 'Object Type', 'Object Name', 'Task ID', 'Deployment', 'Instance', 'Context'],
    events.map((e) => [String(e.id), when(e.timestamp), e.user, e.action, e.object_type, e.object_name ?? '', e.task_id === null ? '' : String(e.task_id), e.deployment ?? '', e.instance ?? '', context(e)]),
  );
}

const deploymentOption = { alias: 'deployment', type: 'string', demandOption: true, describe: 'The deployment' } as const;

/** Asks for each problem's resolution on the terminal (the default is the first offered). */
async function askResolutions(problems: Problem[]): Promise<Record<string, string>> {
  if (!canPrompt()) throw new ClientUsageError('there is no terminal to ask on; give --auto, --resolution TYPE or --report');
  const out: Record<string, string> = {};
  for (const p of problems) {
    const lines = [`Problem ${p.id}: ${p.description}`, ...p.resolutions.map((r, i) => `  ${i + 1}. ${r.plan}`)];
    process.stderr.write(`${lines.join('\n')}\n`);
    for (;;) {
      const answer = (await ask(`Choose a resolution [1 - ${p.resolutions.length}] (1): `)).trim();
      const n = answer === '' ? 1 : Number(answer);
      if (Number.isInteger(n) && n >= 1 && n <= p.resolutions.length) {
        out[String(p.id)] = p.resolutions[n - 1]!.name;
        break;
      }
    }
  }
  return out;
}

export function registerCloudCheckCommands(y: Argv): Argv {
  return y
    .command(
      ['cloud-check', 'cck'],
      "Scan a deployment for missing VMs, unresponsive agents, missing disks and disks not mounted on their VM, and resolve what is found",
      (a) =>
        a
          .option('d', deploymentOption)
          .option('report', { type: 'boolean', default: false, describe: 'Only list the problems (fails when there are any)' })
          .option('auto', { type: 'boolean', default: false, describe: 'Apply the default resolution of each problem' })
          .option('resolution', { type: 'string', describe: `Apply this resolution wherever it is offered (${RESOLUTION_NAMES.join(', ')})` })
          .option('json', jsonOption),
      async (args) => {
        const name = deploymentArg(args.d, 'cloud-check');
        const modes = [args.report && '--report', args.auto && '--auto', args.resolution !== undefined && '--resolution'].filter(Boolean);
        if (modes.length > 1) throw new ClientUsageError(`give one of --report, --auto and --resolution, not ${modes.join(' and ')}`);
        const { client } = await openDirector();
        const scan = await step(`Scanning ${name}`, () => client.scanCloud(name));
        await followAndReport(client, scan.id, args.json ? 'result' : 'log');
        const problems = await step(`Listing the problems of ${name}`, () => client.problems(name));
        if (args.json && (args.report || problems.length === 0)) printJson(problems);
        else print(problems.length ? ['', ...renderProblems(problems), '', `${problems.length} problem${problems.length === 1 ? '' : 's'}`] : ['', 'No problems found.']);
        if (problems.length === 0) return;
        if (args.report) throw new ProblemsFoundError(`${problems.length} problem${problems.length === 1 ? '' : 's'} found in ${name}; resolve with ingot -d ${name} cloud-check (--auto)`);
        const resolutions = args.auto ? chooseResolutions(problems, { auto: true }) : args.resolution !== undefined ? chooseResolutions(problems, { resolution: args.resolution }) : await askResolutions(problems);
        const task = await step(`Applying the resolutions to ${name}`, () => client.resolveProblems(name, resolutions));
        await followAndReport(client, task.id, args.json ? 'json' : 'log');
      },
    )
    .command(
      'recreate [target]',
      "Recreate a deployment's VMs (all, a group's, or one), one at a time, keeping their persistent disks",
      (a) =>
        a
          .positional('target', { type: 'string', describe: 'GROUP or GROUP/INDEX (INDEX the index or the uuid); every instance when absent' })
          .option('d', deploymentOption)
          .option('skip-drain', { type: 'boolean', default: false, describe: "Do not drain the old VMs' jobs" })
          .option('n', { alias: 'non-interactive', type: 'boolean', default: false, describe: 'Do not ask for confirmation' })
          .option('json', jsonOption),
      async (args) => {
        const name = deploymentArg(args.d, 'recreate');
        const target = parseInstanceTarget(args.target, 'recreate');
        const what = target.group === '*' ? `every instance of ${name}` : `${target.index === undefined ? target.group : `${target.group}/${target.index}`} of ${name}`;
        await confirm(`Recreate the VMs of ${what}?`, args.n);
        const { client } = await openDirector();
        const task = await step(`Asking to recreate ${what}`, () => client.recreate(name, target, { skipDrain: args['skip-drain'] }));
        await followAndReport(client, task.id, args.json ? 'json' : 'log');
      },
    )
    .command(
      'update-resurrection <state>',
      'Turn the resurrector on or off (the health monitor keeps alerting either way)',
      (a) => a.positional('state', { type: 'string', demandOption: true, describe: 'on or off' }).option('json', jsonOption),
      async (args) => {
        const state = String(args.state).toLowerCase();
        if (state !== 'on' && state !== 'off') throw new ClientUsageError(`update-resurrection ${args.state}: expected on or off`);
        const { client } = await openDirector();
        const r = await step(`Turning resurrection ${state}`, () => client.setResurrection(state === 'off'));
        if (args.json) return printJson(r);
        print(
          r.resurrection_configured
            ? `Resurrection is ${r.resurrection_paused ? 'off' : 'on'}.`
            : `Resurrection is ${r.resurrection_paused ? 'off' : 'on'} here, but the director's config turns it off (health_monitor.resurrection).`,
        );
      },
    );
}

/** `ingot -d DEP events`: registered instead of the app's `events` when `-d` is on the line. */
export function registerDeploymentEventsCommand(y: Argv): Argv {
  return y.command(
    'events',
    "List a deployment's events, newest first: the health monitor's alerts and resurrections",
    (a) =>
      a
        .option('d', deploymentOption)
        .option('before-id', { type: 'number', describe: 'Only events older than this id (paging)' })
        .option('limit', { type: 'number', default: 200, describe: 'At most this many' })
        .option('json', jsonOption),
    async (args) => {
      const name = deploymentArg(args.d, 'events');
      const { client } = await openDirector();
      const list = await step(`Listing the events of ${name}`, () => client.events({ deployment: name, limit: args.limit, ...(args['before-id'] !== undefined ? { beforeId: args['before-id'] } : {}) }));
      if (args.json) return printJson(list);
      print(list.length ? [...renderEvents(list), '', `${list.length} event${list.length === 1 ? '' : 's'}`] : `No events for ${name}.`);
    },
  );
}

// BOSH's instance commands on a deployment: `ingot vms [-d NAME]` (each VM with its agent's
// state now), `ingot -d NAME logs GROUP/INDEX [--dir DIR]` (the fetch_logs task followed, then
// its tarball downloaded to DIR/<deployment>.<group>.<index>.<YYYYMMDD-HHMMSS>.tgz) and
// `ingot -d NAME start|stop|restart [GROUP[/INDEX]]` (the change_job_state task followed).
// `logs`, `start`, `stop` and `restart` are app verbs too: cli/main.ts registers these only
// when `-d` is given. Target parsing, the table and the file name are pure.
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { jsonOption, print, printJson } from '../../kernel/client/commands/common.ts';
import { ClientError, ClientUsageError, step } from '../../kernel/client/errors.ts';
import { table } from '../../kernel/client/table.ts';
import { followAndReport, followTaskOutput, taskFailure } from './director-commands.ts';
import { deploymentArg } from './director-args.ts';
import { openDirector } from './director-session.ts';
import type { JobStateChange, TaskEvent, VmRow } from './director-types.ts';
import { formatDate } from './task-output.ts';

export interface InstanceTarget {
  /** A group name, or `*` for every instance. */
  group: string;
  /** The index or the instance's uuid. */
  index?: string;
}

const GROUP = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const INDEX_OR_UUID = /^(\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/**
 * `GROUP[/INDEX]` as typed, INDEX the index or the uuid; none means every instance unless
 * `needIndex` (logs want one instance). Pure; a mistake is a sentence showing the form.
 */
export function parseInstanceTarget(value: unknown, command: string, o: { needIndex?: boolean } = {}): InstanceTarget {
  const form = o.needIndex ? 'GROUP/INDEX' : 'GROUP[/INDEX]';
  const text = value === undefined || value === null ? '' : String(value).trim();
  if (text === '') {
    if (o.needIndex) throw new ClientUsageError(`name the instance: ingot -d DEPLOYMENT ${command} ${form}`);
    return { group: '*' };
  }
  const [group = '', index, ...rest] = text.split('/');
  const bad = (why: string) => new ClientUsageError(`instance "${text}": ${why}; expected ${form}, e.g. router/0 or router/<uuid>`);
  if (rest.length > 0) throw bad('too many slashes');
  if (!GROUP.test(group)) throw bad('the group is a name of letters, digits, ".", "_" and "-"');
  if (index === undefined) {
    if (o.needIndex) throw bad('the index is missing');
    return { group };
  }
  if (!INDEX_OR_UUID.test(index)) throw bad('the index is a number or the instance\'s uuid');
  return { group, index };
}

/** `<deployment>.<group>.<index>.<YYYYMMDD-HHMMSS>.tgz`, the time in the machine's zone (BOSH's name). */
export function logsFileName(deployment: string, target: Required<InstanceTarget>, at: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp = `${at.getFullYear()}${pad(at.getMonth() + 1)}${pad(at.getDate())}-${pad(at.getHours())}${pad(at.getMinutes())}${pad(at.getSeconds())}`;
  return `${deployment}.${target.group}.${target.index}.${stamp}.tgz`;
}

/** The vms table of one deployment; pure. */
export function renderVms(rows: VmRow[], o: { timeZone?: string } = {}): string[] {
  const created = (iso: string) => (Number.isNaN(Date.parse(iso)) ? iso : formatDate(Math.floor(Date.parse(iso) / 1000), o.timeZone ? { timeZone: o.timeZone } : {}));
  const body = rows.map((r) => [`${r.instance}/${r.id}`, r.process_state, r.az ?? '', r.ips.join(', '), r.vm_cid, r.vm_type ?? '', created(r.created_at)]);
  return table(['Instance', 'Process State', 'AZ', 'IPs', 'VM CID', 'VM Type', 'Created'], body);
}

export function registerVmsCommand(y: Argv): Argv {
  return y.command(
    'vms',
    'List the VMs of a deployment (or of every deployment) with their state as their agents report it',
    (a) => a.option('d', { alias: 'deployment', type: 'string', describe: 'The deployment (all when absent)' }).option('json', jsonOption),
    async (args) => {
      const { client } = await openDirector();
      const names = args.d === undefined ? (await step('Listing the deployments', () => client.deployments())).map((d) => d.name) : [deploymentArg(args.d, 'vms')];
      const all: Array<{ deployment: string; vms: VmRow[] }> = [];
      for (const name of names) all.push({ deployment: name, vms: await step(`Asking the VMs of ${name}`, () => client.vms(name)) });
      if (args.json) return printJson(all.flatMap((d) => d.vms.map((v) => ({ deployment: d.deployment, ...v }))));
      if (all.length === 0) return print('There are no deployments.');
      for (const d of all) {
        const running = d.vms.filter((v) => v.process_state === 'running').length;
        print([`Deployment ${d.deployment}`, '', ...(d.vms.length ? renderVms(d.vms) : ['(no VMs)']), '', `${d.vms.length} vms, ${running} running`, '']);
      }
    },
  );
}

const deploymentOption = { alias: 'deployment', type: 'string', demandOption: true, describe: 'The deployment' } as const;

const STATE_VERBS: Array<{ verb: string; state: JobStateChange; describe: string }> = [
  { verb: 'start', state: 'started', describe: "Start a deployment's instances (all, a group's, or one) and wait until they run" },
  { verb: 'stop', state: 'stopped', describe: "Drain and stop a deployment's instances; a later deploy keeps them stopped" },
  { verb: 'restart', state: 'restarted', describe: "Stop and start a deployment's instances, one at a time" },
];

export function registerDeploymentVerbCommands(y: Argv): Argv {
  const withLogs = y.command(
    'logs [target]',
    "Fetch an instance's job logs as a tarball (BOSH's logs)",
    (a) =>
      a
        .positional('target', { type: 'string', describe: 'GROUP/INDEX (INDEX the index or the uuid)' })
        .option('d', deploymentOption)
        .option('dir', { type: 'string', describe: 'Where to put the tarball (default: the current directory)' })
        .option('json', jsonOption),
    async (args) => {
      const name = deploymentArg(args.d, 'logs');
      const target = parseInstanceTarget(args.target, 'logs', { needIndex: true }) as Required<InstanceTarget>;
      const dir = resolve(args.dir ?? '.');
      if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new ClientError('bad_path', `--dir ${args.dir ?? '.'}: not a directory`);
      const { client } = await openDirector();
      const task = await step(`Fetching the logs of ${target.group}/${target.index} of ${name}`, () => client.fetchLogs(name, target.group, target.index));
      const events: TaskEvent[] = [];
      if (args.json) {
        const done = await followTaskOutput(client, task.id, 'event', (e) => events.push(e));
        if (done.state !== 'done') throw taskFailure(done);
      } else await followAndReport(client, task.id, 'log');
      const finished = await step(`Reading task ${task.id}`, () => client.task(task.id));
      if (!finished.result) throw new ClientError('bad_response', `task ${task.id} ended without naming the logs it fetched`);
      const file = join(dir, logsFileName(name, target, new Date()));
      const size = await step(`Downloading the logs of ${target.group}/${target.index}`, () => client.downloadResource(finished.result!, file));
      if (args.json) return printJson({ task: finished, events, file, size });
      print(['', `Downloaded the logs of ${name} ${target.group}/${target.index} to ${file}`]);
    },
  );
  return STATE_VERBS.reduce(
    (acc, { verb, state, describe }) =>
      acc.command(
        `${verb} [target]`,
        describe,
        (a) =>
          a
            .positional('target', { type: 'string', describe: 'GROUP or GROUP/INDEX (INDEX the index or the uuid); every instance when absent' })
            .option('d', deploymentOption)
            .option('json', jsonOption),
        async (args) => {
          const name = deploymentArg(args.d, verb);
          const target = parseInstanceTarget(args.target, verb);
          const what = target.group === '*' ? `the instances of ${name}` : `${target.index === undefined ? target.group : `${target.group}/${target.index}`} of ${name}`;
          const { client } = await openDirector();
          const task = await step(`Asking to ${verb} ${what}`, () => client.changeJobState(name, target, state));
          await followAndReport(client, task.id, args.json ? 'json' : 'log');
        },
      ),
    withLogs,
  );
}

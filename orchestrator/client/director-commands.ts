// The operator commands of the `ingot` CLI that talk to the director (DESIGN.md §2, issue 8):
// `director [URL]`, `director login`, `stemcells`, `upload-stemcell`, `releases`,
// `upload-release`, `cloud-config`, `update-cloud-config`, `deployments`, `tasks`, `task`,
// `cancel-task` and `delete-deployment`. For the lead to wire in cli/main.ts with
// `registerDirectorCommands(cli)`; followTask is what `ingot deploy` uses to stream its task.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { jsonOption, print, printJson } from '../../kernel/client/commands/common.ts';
import { normalizeApiUrl } from '../../kernel/client/commands/auth.ts';
import { ask, canPrompt } from '../../kernel/client/commands/prompt.ts';
import { ConfigStore } from '../../kernel/client/config-store.ts';
import { ApiRequestError, ClientError, ClientUsageError, step } from '../../kernel/client/errors.ts';
import type { Sink } from '../../kernel/client/progress.ts';
import { keyValues, table } from '../../kernel/client/table.ts';
import { deploymentArg, taskIdArg, taskOutputMode, tasksQuery } from './director-args.ts';
import { DirectorClient } from './director-client.ts';
import { DirectorCliError, loadDirectorTarget, NO_DIRECTOR, openDirector, saveDirectorTarget, type DirectorTarget } from './director-session.ts';
import { FINISHED_STATES, type Task, type TaskEvent } from './director-types.ts';
import { TaskOutput, TaskOutputWriter } from './task-output.ts';
import { renderDiff } from './text-diff.ts';

/** How often a follower reconnects when the stream ends before the task does (a restarting director). */
const FOLLOW_RETRIES = 10;
const FOLLOW_RETRY_MS = 1000;

export function registerDirectorCommands(y: Argv): Argv {
  return [targetCommands, uploadCommands, cloudConfigCommands, deploymentCommands, taskCommands].reduce((acc, add) => add(acc), y);
}

// ---- director and director login ------------------------------------------------------------

function targetCommands(y: Argv): Argv {
  return y.command(
    'director [url]',
    'Target a director and show it (ingot director login to log in)',
    (a) =>
      a
        .positional('url', { type: 'string', describe: 'The director URL, e.g. http://127.0.0.1:25555' })
        .option('json', jsonOption)
        .command(
          'login',
          'Log in to the targeted director as its admin',
          (l) =>
            l
              .option('u', { alias: 'username', type: 'string', describe: 'User (or $INGOT_DIRECTOR_USERNAME)' })
              .option('p', { alias: 'password', type: 'string', describe: 'Password (or $INGOT_DIRECTOR_PASSWORD); asked for when absent on a terminal' }),
          async (args) => {
            const store = new ConfigStore();
            const cur = await loadDirectorTarget(store);
            if (!cur) throw new DirectorCliError('no_director', NO_DIRECTOR);
            let username = args.u ?? process.env.INGOT_DIRECTOR_USERNAME;
            let password = args.p ?? process.env.INGOT_DIRECTOR_PASSWORD;
            if (!username || !password) {
              if (!canPrompt()) throw new ClientUsageError('give -u USER and -p PASSWORD (there is no terminal to ask on)');
              username ??= await ask('Username: ');
              password ??= await ask('Password: ', { secret: true });
            }
            const client = new DirectorClient({ url: cur.url });
            let token;
            try {
              token = await client.login(username, password);
            } catch (err) {
              if (err instanceof ApiRequestError && err.status === 401) throw new ClientError('not_logged_in', `login to the director ${cur.url} as ${username} failed: ${err.detail}`);
              throw err;
            }
            await saveDirectorTarget(store, { ...cur, user: username, access_token: token.access_token, expires_at: Date.now() + token.expires_in * 1000 });
            print(`Logged in to the director ${cur.url}${cur.name ? ` (${cur.name})` : ''} as ${username}.`);
          },
        ),
    async (args) => {
      const store = new ConfigStore();
      let target: DirectorTarget;
      if (args.url) {
        const url = normalizeApiUrl(args.url);
        const info = await step(`Targeting the director ${url}`, () => new DirectorClient({ url }).info());
        const cur = await loadDirectorTarget(store);
        // The same director keeps its session; another one starts logged out.
        target = cur && cur.url === url && cur.uuid === info.uuid ? { ...cur, name: info.name } : { url, name: info.name, uuid: info.uuid };
        await saveDirectorTarget(store, target);
        return showDirector(target, info, Boolean(args.json));
      }
      const cur = await loadDirectorTarget(store);
      if (!cur) {
        if (args.json) return printJson(null);
        throw new DirectorCliError('no_director', NO_DIRECTOR);
      }
      const info = await step(`Reading the director ${cur.url}`, () => new DirectorClient({ url: cur.url }).info());
      showDirector(cur, info, Boolean(args.json));
    },
  );
}

function showDirector(target: DirectorTarget, info: Awaited<ReturnType<DirectorClient['info']>>, json: boolean): void {
  const user = target.access_token ? (target.user ?? 'admin') : null;
  if (json) return printJson({ url: target.url, name: info.name, uuid: info.uuid, version: info.version, cpi: info.cpi ?? null, user });
  print(
    keyValues([
      ['Director', target.url],
      ['Name', info.name],
      ['UUID', info.uuid],
      ['Version', info.version],
      ['CPI', typeof info.cpi === 'string' ? info.cpi : JSON.stringify(info.cpi ?? null)],
      ['User', user ?? '(not logged in; ingot director login)'],
    ]),
  );
}

// ---- stemcells and releases ------------------------------------------------------------------

function uploadCommands(y: Argv): Argv {
  return y
    .command(
      'stemcells',
      'List the stemcells uploaded to the director',
      (a) => a.option('json', jsonOption),
      async (args) => {
        const { client } = await openDirector();
        const list = await step('Listing stemcells', () => client.stemcells());
        if (args.json) return printJson(list);
        if (list.length === 0) return print('No stemcells. Upload one with ingot upload-stemcell PATH.');
        print(table(['Name', 'Version', 'OS', 'CID', 'Deployments'], list.map((s) => [s.name, s.version, s.operating_system, s.cid ?? '-', s.deployments.join(', ') || '-'])));
      },
    )
    .command(
      'upload-stemcell <path>',
      'Upload a stemcell tarball to the director',
      (a) => a.positional('path', { type: 'string', demandOption: true, describe: 'The stemcell .tgz' }).option('json', jsonOption),
      async (args) => {
        const { client } = await openDirector();
        const path = resolve(args.path);
        const outcome = await alreadyUploadedIsFine(() => client.uploadStemcell(path));
        if (args.json) return printJson(outcome.item ?? { uploaded: false, reason: outcome.skipped });
        print(outcome.item ? `Uploaded stemcell ${outcome.item.name}/${outcome.item.version} (${outcome.item.operating_system}).` : `${outcome.skipped}; nothing to do.`);
      },
    )
    .command(
      'releases',
      'List the releases uploaded to the director',
      (a) => a.option('json', jsonOption),
      async (args) => {
        const { client } = await openDirector();
        const list = await step('Listing releases', () => client.releases());
        if (args.json) return printJson(list);
        if (list.length === 0) return print('No releases. Upload one with ingot upload-release PATH.');
        print(table(['Name', 'Version', 'Jobs', 'Packages', 'Uploaded'], list.map((r) => [r.name, r.version, String(r.jobs.length), String(r.packages.length), r.uploaded_at ?? '-'])));
      },
    )
    .command(
      'upload-release <path>',
      'Upload a release tarball (ingot create-release) to the director',
      (a) => a.positional('path', { type: 'string', demandOption: true, describe: 'The release .tgz' }).option('json', jsonOption),
      async (args) => {
        const { client } = await openDirector();
        const path = resolve(args.path);
        const outcome = await alreadyUploadedIsFine(() => client.uploadRelease(path));
        if (args.json) return printJson(outcome.item ?? { uploaded: false, reason: outcome.skipped });
        if (!outcome.item) return print(`${outcome.skipped}; nothing to do.`);
        const r = outcome.item;
        print(`Uploaded release ${r.name}/${r.version} (${r.jobs.length} ${r.jobs.length === 1 ? 'job' : 'jobs'}, ${r.packages.length} ${r.packages.length === 1 ? 'package' : 'packages'}).`);
      },
    );
}

/** Uploading what the director holds already is a no-op, as with BOSH: `npm start` runs again quickly. */
async function alreadyUploadedIsFine<T>(upload: () => Promise<T>): Promise<{ item?: T; skipped?: string }> {
  try {
    return { item: await upload() };
  } catch (err) {
    if (err instanceof ApiRequestError && err.status === 409 && /already uploaded/.test(err.detail)) return { skipped: err.detail };
    throw err;
  }
}

// ---- cloud-config ------------------------------------------------------------------------------

function cloudConfigCommands(y: Argv): Argv {
  return y
    .command(
      'cloud-config',
      "Print the director's current cloud-config",
      (a) => a.option('json', jsonOption),
      async (args) => {
        const { client } = await openDirector();
        const cc = await step('Reading the cloud-config', () => client.cloudConfig());
        if (args.json) return printJson(cc ?? null);
        if (!cc) throw new ClientError('not_found', 'no cloud-config has been uploaded; run ingot update-cloud-config PATH');
        process.stdout.write(cc.properties.endsWith('\n') ? cc.properties : `${cc.properties}\n`);
      },
    )
    .command(
      'update-cloud-config <path>',
      'Replace the cloud-config: shows the diff, asks, then uploads',
      (a) =>
        a
          .positional('path', { type: 'string', demandOption: true, describe: 'The cloud-config YAML' })
          .option('n', { alias: 'non-interactive', type: 'boolean', default: false, describe: 'Do not ask before changing' })
          .option('json', jsonOption),
      async (args) => {
        const { client } = await openDirector();
        let text: string;
        try {
          text = await readFile(resolve(args.path), 'utf8');
        } catch (err) {
          throw new ClientError('bad_path', `cannot read ${args.path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
        }
        const current = await step('Reading the cloud-config', () => client.cloudConfig());
        const diff = renderDiff(current?.properties ?? '', text);
        if (diff.length === 0) {
          if (args.json) return printJson({ id: current!.id, changed: false });
          return print('The cloud-config is unchanged; nothing to do.');
        }
        if (!args.json) print(diff);
        await confirm('Update the cloud-config?', args.n);
        const saved = await step('Updating the cloud-config', () => client.updateCloudConfig(text));
        if (args.json) return printJson(saved);
        print(saved.changed ? `Updated the cloud-config (version ${saved.id}).` : 'The cloud-config is unchanged; nothing to do.');
      },
    );
}

/** Asks before a change, as `ingot deploy` does; `-n` says yes. Declining ends the command. */
export async function confirm(question: string, yes: boolean): Promise<void> {
  if (yes) return;
  if (!canPrompt()) throw new ClientUsageError('there is no terminal to ask on; give -n to go ahead without asking');
  const answer = await ask(`${question} [yN]: `);
  if (!/^y(es)?$/i.test(answer.trim())) throw new DirectorCliError('declined', 'stopped: nothing was changed');
}

// ---- deployments -------------------------------------------------------------------------------

function deploymentCommands(y: Argv): Argv {
  return y
    .command(
      'deployments',
      'List the deployments of the director',
      (a) => a.option('json', jsonOption),
      async (args) => {
        const { client } = await openDirector();
        const list = await step('Listing deployments', () => client.deployments());
        if (args.json) return printJson(list);
        if (list.length === 0) return print('No deployments.');
        print(
          table(
            ['Name', 'Releases', 'Stemcells', 'Cloud config'],
            list.map((d) => [
              d.name,
              d.releases.map((r) => `${r.name}/${r.version}`).join(', ') || '-',
              d.stemcells.map((s) => `${String(s.name ?? s.os ?? s.alias ?? '?')}/${s.version}`).join(', ') || '-',
              d.cloud_config_id === null ? 'none' : String(d.cloud_config_id),
            ]),
          ),
        );
      },
    )
    .command(
      'delete-deployment',
      'Delete a deployment: its VMs, disks and records (follows the task)',
      (a) =>
        a
          .option('d', { alias: 'deployment', type: 'string', describe: 'The deployment' })
          .option('n', { alias: 'non-interactive', type: 'boolean', default: false, describe: 'Do not ask before deleting' })
          .option('json', jsonOption),
      async (args) => {
        const name = deploymentArg(args.d, 'delete-deployment');
        const { client } = await openDirector();
        await confirm(`Delete the deployment ${name}?`, args.n);
        const task = await step(`Deleting the deployment ${name}`, () => client.deleteDeployment(name));
        await followAndReport(client, task.id, args.json ? 'json' : 'log');
      },
    );
}

// ---- tasks --------------------------------------------------------------------------------------

function taskCommands(y: Argv): Argv {
  return y
    .command(
      'tasks',
      'List the running tasks (--recent: the latest of any state)',
      (a) =>
        a
          .option('r', { alias: 'recent', type: 'string', describe: 'The latest N tasks of any state (30 without N)' })
          .option('d', { alias: 'deployment', type: 'string', describe: "Only this deployment's tasks" })
          .option('json', jsonOption),
      async (args) => {
        const q = tasksQuery(args.r, args.d);
        const { client } = await openDirector();
        const list = await step('Listing tasks', () => client.tasks(q));
        if (args.json) return printJson(list);
        if (list.length === 0) return print(q.states ? 'No running tasks. See the latest with ingot tasks --recent.' : 'No tasks.');
        print(
          table(
            ['ID', 'State', 'Started', 'Deployment', 'Description', 'Result'],
            list.map((t) => [String(t.id), t.state, t.started_at ?? '-', t.deployment ?? '-', t.description, oneLine(t.result ?? '')]),
          ),
        );
      },
    )
    .command(
      'task <id>',
      'Show a task: its steps, following it live until it ends',
      (a) =>
        a
          .positional('id', { type: 'string', demandOption: true, describe: 'The task number' })
          .option('event', { type: 'boolean', describe: 'Print the raw events (JSON lines)' })
          .option('debug', { type: 'boolean', describe: 'Print the debug log' })
          .option('result', { type: 'boolean', describe: "Print the task's result" })
          .option('json', jsonOption),
      async (args) => {
        const id = taskIdArg(args.id);
        const mode = taskOutputMode(args);
        const { client } = await openDirector();
        await followAndReport(client, id, args.json ? 'json' : mode);
      },
    )
    .command(
      'cancel-task <id>',
      'Cancel a queued or running task',
      (a) => a.positional('id', { type: 'string', demandOption: true, describe: 'The task number' }).option('json', jsonOption),
      async (args) => {
        const id = taskIdArg(args.id);
        const { client } = await openDirector();
        const task = await step(`Cancelling task ${id}`, () => client.cancelTask(id));
        if (args.json) return printJson(task);
        print(task.state === 'cancelled' ? `Task ${id} cancelled.` : `Task ${id} is ${task.state}: it stops at its next step (ingot task ${id} follows it).`);
      },
    );
}

function oneLine(text: string, max = 80): string {
  const s = text.replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export type FollowMode = 'log' | 'event' | 'debug' | 'result' | 'json';

/** Follows a task in one of the output modes, then fails the command if it did not end done. */
export async function followAndReport(client: DirectorClient, id: number, mode: FollowMode): Promise<void> {
  let task: Task;
  if (mode === 'log') {
    task = await followTask(client, id, { out: process.stdout, tty: process.stdout.isTTY === true });
  } else if (mode === 'event') {
    task = await followTaskOutput(client, id, 'event', (e) => process.stdout.write(`${JSON.stringify(e)}\n`));
  } else if (mode === 'debug') {
    task = await followTaskOutput(client, id, 'debug', (line) => process.stdout.write(`${line}\n`));
  } else {
    const events: TaskEvent[] = [];
    task = await followTaskOutput(client, id, 'event', (e) => events.push(e));
    if (mode === 'json') printJson({ task, events });
    else if (task.result !== null) process.stdout.write(task.result.endsWith('\n') ? task.result : `${task.result}\n`);
  }
  if (task.state !== 'done') throw taskFailure(task);
}

/** The one line a command ends with when its task did not succeed. */
export function taskFailure(task: Task): DirectorCliError {
  if (task.state === 'cancelled') return new DirectorCliError('task_failed', `task ${task.id} was cancelled${task.result ? ` (${task.result})` : ''}`);
  return new DirectorCliError('task_failed', `task ${task.id} ${task.state === 'error' ? 'failed' : `is ${task.state}`}: ${task.result ?? 'no reason given'}`);
}

/**
 * Follows a task's events (or debug lines) until the task ends; if the stream ends first (the
 * director restarted), reconnects and skips what it has already seen. Resolves with the task.
 */
export async function followTaskOutput(client: DirectorClient, id: number, type: 'event', onItem: (e: TaskEvent) => void): Promise<Task>;
export async function followTaskOutput(client: DirectorClient, id: number, type: 'debug', onItem: (line: string) => void): Promise<Task>;
export async function followTaskOutput(client: DirectorClient, id: number, type: 'event' | 'debug', onItem: ((e: TaskEvent) => void) | ((line: string) => void)): Promise<Task> {
  let seen = 0;
  let task = await step(`Reading task ${id}`, () => client.task(id));
  for (let attempt = 0; ; attempt++) {
    let n = 0;
    const take = (item: unknown): void => {
      if (n++ < seen) return;
      seen++;
      (onItem as (x: unknown) => void)(item);
    };
    try {
      if (type === 'event') await client.taskOutput(id, 'event', (e: TaskEvent) => take(e), { follow: true });
      else await client.taskOutput(id, 'debug', (line: string) => take(line), { follow: true });
    } catch (err) {
      if (!(err instanceof ClientError && err.code === 'unreachable') || attempt >= FOLLOW_RETRIES) throw err;
    }
    task = await step(`Reading task ${id}`, () => client.task(id));
    if (FINISHED_STATES.has(task.state)) return task;
    if (attempt >= FOLLOW_RETRIES) throw new ClientError('unreachable', `the director stopped streaming task ${id} while it is ${task.state}; follow it again with ingot task ${id}`);
    await new Promise((r) => setTimeout(r, FOLLOW_RETRY_MS));
  }
}

/** Follows a task, printing a line per step as it ends and the summary; resolves with the task. */
export async function followTask(client: DirectorClient, id: number, o: { out: Sink; tty: boolean; timeZone?: string }): Promise<Task> {
  const writer = new TaskOutputWriter(new TaskOutput(id, o.timeZone ? { timeZone: o.timeZone } : {}), o.out, o.tty);
  o.out.write(`Task ${id}\n\n`);
  try {
    const task = await followTaskOutput(client, id, 'event', (e) => writer.event(e));
    writer.clear();
    writer.lines(writer.output.summary(task));
    return task;
  } finally {
    writer.clear();
  }
}

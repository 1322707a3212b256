// `ingot -d DEPLOYMENT run-errand NAME [--json]`: runs job NAME's errand on every instance that
// has it (the director's run_errand task, followed live), then prints each instance's output
// and exit code. The command's exit status is 1 when any instance's errand did not exit 0.
import type { Argv } from 'yargs';
import { jsonOption, print, printJson } from '../../kernel/client/commands/common.ts';
import { ClientError, step } from '../../kernel/client/errors.ts';
import { followTask, followTaskOutput, taskFailure } from './director-commands.ts';
import { deploymentArg } from './director-args.ts';
import { openDirector } from './director-session.ts';
import { errandResult, type ErrandResult } from './director-types.ts';

/** Each instance's output and exit code, as lines; pure. */
export function renderErrandResult(r: ErrandResult): string[] {
  const lines: string[] = [];
  for (const run of r.runs) {
    lines.push(`Instance   ${run.instance} (${run.id})`, `Exit Code  ${run.exit_code ?? 'none (killed)'}`, 'Stdout', ...indent(run.stdout), 'Stderr', ...indent(run.stderr), '');
  }
  const failed = r.runs.filter((run) => run.exit_code !== 0);
  lines.push(failed.length === 0 ? `Errand ${r.errand} succeeded on ${r.runs.length} instance${r.runs.length === 1 ? '' : 's'}` : `Errand ${r.errand} failed on ${failed.map((f) => f.instance).join(', ')}`);
  return lines;
}

function parseJson(text: string | null): unknown {
  try {
    return JSON.parse(text ?? 'null');
  } catch {
    return undefined;
  }
}

function indent(text: string): string[] {
  const body = text.replace(/\n$/, '');
  return body === '' ? ['  (none)'] : body.split('\n').map((l) => `  ${l}`);
}

export function registerErrandCommand(y: Argv): Argv {
  return y.command(
    'run-errand <name>',
    'Run an errand (a job with an errand, e.g. smoke-tests) on the instances that have it',
    (a) =>
      a
        .positional('name', { type: 'string', demandOption: true, describe: 'The errand: the name of its job' })
        .option('d', { alias: 'deployment', type: 'string', describe: 'The deployment' })
        .option('json', jsonOption),
    async (args) => {
      const name = deploymentArg(args.d, 'run-errand');
      const { client } = await openDirector();
      const queued = await step(`Running errand ${args.name} of ${name}`, () => client.runErrand(name, args.name));
      const task = args.json ? await followTaskOutput(client, queued.id, 'event', () => undefined) : await followTask(client, queued.id, { out: process.stdout, tty: process.stdout.isTTY === true });
      if (task.state !== 'done') throw taskFailure(task);
      const parsed = errandResult.safeParse(parseJson(task.result));
      if (!parsed.success) throw new ClientError('bad_response', `task ${task.id} ended without the errand's result`);
      if (args.json) printJson(parsed.data);
      else print(['', ...renderErrandResult(parsed.data)]);
      if (parsed.data.runs.some((r) => r.exit_code !== 0)) process.exitCode = 1;
    },
  );
}

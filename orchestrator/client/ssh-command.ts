// `ingot -d DEPLOYMENT ssh GROUP/INDEX [-c COMMAND]`: a shell in an instance's VM, or one
// command run there. Local VMs have no sshd: the director answers with the command line its CPI
// builds (nsenter into the VM's namespaces and cgroup), which only makes sense on the
// director's own host — so the CLI runs it only when the host ids match, and only as root.
import { spawn } from 'node:child_process';
import type { Argv } from 'yargs';
import { ClientUsageError, step } from '../../kernel/client/errors.ts';
import { hostId } from '../host-id.ts';
import { deploymentArg } from './director-args.ts';
import { openDirector } from './director-session.ts';
import { parseInstanceTarget, type InstanceTarget } from './instance-ops-commands.ts';

export function registerSshCommand(y: Argv): Argv {
  return y.command(
    'ssh <instance>',
    "Open a shell in an instance's VM (with -d DEPLOYMENT), or run one command there with -c",
    (a) =>
      a
        .positional('instance', { type: 'string', demandOption: true, describe: 'GROUP/INDEX, e.g. router/0' })
        .option('d', { alias: 'deployment', type: 'string', demandOption: true, describe: 'The deployment' })
        .option('c', { alias: 'command', type: 'string', describe: 'Run this command (with /bin/sh -c) instead of a shell' }),
    async (args) => {
      const name = deploymentArg(args.d, 'ssh');
      const { group, index } = parseInstanceTarget(args.instance, 'ssh', { needIndex: true }) as Required<InstanceTarget>;
      const { client } = await openDirector();
      const command = args.c === undefined ? [] : ['/bin/sh', '-c', args.c];
      const target = await step(`Finding ${group}/${index} in ${name}`, () => client.sshTarget(name, group, index, command));
      if (target.host_id !== hostId()) {
        throw new ClientUsageError(`${target.instance} runs on the director's host, not this one: run ingot ssh there (VMs of the local CPI have no sshd)`);
      }
      if (process.getuid?.() !== 0) throw new ClientUsageError(`entering the VM of ${target.instance} needs root on this host: sudo ingot -d ${name} ssh ${group}/${index}`);
      const [file, ...rest] = target.argv;
      const child = spawn(file!, rest, { stdio: 'inherit' });
      const code = await new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.once('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
      });
      process.exitCode = code;
    },
  );
}

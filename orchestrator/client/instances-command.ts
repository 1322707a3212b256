// `ingot instances -d DEPLOYMENT [--ps] [--vitals]`: BOSH's instances — each instance's state
// as its agent reports it now (the director asks every agent), its IPs and VM; `--ps` adds a
// row per process, `--vitals` the VM's load, CPU, memory and uptime.
import type { Argv } from 'yargs';
import { jsonOption, print, printJson } from '../../kernel/client/commands/common.ts';
import { step } from '../../kernel/client/errors.ts';
import { table } from '../../kernel/client/table.ts';
import { deploymentArg } from './director-args.ts';
import { openDirector } from './director-session.ts';
import type { InstanceRow } from './director-types.ts';
import { formatDuration } from './task-output.ts';

export function registerInstancesCommands(y: Argv): Argv {
  return y.command(
    'instances',
    "List a deployment's instances with their state as their agents report it",
    (a) =>
      a
        .option('d', { alias: 'deployment', type: 'string', describe: 'The deployment' })
        .option('ps', { type: 'boolean', default: false, describe: 'A row per process of each instance' })
        .option('vitals', { type: 'boolean', default: false, describe: "The VMs' load, CPU, memory and uptime" })
        .option('json', jsonOption),
    async (args) => {
      const name = deploymentArg(args.d, 'instances');
      const { client } = await openDirector();
      const rows = await step(`Asking the instances of ${name}`, () => client.instances(name, true));
      if (args.json) return printJson(rows);
      if (rows.length === 0) return print(`Deployment ${name} has no instances.`);
      print(renderInstances(rows, { ps: args.ps, vitals: args.vitals }));
    },
  );
}

/** The table; pure. */
export function renderInstances(rows: InstanceRow[], o: { ps: boolean; vitals: boolean }): string[] {
  const head = ['Instance', 'Process State', 'AZ', 'IPs', ...(o.vitals ? ['Uptime', 'Load (1m, 5m, 15m)', 'CPU Total', 'Memory Usage'] : [])];
  const body: string[][] = [];
  for (const r of rows) {
    const v = r.vitals;
    const vitals = o.vitals
      ? v
        ? [formatDuration(v.uptime.secs), v.load.join(', '), `${(Number(v.cpu.user) + Number(v.cpu.sys)).toFixed(1)}%`, `${v.mem.percent}% (${Math.round(Number(v.mem.kb) / 1024)}M)`]
        : ['', '', '', '']
      : [];
    body.push([`${r.instance}/${r.id}`, r.process_state ?? r.deploy_state, r.az ?? '', r.ips.join(', '), ...vitals]);
    if (o.ps) for (const p of r.processes ?? []) body.push([`~ ${p.name}`, `${p.state}${p.restarts > 0 ? ` (${p.restarts} restarts)` : ''}`, '', '', ...vitals.map(() => '')]);
  }
  const running = rows.filter((r) => r.process_state === 'running').length;
  return [...table(head, body), '', `${rows.length} instances, ${running} running`];
}

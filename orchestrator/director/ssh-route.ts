// POST /deployments/:name/instances/:group/:index/ssh: how to open a shell in an instance's VM.
// The local CPI's VMs are namespaces on the director's own host and run no sshd, so the answer
// is the command line the CPI builds (its `shell_argv`) with the host's machine id: `ingot ssh`
// runs it only on that same host. A CPI without a way in is refused with a sentence.
import { z } from 'zod';
import { readJson } from '../../kernel/cloud-controller/http/body.ts';
import type { ApiServer } from '../../kernel/cloud-controller/http/server.ts';
import type { Cpi } from '../cpi/types.ts';
import { hostId } from '../host-id.ts';
import { targetOf } from './deploy/instance-ops-routes.ts';
import { instanceRows } from './deploy/instances.ts';
import { apiErrors } from './errors.ts';
import type { DirectorStore } from './store.ts';

const SshBody = z.object({ command: z.array(z.string().min(1)).max(256).default([]) }).strict();

export function registerSshRoute(api: ApiServer, d: { store: DirectorStore; cpi: Cpi | undefined; cpiName: string }): void {
  api.route('POST', '/deployments/:name/instances/:group/:index/ssh', 'user', async (ctx) => {
    const body = await readJson(ctx.req, SshBody, 64 * 1024);
    const { name, instances } = await targetOf(d.store, ctx);
    const row = instanceRows(instances, await d.store.vms(name))[0]!;
    if (!row.vm_cid) throw apiErrors.invalid(`Instance ${row.instance} has no VM`);
    if (!d.cpi?.shell_argv) throw apiErrors.invalid(`The ${d.cpiName} CPI offers no shell into its VMs; reach ${row.instance} at ${row.ips.join(', ')}`);
    const argv = await d.cpi.shell_argv(row.vm_cid, body.command);
    return { status: 200, body: { instance: row.instance, id: row.id, vm_cid: row.vm_cid, ips: row.ips, host_id: hostId(), argv } };
  });
}

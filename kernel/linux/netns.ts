// Network namespaces, veth links and nftables tables on this host: what the DEA's containers
// and the local IaaS's VMs both make and sweep. Each caller passes its own way of running a
// system tool and of naming what it was doing, so a failure reaches its operator as that
// caller's error (ContainerError, CpiError) with the step in its sentence.
import { access, readdir } from 'node:fs/promises';

export const NETNS_DIR = '/run/netns';

export interface ToolResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
}

export interface HostTools {
  /** Runs a system tool (argv[0] a name or a path); rejects on a non-zero exit unless allowFailure. */
  run(argv: string[], options?: { input?: string; allowFailure?: boolean }): Promise<ToolResult>;
  /** Runs `fn`, rethrowing a failure wrapped with the gerund phrase `what`. */
  doing<T>(what: string, fn: () => Promise<T>): Promise<T>;
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** The named network namespaces (`ip netns` names); [] when there are none. */
export async function listNetns(): Promise<string[]> {
  try {
    return await readdir(NETNS_DIR);
  } catch {
    return [];
  }
}

export function netTools(t: HostTools) {
  return {
    async removeNetns(netns: string): Promise<void> {
      if (!(await pathExists(`${NETNS_DIR}/${netns}`))) return;
      await t.doing(`Deleting network namespace ${netns}`, () => t.run(['ip', 'netns', 'delete', netns]));
    },

    async removeLink(name: string): Promise<void> {
      if (!(await pathExists(`/sys/class/net/${name}`))) return;
      await t.doing(`Deleting link ${name}`, async () => {
        const r = await t.run(['ip', 'link', 'delete', 'dev', name], { allowFailure: true });
        // Deleting the netns may take the pair with it between the check and the delete.
        if (r.exitCode !== 0 && (await pathExists(`/sys/class/net/${name}`))) throw new Error(r.stderr.trim());
      });
    },

    /** SIGKILLs whatever still runs inside `netns` (a process outside any cgroup dies with it); how many. */
    async killInside(netns: string): Promise<number> {
      const r = await t.run(['ip', 'netns', 'pids', netns], { allowFailure: true });
      let killed = 0;
      for (const pid of r.stdout.split('\n').filter((l) => /^\d+$/.test(l.trim()))) {
        try {
          process.kill(Number(pid), 'SIGKILL');
          killed++;
        } catch {
          // already gone
        }
      }
      return killed;
    },

    /** The inside of a new namespace's veth: its address, up, loopback up, the default route. */
    async configureEth0(netns: string, cidr: string, gateway: string): Promise<void> {
      await t.run(['ip', '-n', netns, 'addr', 'add', cidr, 'dev', 'eth0']);
      await t.run(['ip', '-n', netns, 'link', 'set', 'dev', 'eth0', 'up']);
      await t.run(['ip', '-n', netns, 'link', 'set', 'dev', 'lo', 'up']);
      await t.run(['ip', '-n', netns, 'route', 'add', 'default', 'via', gateway]);
    },

    /** The nftables tables of family ip. */
    async listNftTables(): Promise<string[]> {
      const r = await t.run(['nft', '-j', 'list', 'tables']);
      const doc = JSON.parse(r.stdout || '{"nftables":[]}') as { nftables: Array<{ table?: { family: string; name: string } }> };
      return doc.nftables.flatMap((e) => (e.table && e.table.family === 'ip' ? [e.table.name] : []));
    },
  };
}

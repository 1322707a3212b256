// Finding the host processes of apps and DEAs, for tests and benchmarks that kill them the
// way a failing machine would: by reading /proc, as an operator's `ps` does.
import { readdirSync, readFileSync } from 'node:fs';

function pids(): number[] {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number);
}

function read(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined; // it went away while we looked, or is not ours to read
  }
}

/** The app's own processes (the start command and its children, not the container's init):
 *  those whose environment names the app and whose command line contains `command`. */
export function appPids(name: string, command: string): number[] {
  return pids().filter((pid) => read(pid, 'cmdline')?.includes(command) && read(pid, 'environ')?.includes(`"application_name":"${name}"`));
}

/** Every process in the cgroups of a DEA's containers (cgroup path …/<prefix>/<container>). */
export function containerPids(deaPrefix: string): number[] {
  return pids().filter((pid) => read(pid, 'cgroup')?.split('\n').some((l) => l.includes(`/${deaPrefix}/`)));
}

// One deploy of the local platform (npm start's `ingot` deployment) rolled under a steady
// load on a pushed app, with a push made while the roll is on. Shared by the benchmark
// (bench/rolling-upgrade/main.ts: a new release of the whole kernel) and the e2e test's short
// version (a property change on the routers and DEAs). Everything goes through the `ingot`
// CLI, as an operator would type it; the load comes from a process of its own (load.ts).
import { spawn } from 'node:child_process';
import { spawnLoad, type LoadResult } from './load.ts';

export interface Ingot {
  (args: string[], timeoutMs?: number): Promise<RunResult>;
}

export interface RunResult {
  code: number | null;
  out: string;
  ms: number;
}

/** Runs argv to its end (killed after `timeoutMs`), stdout and stderr together. */
export function runProcess(argv: string[], o: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, ms: Date.now() - started });
    });
  });
}

/** Runs the checkout's CLI with the platform's INGOT_HOME (npm start logged it in). */
export function ingotCli(root: string, home: string): Ingot {
  return (args, timeoutMs = 600_000) => runProcess([process.execPath, 'bin/ingot.js', ...args], { cwd: root, env: { ...process.env, INGOT_HOME: home }, timeoutMs });
}

export interface RollOptions {
  root: string;
  ingot: Ingot;
  /** The app under load, already pushed and answering at <host> through 127.0.0.1:8080. */
  appHost: string;
  /** `ingot deploy` arguments (the manifest, -v, -o, flags). */
  deployArgs: string[];
  /** Seconds into the roll when the push starts. */
  pushAfterS: number;
  /** What to push during the roll: a name and a directory. */
  push: { name: string; path: string };
  rate?: number;
}

export interface RollReport {
  load: LoadResult;
  push: 'ok' | 'failed';
  pushOutput: string;
  deployCode: number | null;
  deployOutput: string;
  tookS: number;
  /** Processes (instance process) whose pid is the same after the roll. */
  samePid: string[];
  /** Processes counted before the roll. */
  processes: number;
}

/** `instance process` → pid, as the agents report them now. */
export async function processPids(ingot: Ingot): Promise<Map<string, number>> {
  const r = await ingot(['instances', '-d', 'ingot', '--ps', '--json'], 120_000);
  if (r.code !== 0) throw new Error(`ingot instances: ${r.out}`);
  const rows = JSON.parse(r.out) as Array<{ instance: string; processes?: Array<{ name: string; pid?: number }> }>;
  const pids = new Map<string, number>();
  for (const row of rows) for (const p of row.processes ?? []) if (p.pid !== undefined) pids.set(`${row.instance} ${p.name}`, p.pid);
  return pids;
}

export async function rollUnderLoad(o: RollOptions): Promise<RollReport> {
  const before = await processPids(o.ingot);
  const load = spawnLoad({ host: o.appHost, port: 8080, rate: o.rate ?? 100, max: 400_000, seconds: 3600 }, o.root);
  try {
    // A few seconds of load before the roll: failures then would be the platform's, not the roll's.
    await new Promise((r) => setTimeout(r, 3000));
    const started = Date.now();
    const deploy = o.ingot(['deploy', '-n', ...o.deployArgs], 3_600_000);
    let deployDone = false;
    void deploy.then(() => (deployDone = true));
    const push = (async () => {
      await Promise.race([new Promise((r) => setTimeout(r, o.pushAfterS * 1000)), deploy]);
      if (deployDone) return { code: -1, out: `the roll ended within ${o.pushAfterS} s: no push during it` };
      return o.ingot(['push', o.push.name, '-p', o.push.path, '-m', '64M'], 600_000);
    })();
    const [d, p] = await Promise.all([deploy, push]);
    const tookS = (Date.now() - started) / 1000;
    const result = await load.stop();
    const after = await processPids(o.ingot);
    const samePid = [...before].filter(([k, pid]) => after.get(k) === pid).map(([k]) => k);
    return { load: result, push: p.code === 0 ? 'ok' : 'failed', pushOutput: p.out, deployCode: d.code, deployOutput: d.out, tookS, samePid, processes: before.size };
  } finally {
    await load.stop().catch(() => undefined);
  }
}

/** The benchmark's last line (issue 11). */
export function summaryLine(r: RollReport): string {
  return `rolling upgrade: ${r.load.requests} requests, ${r.load.failed} failed, max latency ${r.load.max_latency_ms} ms, push during roll: ${r.push}, roll took ${Math.round(r.tookS)} s`;
}

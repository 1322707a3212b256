// The processes a benchmark runs (nats-server, routers, nginx, backends): started with their
// output kept for errors, waited on, and all killed when the benchmark ends, however it ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export class BenchProcesses {
  private readonly children: ChildProcess[] = [];

  /** `cwd`: where the processes run (`--import tsx` resolves from the repository). At exit
   *  every one still running gets `exitSignal` (SIGTERM lets nginx's master and the router's
   *  primary take their workers down). */
  constructor(
    private readonly cwd: string,
    exitSignal: NodeJS.Signals = 'SIGKILL',
  ) {
    process.on('exit', () => this.killAll(exitSignal));
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));
  }

  /** Starts argv; unless `waitForOutput` is false, resolves once `ready(output)` holds. */
  async start(name: string, cmd: string, args: string[], ready: (output: string) => boolean, waitForOutput = true): Promise<ChildProcess> {
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: this.cwd });
    this.children.push(proc);
    let output = '';
    const onData = (c: Buffer): void => {
      if (output.length < 64 * 1024) output += c.toString();
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    if (!waitForOutput) return proc;
    await waitFor(`${name} to start`, 20_000, () => ready(output), proc, () => output);
    return proc;
  }

  /** SIGTERM, then SIGKILL after 5 s. */
  async stop(proc: ChildProcess): Promise<void> {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    await Promise.race([exited, sleep(5000).then(() => proc.kill('SIGKILL'))]);
    await exited;
  }

  killAll(signal: NodeJS.Signals = 'SIGKILL'): void {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
  }
}

/** Polls `check` every 50 ms until it holds; fails early when `proc` exits, with its last output. */
export async function waitFor(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>, proc?: ChildProcess, output = (): string => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await Promise.resolve(check()).catch(() => false)) return;
    if (proc && (proc.exitCode !== null || proc.signalCode !== null)) {
      throw new Error(`Waiting for ${what}: the process exited (${proc.exitCode ?? proc.signalCode}): ${output().trim().split('\n').slice(-3).join(' / ')}`);
    }
    if (Date.now() > deadline) throw new Error(`Waiting for ${what}: not within ${timeoutMs / 1000} s.`);
    await sleep(50);
  }
}

/** A loopback port free right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

// A server a component runs as its child (the ccdb's postmaster, a service node's postgres,
// mariadbd or redis-server): spawned through setpriv, so it runs as an unprivileged user and
// gets a parent-death signal — a killed component leaves no server behind holding the port and
// the data directory — awaited until its probe answers, and stopped with its own signal, then
// SIGKILL after a grace. What to do when it dies is the caller's: the ccdb dies with it, a
// service node restarts it.
import { spawn, type ChildProcess } from 'node:child_process';

export interface ServerChild {
  process: ChildProcess;
  /** Its last output (stdout and stderr, the newest `keep` characters). */
  output(): string;
}

/** Starts `command` through setpriv, as `runAs` when given (a root component), `stopSignal` on its parent's death. */
export function spawnServer(command: string[], o: { runAs: string | undefined; stopSignal: NodeJS.Signals; keep: number }): ServerChild {
  const asUser = o.runAs !== undefined ? [`--reuid=${o.runAs}`, `--regid=${o.runAs}`, '--init-groups'] : [];
  // setpriv execs the server itself, so the pid we hold is the server's.
  const child = spawn('setpriv', [...asUser, '--pdeathsig', o.stopSignal.replace(/^SIG/, ''), '--', ...command], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  for (const s of [child.stdout!, child.stderr!]) s.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-o.keep)));
  return { process: child, output: () => output };
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Waits until `probe` resolves; throws `fail(why)` when the server exits first or does not
 * answer within `timeoutMs`, `why` ending with its last words.
 */
export async function waitServing(
  child: ChildProcess,
  o: { name: string; timeoutMs: number; probe(): Promise<void>; lastWords(): Promise<string>; fail(message: string): Error },
): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  let lastErr = '';
  while (Date.now() < deadline) {
    if (hasExited(child)) throw o.fail(`${o.name} exited at start (${child.exitCode ?? child.signalCode}): ${await o.lastWords()}`);
    try {
      await o.probe();
      return;
    } catch (err) {
      lastErr = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw o.fail(`${o.name} did not answer within ${o.timeoutMs} ms (${lastErr}): ${await o.lastWords()}`);
}

/** Sends `signal`, and SIGKILL if the server has not exited after `graceMs` (`onGraceOver` hears of it first). */
export async function stopServer(child: ChildProcess, signal: NodeJS.Signals, graceMs: number, onGraceOver?: () => void): Promise<void> {
  if (hasExited(child)) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  const timer = setTimeout(() => {
    onGraceOver?.();
    child.kill('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

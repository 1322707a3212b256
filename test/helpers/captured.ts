// A child process's stdout and stderr kept as one string, and a promise of its exit: what the
// helpers that spawn an agent, a CLI or a load generator all need to report on it.
import type { ChildProcess } from 'node:child_process';

export interface Captured {
  /** Everything it printed so far, both streams interleaved as they came. */
  output(): string;
  exited: Promise<void>;
}

/** `proc` must have been spawned with stdout and stderr piped. */
export function captured(proc: ChildProcess): Captured {
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  return { output: () => out, exited: new Promise<void>((r) => proc.once('exit', () => r())) };
}

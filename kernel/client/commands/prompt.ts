// Asking on the terminal: a line, or a password without echo. Only when stdin is a TTY;
// otherwise the caller must have been given the value (flags, environment).
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { ClientUsageError } from '../errors.ts';

export function canPrompt(): boolean {
  return process.stdin.isTTY === true;
}

export async function ask(question: string, opts: { secret?: boolean } = {}): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  try {
    const answer = new Promise<string>((resolve) => rl.question(question, resolve));
    muted = opts.secret === true;
    const value = await answer;
    if (opts.secret) process.stderr.write('\n');
    return value;
  } finally {
    rl.close();
  }
}

/**
 * Whether to go on with deleting `what` ("the app web"): yes with -f; otherwise asks `[yN]`
 * on the terminal, and without one refuses, naming -f.
 */
export async function confirmDelete(force: boolean, what: string, question = `Really delete ${what}? [yN]: `): Promise<boolean> {
  if (force) return true;
  if (!canPrompt()) throw new ClientUsageError(`give -f to delete ${what} without a terminal to confirm on`);
  return /^y(es)?$/i.test((await ask(question)).trim());
}

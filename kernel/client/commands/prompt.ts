// Asking on the terminal: a line, or a password without echo. Only when stdin is a TTY;
// otherwise the caller must have been given the value (flags, environment).
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

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

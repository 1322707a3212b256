// Runs the system tools the container layer drives (ip, nft, …) and turns a non-zero exit
// into a CommandFailedError carrying the tool's own stderr.

import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { CommandFailedError } from './errors.ts';

/** Where system tools are looked for. Not $PATH: under npm, node_modules/.bin comes first and
 *  holds an unrelated `nft` (Vercel's node-file-trace). */
export const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

const resolved = new Map<string, string | null>();

/** Absolute path of a system tool, or null when the machine lacks it. */
export function systemTool(name: string): string | null {
  if (!resolved.has(name)) {
    let found: string | null = null;
    for (const dir of SYSTEM_DIRS) {
      try {
        accessSync(join(dir, name), constants.X_OK);
        found = join(dir, name);
        break;
      } catch {
        // next
      }
    }
    resolved.set(name, found);
  }
  return resolved.get(name)!;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
}

/** Runs argv (no shell; argv[0] a system tool's name or a path), feeding `input` on stdin;
 *  rejects on a non-zero exit. */
export async function run(argv: string[], options: { input?: string; allowFailure?: boolean } = {}): Promise<CommandResult> {
  const result = await new Promise<CommandResult>((resolve, reject) => {
    const [file, ...args] = argv;
    const path = file!.includes('/') ? file! : (systemTool(file!) ?? file!);
    const child = spawn(path, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new CommandFailedError(argv, null, e.message, { cause: e })));
    child.on('close', (exitCode) =>
      resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), exitCode }),
    );
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
  if (result.exitCode !== 0 && !options.allowFailure) {
    throw new CommandFailedError(argv, result.exitCode, result.stderr || result.stdout);
  }
  return result;
}

// Runs the system tools the local CPI drives (ip, nft, nsenter, mount, …), resolved from the
// system directories: under npm, node_modules/.bin comes first in $PATH and holds an unrelated
// `nft`. A non-zero exit rejects with the tool's own stderr.

import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';

export const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

const resolved = new Map<string, string>();

export function systemTool(name: string): string {
  if (name.includes('/')) return name;
  let path = resolved.get(name);
  if (!path) {
    path = name;
    for (const dir of SYSTEM_DIRS) {
      try {
        accessSync(join(dir, name), constants.X_OK);
        path = join(dir, name);
        break;
      } catch {
        // next
      }
    }
    resolved.set(name, path);
  }
  return path;
}

export class CommandFailedError extends Error {
  override name = 'CommandFailedError';
  constructor(
    readonly argv: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    const detail = stderr.trim().split('\n').slice(-3).join(' / ') || `exit status ${exitCode}`;
    super(`${argv.slice(0, 5).join(' ')} failed: ${detail}`);
  }
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
}

export async function run(argv: string[], options: { input?: string; allowFailure?: boolean } = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  const result = await new Promise<CommandResult>((resolve, reject) => {
    const child = spawn(systemTool(file!), args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new CommandFailedError(argv, null, e.message)));
    child.on('close', (exitCode) => resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), exitCode }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
  if (result.exitCode !== 0 && !options.allowFailure) throw new CommandFailedError(argv, result.exitCode, result.stderr || result.stdout);
  return result;
}

// Runs a job's lifecycle scripts (bin/pre-start, bin/post-start, bin/post-deploy, bin/drain,
// bin/run for errands) as children, their output appended to the job's log directory.
import { spawn } from 'node:child_process';
import { accessSync, constants, createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AgentError } from './errors.ts';

export interface ScriptResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

export function hasScript(jobDir: string, name: string): boolean {
  try {
    accessSync(join(jobDir, 'bin', name), constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export async function runJobScript(opts: {
  job: string;
  jobDir: string;
  /** Names the log files (and bin/<script>, the command unless `command` is given). */
  script: string;
  /** An executable of the job's spec instead of bin/<script>. */
  command?: { executable: string; args: string[] };
  args?: string[];
  env?: Record<string, string>;
  logRoot: string;
  signal?: AbortSignal;
}): Promise<ScriptResult> {
  const path = opts.command?.executable ?? join(opts.jobDir, 'bin', opts.script);
  const args = opts.command?.args ?? opts.args ?? [];
  const logDir = join(opts.logRoot, opts.job);
  mkdirSync(logDir, { recursive: true });
  const outLog = createWriteStream(join(logDir, `${opts.script}.stdout.log`), { flags: 'a' });
  const errLog = createWriteStream(join(logDir, `${opts.script}.stderr.log`), { flags: 'a' });
  try {
    return await new Promise<ScriptResult>((resolve, reject) => {
      const child = spawn(path, args, {
        cwd: opts.jobDir,
        env: { ...process.env, ...opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        outLog.write(c);
      });
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
        errLog.write(c);
      });
      child.once('error', (e) => reject(new AgentError('script_failed', `running ${opts.job}/bin/${opts.script}: ${e.message}`, { cause: e })));
      child.once('close', (exitCode) => resolve({ exitCode, stdout, stderr }));
    });
  } finally {
    outLog.end();
    errLog.end();
  }
}

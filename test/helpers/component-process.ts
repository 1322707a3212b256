// Starts `ingot component <name> --config FILE` as a real child process for a test, finds
// its status port from its JSON log, and always kills it at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { scratchDir } from './tmp.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const INGOT_BIN = join(ROOT, 'bin/ingot.js');
export const PROBE_CLI = join(ROOT, 'test/fixtures/ingot-with-probe.ts');

export interface StartedComponent {
  proc: ChildProcess;
  statusPort: number;
  /** Every JSON log line so far. */
  logs: Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  statusUrl(path: string): string;
  auth: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export function writeConfig(label: string, config: unknown): string {
  const file = join(scratchDir(label), `${label}.yml`);
  writeFileSync(file, typeof config === 'string' ? config : stringify(config));
  return file;
}

/** Runs the CLI with args and collects its output (for commands that exit). */
export function runCli(args: string[], opts: { cli?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = opts.cli ?? INGOT_BIN;
  const argv = cli.endsWith('.ts') ? ['--import', 'tsx', cli, ...args] : [cli, ...args];
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 20_000, ...(opts.env ? { env: opts.env } : {}) });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export async function startComponentProcess(
  name: string,
  configFile: string,
  opts: { cli?: string; statusUser?: string; statusPassword?: string; readyTimeoutMs?: number } = {},
): Promise<StartedComponent> {
  const cli = opts.cli ?? INGOT_BIN;
  const argv = cli.endsWith('.ts') ? ['--import', 'tsx', cli] : [cli];
  const proc = spawn(process.execPath, [...argv, 'component', name, '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  let buffered = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ raw: line });
      }
      for (const w of waiters) w();
    }
  });
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => {
      for (const w of waiters) w();
      resolve({ code, signal });
    }),
  );

  const waitForLog = (predicate: (line: Record<string, unknown>) => boolean, timeoutMs = 15_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = (): boolean => {
        const hit = logs.find(predicate);
        if (hit) {
          done();
          resolve(hit);
          return true;
        }
        if (proc.exitCode !== null || proc.signalCode !== null) {
          done();
          reject(new Error(`${name} exited (${proc.exitCode ?? proc.signalCode}) before the awaited log line; stderr: ${stderr}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${name}: awaited log line not seen within ${timeoutMs} ms; stderr: ${stderr}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      if (!check()) waiters.add(check);
    });

  let statusPort: number;
  try {
    const started = await waitForLog((l) => l.msg === 'started' || l.msg === 'status server listening', opts.readyTimeoutMs);
    const listening = logs.find((l) => typeof l.status_port === 'number') ?? started;
    statusPort = listening.status_port as number;
    await waitForLog((l) => l.msg === 'started', opts.readyTimeoutMs);
  } catch (err) {
    // A component that never became ready must not outlive the test that started it.
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
    throw err;
  }
  const auth = 'Basic ' + Buffer.from(`${opts.statusUser ?? 'ingot'}:${opts.statusPassword ?? ''}`).toString('base64');
  return {
    proc,
    statusPort,
    logs,
    exited,
    auth,
    statusUrl: (path) => `http://127.0.0.1:${statusPort}${path}`,
    waitForLog,
    async kill(signal = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        await exited;
      }
    },
  };
}

/** Polls until `check` returns a truthy value or the deadline passes. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

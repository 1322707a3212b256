// Runs wrk and reads its report: requests per second and latency percentiles.
import { spawn } from 'node:child_process';

export interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

export interface WrkOptions {
  url: string;
  host?: string;
  seconds: number;
  connections: number;
  threads: number;
  /** More request headers, `Name: value`. */
  headers?: string[];
  /** wrk's per-request timeout (its default is 2 s). */
  timeoutS?: number;
}

export function runWrk(opts: WrkOptions): Promise<WrkResult> {
  const args = ['-t', String(opts.threads), '-c', String(opts.connections), '-d', `${opts.seconds}s`, '--latency'];
  if (opts.host) args.push('-H', `Host: ${opts.host}`);
  for (const h of opts.headers ?? []) args.push('-H', h);
  if (opts.timeoutS !== undefined) args.push('--timeout', `${opts.timeoutS}s`);
  args.push(opts.url);
  return new Promise((resolve, reject) => {
    // Bounded: wrk ends by itself after its duration; this is for a wrk that hangs.
    const proc = spawn('/usr/bin/wrk', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: (opts.seconds + 30) * 1000 });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
    proc.on('error', reject);
    proc.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited with ${code}:\n${out}`));
      try {
        resolve(parseWrk(out));
      } catch (err) {
        reject(err);
      }
    });
  });
}

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p50 = /^\s+50%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out);
  if (!rps || !p50 || !p99) throw new Error(`Reading wrk's report: no requests/sec or latency distribution in:\n${out}`);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  return {
    rps: Number(rps[1]),
    p50Ms: toMs(Number(p50[1]), p50[2]!),
    p99Ms: toMs(Number(p99[1]), p99[2]!),
    errors: errors ? errors.slice(1).reduce((a, n) => a + Number(n), 0) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

function toMs(v: number, unit: string): number {
  return unit === 'us' ? v / 1000 : unit === 's' ? v * 1000 : v;
}

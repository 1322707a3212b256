// A steady, bounded load on one app through the balancer, in a process of its own (so the
// roll's CLI work and this process's timers never delay each other): about `rate` requests a
// second, at most `max` in all and for at most `seconds`, each on a fresh connection (a
// client's keep-alive connection to a router that is going away is the client's retry to
// make, not a failure of the platform's drain). SIGTERM ends it; the last line of its output
// is the result as JSON.
//
//   node --import tsx bench/rolling-upgrade/load.ts --host APP.localhost [--port 8080]
//        [--rate 100] [--max 200000] [--seconds 3600]
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { captured } from '../../test/helpers/captured.ts';

export interface LoadOptions {
  host: string;
  port: number;
  /** Requests started per second. */
  rate: number;
  /** Bound on requests in all. */
  max: number;
  /** Bound on the run's length. */
  seconds: number;
}

export interface LoadResult {
  requests: number;
  failed: number;
  max_latency_ms: number;
  /** The first few failures: when (ms since start) and why. */
  failures: Array<{ at_ms: number; reason: string }>;
}

const REQUEST_TIMEOUT_MS = 10_000;
/** More in flight than this means the platform stalls; starting more would only pile up. */
const MAX_IN_FLIGHT = 200;

function once(o: LoadOptions): Promise<{ ok: boolean; reason: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: o.port, path: '/', headers: { Host: o.host }, agent: false, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ok: res.statusCode === 200, reason: `HTTP ${res.statusCode}` }));
      res.on('error', (err) => resolve({ ok: false, reason: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', (err) => resolve({ ok: false, reason: err.message }));
    req.end();
  });
}

/** Runs until `signal` aborts or a bound is reached; resolves when every request has ended. */
export async function runLoad(o: LoadOptions, signal: AbortSignal): Promise<LoadResult> {
  const result: LoadResult = { requests: 0, failed: 0, max_latency_ms: 0, failures: [] };
  const started = performance.now();
  const inFlight = new Set<Promise<void>>();
  const intervalMs = 1000 / o.rate;
  let next = started;
  while (!signal.aborted && result.requests < o.max && performance.now() - started < o.seconds * 1000) {
    if (inFlight.size < MAX_IN_FLIGHT) {
      result.requests++;
      const t0 = performance.now();
      const p = once(o).then(({ ok, reason }) => {
        const ms = performance.now() - t0;
        result.max_latency_ms = Math.max(result.max_latency_ms, Math.round(ms));
        if (!ok) {
          result.failed++;
          if (result.failures.length < 20) result.failures.push({ at_ms: Math.round(t0 - started), reason });
        }
        inFlight.delete(p);
      });
      inFlight.add(p);
    }
    // Paced against the clock, so a slow moment does not lower the rate after it.
    next += intervalMs;
    await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
  }
  await Promise.all(inFlight);
  return result;
}

export interface LoadProcess {
  proc: ChildProcess;
  /** SIGTERM, then the result it prints. */
  stop(): Promise<LoadResult>;
}

/** Starts this file as a process of its own. */
export function spawnLoad(o: LoadOptions, cwd: string): LoadProcess {
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--host', o.host, '--port', String(o.port), '--rate', String(o.rate), '--max', String(o.max), '--seconds', String(o.seconds)];
  const proc = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const { output, exited } = captured(proc);
  return {
    proc,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
      const out = output();
      const last = out.trimEnd().split('\n').at(-1) ?? '';
      try {
        return JSON.parse(last) as LoadResult;
      } catch {
        throw new Error(`the load process printed no result:\n${out.slice(-2000)}`);
      }
    },
  };
}

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} ${raw}: a positive number`);
  return n;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { host: { type: 'string' }, port: { type: 'string' }, rate: { type: 'string' }, max: { type: 'string' }, seconds: { type: 'string' } },
  });
  if (!values.host) {
    process.stderr.write('load: --host APP_HOST is required\n');
    process.exit(2);
  }
  const ac = new AbortController();
  process.on('SIGTERM', () => ac.abort());
  process.on('SIGINT', () => ac.abort());
  const o: LoadOptions = {
    host: values.host,
    port: positive('port', values.port, 8080),
    rate: positive('rate', values.rate, 100),
    max: positive('max', values.max, 200_000),
    seconds: positive('seconds', values.seconds, 3600),
  };
  const result = await runLoad(o, ac.signal);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

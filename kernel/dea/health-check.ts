// Health checks that take an instance from STARTING to RUNNING: `port` (the default: the
// port accepts a connection), `http` (a GET of the endpoint answers 2xx) or `process` (it is
// alive). Each polls until it passes, the instance dies, or the timeout ends.
import { connect } from 'node:net';
import { request } from 'node:http';

export type HealthCheckType = 'port' | 'http' | 'process';

export interface HealthCheckTarget {
  host: string;
  port: number;
  type: HealthCheckType;
  /** Path for `http` checks. */
  endpoint?: string;
  timeoutMs: number;
  /** False once the instance has exited: no point in waiting further. */
  alive: () => boolean;
}

export type HealthResult = { healthy: true } | { healthy: false; reason: string };

/** Interval between attempts: short, since the start path is what scale-from-zero waits on. */
const ATTEMPT_INTERVAL_MS = 100;

export async function waitUntilHealthy(target: HealthCheckTarget): Promise<HealthResult> {
  const deadline = Date.now() + target.timeoutMs;
  let last = 'no attempt made';
  for (;;) {
    if (!target.alive()) return { healthy: false, reason: 'the instance exited before it was healthy' };
    if (target.type === 'process') return { healthy: true };
    const remaining = deadline - Date.now();
    const attempt = target.type === 'http' ? await httpOk(target, Math.min(2000, remaining)) : await portOpen(target, Math.min(1000, remaining));
    if (attempt === true) return { healthy: true };
    last = attempt;
    if (Date.now() + ATTEMPT_INTERVAL_MS >= deadline) {
      return { healthy: false, reason: `health check (${target.type}) did not pass within ${Math.round(target.timeoutMs / 1000)} s: ${last}` };
    }
    await new Promise((r) => setTimeout(r, ATTEMPT_INTERVAL_MS));
  }
}

function portOpen(t: HealthCheckTarget, timeoutMs: number): Promise<true | string> {
  return new Promise((resolve) => {
    const socket = connect({ host: t.host, port: t.port });
    const done = (result: true | string): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(Math.max(1, timeoutMs), () => done(`connect to port ${t.port} timed out`));
    socket.once('connect', () => done(true));
    socket.once('error', (err: NodeJS.ErrnoException) => done(`port ${t.port}: ${err.code ?? err.message}`));
  });
}

function httpOk(t: HealthCheckTarget, timeoutMs: number): Promise<true | string> {
  return new Promise((resolve) => {
    const req = request({ host: t.host, port: t.port, path: t.endpoint ?? '/', method: 'GET', timeout: Math.max(1, timeoutMs), agent: false }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve(code >= 200 && code < 300 ? true : `GET ${t.endpoint ?? '/'} answered ${code}`);
    });
    req.once('timeout', () => req.destroy(new Error('timed out')));
    req.once('error', (err: NodeJS.ErrnoException) => resolve(`GET ${t.endpoint ?? '/'}: ${err.code ?? err.message}`));
    req.end();
  });
}

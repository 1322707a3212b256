// Router benchmark: wrk against a small keep-alive backend three ways in one run — directly,
// through nginx (as many workers as the router has) and through the Ingot router — first
// with 10 routes registered, then with 100,000. Loopback only, bounded load. Prints req/s and
// p50/p99 for each, and as its last line the router/nginx throughput ratios and the p99 the
// router adds over going direct (the worse of its two runs). Run: npm run bench -- router
// (or npx tsx bench/router/main.ts).
//
// Options (environment): BENCH_SECONDS (10), BENCH_CONNECTIONS (50), BENCH_WORKERS (CPUs).
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from 'nats';
import { stringify } from 'yaml';
import { writeNginxConfig } from './nginx.ts';
import { BenchProcesses, freePort, waitFor } from '../processes.ts';
import { runWrk, type WrkResult } from './wrk.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const WORKERS = Number(process.env.BENCH_WORKERS ?? availableParallelism());
const WARMUP_SECONDS = 2;
const MANY_ROUTES = 100_000;
const URIS_PER_MESSAGE = 1000;
const REGISTER_INTERVAL_S = 20;

const dir = mkdtempSync(join(tmpdir(), 'ingot-bench-router-'));
const procs = new BenchProcesses(dir, 'SIGTERM');
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

interface Row {
  target: string;
  routes: string;
  result: WrkResult;
}

async function main(): Promise<void> {
  const natsPort = await freePort();
  const backendPort = await freePort();
  const routerPort = await freePort();
  const statusPort = await freePort();
  const nginxPort = await freePort();
  const natsPassword = randomBytes(8).toString('hex');
  const statusPassword = randomBytes(8).toString('hex');

  writeFileSync(join(dir, 'nats.conf'), `listen: 127.0.0.1:${natsPort}\nauthorization { user: "kernel", password: "${natsPassword}" }\nmax_payload: 1048576\n`);
  await procs.start('nats-server', '/usr/sbin/nats-server', ['-c', join(dir, 'nats.conf')], (out) => out.includes('Server is ready'));
  await procs.start('backend', process.execPath, ['-e', BACKEND_SOURCE, String(backendPort)], (out) => out.includes('ready'));

  const routerConfig = join(dir, 'router.yml');
  writeFileSync(
    routerConfig,
    stringify({
      nats: { servers: [`nats://127.0.0.1:${natsPort}`], user: 'kernel', password: natsPassword },
      status: { host: '127.0.0.1', port: statusPort, user: 'bench', password: statusPassword },
      logging: { level: 'warn' },
      port: routerPort,
      host: '127.0.0.1',
      workers: WORKERS,
      minimum_register_interval_s: REGISTER_INTERVAL_S,
      drain_wait_s: 0,
      access_log_file: join(dir, 'router-access.log'),
    }),
  );
  const router = await procs.start('router', process.execPath, [join(ROOT, 'bin/ingot.js'), 'component', 'router', '--config', routerConfig], () => false, false);
  const varz = async (): Promise<Record<string, unknown>> => {
    const res = await fetch(`http://127.0.0.1:${statusPort}/varz`, { headers: { authorization: 'Basic ' + Buffer.from(`bench:${statusPassword}`).toString('base64') } });
    return (await res.json()) as Record<string, unknown>;
  };
  await waitFor('the router to serve', 60_000, async () => (await fetch(`http://127.0.0.1:${statusPort}/healthz`).catch(() => undefined))?.status === 200, router);

  const nc = await connect({ servers: `nats://127.0.0.1:${natsPort}`, user: 'kernel', pass: natsPassword });
  const fewHosts = Array.from({ length: 10 }, (_, i) => `app-${i}.bench.test`);
  const manyHosts = Array.from({ length: MANY_ROUTES }, (_, i) => `route-${String(i).padStart(6, '0')}.bench.test`);
  let registered = fewHosts;
  const register = (): void => publishRoutes(nc, registered, backendPort);
  register();
  const refresher = setInterval(register, REGISTER_INTERVAL_S * 1000);
  await waitFor('10 routes in the router', 30_000, async () => (await varz()).routes === 10, router);

  const rows: Row[] = [];
  const measure = async (target: string, routes: string, url: string, host?: string): Promise<WrkResult> => {
    const opts = { url, seconds: WARMUP_SECONDS, connections: CONNECTIONS, threads: 1, ...(host ? { host } : {}) };
    await runWrk(opts);
    const result = await runWrk({ ...opts, seconds: SECONDS });
    if (result.non2xx > 0 || result.errors > 0) {
      throw new Error(`${target} (${routes} routes) answered ${result.non2xx} non-2xx responses and had ${result.errors} socket errors.`);
    }
    rows.push({ target, routes, result });
    process.stderr.write(`  ${target.padEnd(7)} ${routes.padStart(6)} routes: ${Math.round(result.rps)} req/s, p99 ${result.p99Ms.toFixed(2)} ms\n`);
    return result;
  };

  process.stderr.write(`router bench: wrk 1 thread, ${CONNECTIONS} connections, ${SECONDS} s per run (after ${WARMUP_SECONDS} s warm-up); ${WORKERS} router workers, ${WORKERS} nginx workers\n`);
  const direct = await measure('direct', '-', `http://127.0.0.1:${backendPort}/`);

  const fewHost = fewHosts[3]!;
  let nginx = await startNginx(nginxPort, backendPort, fewHosts);
  const nginxFew = await measure('nginx', '10', `http://127.0.0.1:${nginxPort}/`, fewHost);
  await procs.stop(nginx);
  const routerFew = await measure('router', '10', `http://127.0.0.1:${routerPort}/`, fewHost);

  registered = manyHosts;
  register();
  await waitFor(`${MANY_ROUTES} routes in the router`, 120_000, async () => (await varz()).routes === MANY_ROUTES + 10, router);
  const manyHost = manyHosts[54_321]!;
  nginx = await startNginx(nginxPort, backendPort, [...fewHosts, ...manyHosts]);
  const nginxMany = await measure('nginx', '100k', `http://127.0.0.1:${nginxPort}/`, manyHost);
  await procs.stop(nginx);
  const routerMany = await measure('router', '100k', `http://127.0.0.1:${routerPort}/`, manyHost);
  clearInterval(refresher);
  await nc.close();

  console.log('');
  console.log(`target   routes      req/s   p50 ms   p99 ms`);
  for (const r of rows) {
    console.log(`${r.target.padEnd(8)} ${r.routes.padStart(6)} ${Math.round(r.result.rps).toString().padStart(10)} ${r.result.p50Ms.toFixed(2).padStart(8)} ${r.result.p99Ms.toFixed(2).padStart(8)}`);
  }
  // "Added" is what the router puts on top of going direct: its worse p99 of the two runs minus direct's.
  const added = Math.max(routerFew.p99Ms, routerMany.p99Ms) - direct.p99Ms;
  console.log(`p99 router - nginx: ${(routerFew.p99Ms - nginxFew.p99Ms).toFixed(2)} ms (10 routes), ${(routerMany.p99Ms - nginxMany.p99Ms).toFixed(2)} ms (100k routes)`);
  console.log(
    `router/nginx throughput: ${(routerFew.rps / nginxFew.rps).toFixed(2)} (10 routes), ${(routerMany.rps / nginxMany.rps).toFixed(2)} (100k routes); p99 added: ${added.toFixed(2)} ms`,
  );
}

/** The backend: a small keep-alive HTTP server, as plain as it gets. */
const BACKEND_SOURCE = `
const http = require('node:http');
const body = Buffer.from('hello world\\n');
http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
}).listen(Number(process.argv[1]), '127.0.0.1', () => console.log('ready'));
`;

function publishRoutes(nc: NatsConnection, hosts: string[], port: number): void {
  for (let i = 0; i < hosts.length; i += URIS_PER_MESSAGE) {
    const uris = hosts.slice(i, i + URIS_PER_MESSAGE);
    const app = `bench-app-${i / URIS_PER_MESSAGE}`;
    nc.publish('router.register', JSON.stringify({ host: '127.0.0.1', port, uris, app_id: app, instance_id: `${app}-0`, index: 0 }));
  }
}

async function startNginx(port: number, backendPort: number, hosts: string[]): Promise<ChildProcess> {
  const conf = writeNginxConfig({ dir, port, backendPort, workers: WORKERS, hosts, accessLog: true });
  const proc = await procs.start('nginx', '/usr/sbin/nginx', ['-p', dir, '-c', conf], () => false, false);
  await waitFor('nginx to listen', 30_000, async () => (await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined)) !== undefined, proc);
  return proc;
}





main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`router bench failed: ${err.message}`);
    process.exit(1);
  },
);

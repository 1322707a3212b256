// Balancer benchmark: wrk against a small keep-alive Node backend directly and through the
// local balancer (orchestrator/cpi/local/balancer.ts, a real `ingot balancer` process), first
// with keep-alive connections (the byte-pumping cost), then with `Connection: close` (the
// per-connection cost: accept, pick, connect upstream). Loopback only, bounded runs. Prints
// req/s and p50/p99 for each, and as its last line the balancer/direct throughput ratios and
// the p99 the balancer adds. Run: npm run bench -- balancer (or npx tsx bench/balancer/main.ts).
//
// Options (environment): BENCH_SECONDS (5), BENCH_CONNECTIONS (50).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { BenchProcesses, freePort, waitFor } from '../processes.ts';
import { runWrk, type WrkResult } from '../router/wrk.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'bin/ingot.js');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const WARMUP_SECONDS = 1;

const dir = mkdtempSync(join(tmpdir(), 'ingot-bench-balancer-'));
// cwd ROOT: `--import tsx` resolves from there.
const procs = new BenchProcesses(ROOT);
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

/** The backend: a small keep-alive HTTP server, as plain as it gets, with a /healthz. */
const BACKEND_SOURCE = `
const http = require('node:http');
const body = Buffer.from('hello world\\n');
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60000;
server.listen(Number(process.argv[1]), '127.0.0.1', () => console.log('ready'));
`;

interface Row {
  target: string;
  mode: string;
  result: WrkResult;
}

async function main(): Promise<void> {
  const backendPort = await freePort();
  const balancerPort = await freePort();
  const statusPort = await freePort();
  await procs.start('backend', process.execPath, ['-e', BACKEND_SOURCE, String(backendPort)], (out) => out.includes('ready'));

  const config = join(dir, 'balancer.yml');
  writeFileSync(
    config,
    stringify({
      listen: { host: '127.0.0.1', port: balancerPort },
      status: { port: statusPort },
      drain_timeout_s: 1,
      backends: [{ host: '127.0.0.1', port: backendPort, health: { port: backendPort, path: '/healthz' } }],
    }),
  );
  const balancer = await procs.start('balancer', process.execPath, [CLI, 'balancer', '--config', config], (out) => out.includes('balancer listening'));
  await waitFor('the balancer to see its backend up', 10_000, async () => {
    const res = await fetch(`http://127.0.0.1:${statusPort}/varz`);
    return ((await res.json()) as { healthy: number }).healthy === 1;
  }, balancer);

  const rows: Row[] = [];
  const measure = async (target: string, mode: 'keep-alive' | 'close', port: number): Promise<WrkResult> => {
    const url = `http://127.0.0.1:${port}/`;
    await wrk(url, WARMUP_SECONDS, mode);
    const result = await wrk(url, SECONDS, mode);
    if (result.non2xx > 0) throw new Error(`${target} (${mode}) answered ${result.non2xx} non-2xx responses.`);
    rows.push({ target, mode, result });
    process.stderr.write(`  ${target.padEnd(9)} ${mode.padEnd(10)} ${Math.round(result.rps)} req/s, p99 ${result.p99Ms.toFixed(2)} ms, ${result.errors} socket errors\n`);
    return result;
  };

  process.stderr.write(`balancer bench: wrk 1 thread, ${CONNECTIONS} connections, ${SECONDS} s per run (after ${WARMUP_SECONDS} s warm-up)\n`);
  const directKeep = await measure('direct', 'keep-alive', backendPort);
  const balancedKeep = await measure('balancer', 'keep-alive', balancerPort);
  const directClose = await measure('direct', 'close', backendPort);
  const balancedClose = await measure('balancer', 'close', balancerPort);

  console.log('');
  console.log('target    mode            req/s   p50 ms   p99 ms   errors');
  for (const r of rows) {
    console.log(
      `${r.target.padEnd(9)} ${r.mode.padEnd(10)} ${Math.round(r.result.rps).toString().padStart(10)} ${r.result.p50Ms.toFixed(2).padStart(8)} ${r.result.p99Ms.toFixed(2).padStart(8)} ${String(r.result.errors).padStart(8)}`,
    );
  }
  console.log(
    `balancer/direct throughput: ${(balancedKeep.rps / directKeep.rps).toFixed(2)} (keep-alive), ${(balancedClose.rps / directClose.rps).toFixed(2)} (close); ` +
      `p99 added: ${(balancedKeep.p99Ms - directKeep.p99Ms).toFixed(2)} ms (keep-alive), ${(balancedClose.p99Ms - directClose.p99Ms).toFixed(2)} ms (close)`,
  );
}





function wrk(url: string, seconds: number, mode: 'keep-alive' | 'close'): Promise<WrkResult> {
  return runWrk({ url, seconds, connections: CONNECTIONS, threads: 1, timeoutS: 5, headers: mode === 'close' ? ['Connection: close'] : [] });
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`balancer bench failed: ${err.message}`);
    process.exit(1);
  },
);

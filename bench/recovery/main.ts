// bench/recovery: how fast a killed app heals. Brings up a local kernel (nats-server, router,
// controller, DEA with namespace containers — the e2e platform — plus a health manager),
// pushes the static example, then kills its process with SIGKILL `KILLS` times (default 50)
// and measures, through the router, how long until its route is gone (404 unknown_route) and
// until it answers again (health manager → controller → DEA). Prints median and p99 of each
// against the aims of issue 6 (route gone within 100 ms, running and routable within 2 s).
import { fileURLToPath } from 'node:url';
import { appPids } from '../../test/helpers/app-processes.ts';
import { startPlatform, type Platform } from '../../test/helpers/platform.ts';
import { ADMIN, BULK } from '../../test/helpers/cc-controller.ts';
import { startComponentProcess, writeConfig, type StartedComponent } from '../../test/helpers/component-process.ts';

const KILLS = Number(process.env.KILLS ?? 50);
const PER_KILL_TIMEOUT_MS = 30_000;
const EXAMPLE = fileURLToPath(new URL('../../examples/static-site', import.meta.url));
const APP = 'healme';

function appPid(name: string): number | undefined {
  return appPids(name, 'staticfile/server.cjs')[0];
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function main(): Promise<void> {
  let p: Platform | undefined;
  let hm: StartedComponent | undefined;
  try {
    p = await startPlatform({ label: 'recovery' });
    const hmConfig = writeConfig('recovery-hm', {
      nats: p.nats.componentConfig,
      status: { host: '127.0.0.1', port: 0, user: 'ingot', password: 'hm-status-pw' },
      bulk_api: { url: p.cc.url, user: BULK.user, password: BULK.password },
      analysis_interval_s: 0.5,
      heartbeat_timeout_s: 10,
      quiet_period_s: 1,
      // 50 kills are 50 crashes of one index: restart each at once, as a first crash is.
      crash_backoff: { immediate_restarts: KILLS + 10 },
    });
    hm = await startComponentProcess('health-manager', hmConfig, { statusPassword: 'hm-status-pw', readyTimeoutMs: 60_000 });
    for (const args of [['api', p.apiUrl], ['login', '-u', ADMIN.user, '-p', ADMIN.password], ['push', APP, '-p', EXAMPLE, '-m', '64M']]) {
      const r = await p.cli(args, 180_000);
      if (r.code !== 0) throw new Error(`ingot ${args[0]}: ${r.stderr}`);
    }
    const host = p.appHost(APP);
    const gone: number[] = [];
    const back: number[] = [];
    for (let i = 0; i < KILLS; i++) {
      let pid: number | undefined;
      const waitPidUntil = Date.now() + PER_KILL_TIMEOUT_MS;
      while (!(pid = appPid(APP)) || (await p.get(host, '/', 2000)).status !== 200) {
        if (Date.now() > waitPidUntil) throw new Error(`kill ${i + 1}: the app never came back`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const t0 = performance.now();
      process.kill(pid, 'SIGKILL');
      let goneAt: number | undefined;
      for (;;) {
        const r = await p.get(host, '/', 2000).catch(() => ({ status: 0, headers: {} as Record<string, unknown> }));
        const now = performance.now();
        if (goneAt === undefined && r.status === 404) goneAt = now;
        if (r.status === 200 && goneAt !== undefined && appPid(APP) !== pid) {
          gone.push(goneAt - t0);
          back.push(now - t0);
          break;
        }
        if (now - t0 > PER_KILL_TIMEOUT_MS) throw new Error(`kill ${i + 1}: not healed within ${PER_KILL_TIMEOUT_MS} ms`);
        await new Promise((r) => setTimeout(r, 2));
      }
      process.stdout.write(`kill ${String(i + 1).padStart(2)}: route gone ${gone.at(-1)!.toFixed(0).padStart(5)} ms, routable again ${back.at(-1)!.toFixed(0).padStart(5)} ms\n`);
    }
    const g = [...gone].sort((a, b) => a - b);
    const b = [...back].sort((a, b) => a - b);
    console.log('');
    console.log(`route gone after kill: median ${percentile(g, 50).toFixed(0)} ms, p99 ${percentile(g, 99).toFixed(0)} ms (aim 100 ms: ${(percentile(g, 50) / 100).toFixed(2)}× at the median)`);
    console.log(`routable again:        median ${percentile(b, 50).toFixed(0)} ms, p99 ${percentile(b, 99).toFixed(0)} ms (aim 2000 ms: ${(percentile(b, 50) / 2000).toFixed(2)}× at the median)`);
    console.log(`recovery over ${KILLS} kills: route gone median ${percentile(g, 50).toFixed(0)} / p99 ${percentile(g, 99).toFixed(0)} ms; routable again median ${percentile(b, 50).toFixed(0)} / p99 ${percentile(b, 99).toFixed(0)} ms`);
  } finally {
    await hm?.kill('SIGTERM');
    await p?.stop();
  }
}

await main();
process.exit(0);

// Vitals as BOSH reports them (strings, percentages): load, CPU since the last sample,
// memory, swap, disks of <root> and the persistent store.
import { statfsSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem, uptime } from 'node:os';
import type { Vitals } from './protocol.ts';

function cpuTimes(): { user: number; sys: number; idle: number; total: number } {
  let user = 0, sys = 0, idle = 0, total = 0;
  for (const c of cpus()) {
    user += c.times.user + c.times.nice;
    sys += c.times.sys + c.times.irq;
    idle += c.times.idle;
    total += c.times.user + c.times.nice + c.times.sys + c.times.irq + c.times.idle;
  }
  return { user, sys, idle, total };
}

export class VitalsSampler {
  private last = cpuTimes();

  constructor(private readonly disks: Record<string, string>) {}

  sample(): Vitals {
    const now = cpuTimes();
    const dt = Math.max(1, now.total - this.last.total);
    const cpu = { user: pct((now.user - this.last.user) / dt), sys: pct((now.sys - this.last.sys) / dt), wait: '0.0' };
    this.last = now;
    const total = totalmem();
    const used = total - freemem();
    const disk: Vitals['disk'] = {};
    for (const [name, path] of Object.entries(this.disks)) {
      try {
        const s = statfsSync(path);
        disk[name] = { percent: String(Math.round(((s.blocks - s.bfree) / Math.max(1, s.blocks)) * 100)) };
      } catch {
        // a disk not there (yet) is simply not reported
      }
    }
    const [l1, l5, l15] = loadavg();
    return {
      load: [(l1 ?? 0).toFixed(2), (l5 ?? 0).toFixed(2), (l15 ?? 0).toFixed(2)],
      cpu,
      mem: { percent: String(Math.round((used / total) * 100)), kb: String(Math.round(used / 1024)) },
      swap: { percent: '0', kb: '0' },
      disk,
      uptime: { secs: Math.round(uptime()) },
    };
  }
}

function pct(x: number): string {
  return (Math.max(0, x) * 100).toFixed(1);
}

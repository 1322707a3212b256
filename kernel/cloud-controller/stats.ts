// Per-instance stats of a process, pure: the dea.find.droplet replies folded into one row per
// desired index (the best reply when several answer for an index; DOWN when none does), and
// the health manager's word on crash loops: a flapping index shows as CRASHED with its crash
// count and when the health manager will next restart it.
import type { DeaFindDropletReply, HealthmanagerStatusReply } from '../bus/mod.ts';

export interface InstanceStats {
  type: string;
  index: number;
  state: string;
  host: string | null;
  port: number | null;
  instance_ports: Array<{ external: number; internal: number }>;
  uptime: number;
  mem_quota: number | null;
  disk_quota: number | null;
  fds_quota: number;
  isolation_segment: null;
  details: string | null;
  usage: { time: string; cpu: number; mem: number; disk: number } | Record<string, never>;
  instance_id?: string;
  version?: string;
}

const RANK: Record<string, number> = { RUNNING: 5, STARTING: 4, EVACUATING: 3, STOPPING: 2, CRASHED: 1, STOPPED: 0 };

export function instanceStats(
  type: string,
  instances: number,
  replies: DeaFindDropletReply[],
  limits: { memory_in_mb: number; disk_in_mb: number },
  now: Date,
  flapping: HealthmanagerStatusReply['flapping'] = [],
): InstanceStats[] {
  const flaps = new Map(flapping.map((f) => [f.index, f]));
  const best = new Map<number, DeaFindDropletReply>();
  for (const r of replies) {
    if (r.index >= instances) continue;
    const cur = best.get(r.index);
    if (!cur || (RANK[r.state] ?? 0) > (RANK[cur.state] ?? 0) || (r.state === cur.state && r.state_timestamp > cur.state_timestamp)) best.set(r.index, r);
  }
  const out: InstanceStats[] = [];
  for (let index = 0; index < instances; index++) {
    const r = best.get(index);
    const flap = flaps.get(index);
    if (flap && (!r || r.state === 'CRASHED')) {
      out.push({ type, index, state: 'CRASHED', host: null, port: null, instance_ports: [], uptime: 0, mem_quota: limits.memory_in_mb * 1024 * 1024, disk_quota: limits.disk_in_mb * 1024 * 1024, fds_quota: 16384, isolation_segment: null, details: flappingDetails(flap, now), usage: {} });
      continue;
    }
    if (!r) {
      out.push({ type, index, state: 'DOWN', host: null, port: null, instance_ports: [], uptime: 0, mem_quota: limits.memory_in_mb * 1024 * 1024, disk_quota: limits.disk_in_mb * 1024 * 1024, fds_quota: 16384, isolation_segment: null, details: null, usage: {} });
      continue;
    }
    const s = r.stats;
    out.push({
      type,
      index,
      state: r.state,
      host: r.host ?? null,
      port: r.port ?? null,
      instance_ports: r.port ? [{ external: r.port, internal: 8080 }] : [],
      uptime: Math.round(s?.uptime_s ?? 0),
      mem_quota: s?.memory_quota_bytes ?? limits.memory_in_mb * 1024 * 1024,
      disk_quota: s?.disk_quota_bytes ?? limits.disk_in_mb * 1024 * 1024,
      fds_quota: 16384,
      isolation_segment: null,
      details: flap ? flappingDetails(flap, now) : null,
      // CF reports cpu as a fraction of one core.
      usage: s ? { time: now.toISOString().replace(/\.\d{3}Z$/, 'Z'), cpu: s.cpu_percent / 100, mem: s.memory_bytes, disk: s.disk_bytes } : {},
      instance_id: r.instance_id,
      version: r.version,
    });
  }
  return out;
}

/** `flapping: crashed 5 times, next restart in 12 s` */
export function flappingDetails(f: HealthmanagerStatusReply['flapping'][number], now: Date): string {
  const times = `crashed ${f.crash_count} ${f.crash_count === 1 ? 'time' : 'times'}`;
  if (f.next_restart_at === undefined) return `flapping: ${times}`;
  const inS = Math.max(0, Math.ceil(f.next_restart_at - now.getTime() / 1000));
  return `flapping: ${times}, next restart in ${inS} s`;
}

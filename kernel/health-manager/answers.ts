// Answers to `healthmanager.status` (an app's crashed instances and flapping indices) and
// `healthmanager.health` (desired and running counts), from the last round's analysis and
// the real state it saw. Pure, so what a CLI or the controller is told matches what the HM
// acted on. Times go out in unix seconds, as every time on the bus.
import type { HealthmanagerHealth, HealthmanagerHealthReply, HealthmanagerStatus, HealthmanagerStatusReply } from '../bus/mod.ts';
import type { Analysis, ObservedInstance, RealSnapshot } from './types.ts';

export interface Round {
  analysis: Analysis;
  real: RealSnapshot;
  at: number;
  heartbeat_timeout_ms: number;
}

const seconds = (ms: number): number => Math.round(ms / 10) / 100;

function heardOf(round: Round | undefined, appId: string, version: string | undefined): ObservedInstance[] {
  if (!round) return [];
  return round.real.instances.filter(
    (i) => i.app_id === appId && (version === undefined || i.version === version) && round.at - i.heard_at < round.heartbeat_timeout_ms,
  );
}

export function statusReply(req: HealthmanagerStatus, round: Round | undefined): HealthmanagerStatusReply {
  const report = round?.analysis.apps.get(req.app_id);
  const version = req.version ?? report?.version;
  const crashed = heardOf(round, req.app_id, version)
    .filter((i) => i.state === 'CRASHED')
    .sort((a, b) => a.index - b.index || a.state_timestamp - b.state_timestamp)
    .map((i) => ({ instance_id: i.instance_id, index: i.index, version: i.version, since: i.state_timestamp }));
  const flapping = (report?.flapping ?? [])
    .filter((f) => version === undefined || f.version === version)
    .map((f) => ({
      index: f.index,
      version: f.version,
      crash_count: f.crash_count,
      since: seconds(f.since),
      ...(f.next_restart_at !== undefined ? { next_restart_at: seconds(f.next_restart_at) } : {}),
    }));
  return {
    app_id: req.app_id,
    ...(version !== undefined ? { version } : {}),
    crashed: req.state === 'FLAPPING' ? [] : crashed,
    flapping: req.state === 'CRASHED' ? [] : flapping,
  };
}

export function healthReply(req: HealthmanagerHealth, round: Round | undefined): HealthmanagerHealthReply {
  return {
    droplets: req.droplets.map((d) => {
      const report = round?.analysis.apps.get(d.app_id);
      const version = d.version ?? report?.version;
      const desired = report && version === report.version ? report.desired : 0;
      const heard = heardOf(round, d.app_id, version);
      const running = new Set(
        heard.filter((i) => (i.state === 'RUNNING' || i.state === 'EVACUATING') && (desired === 0 || i.index < desired)).map((i) => i.index),
      ).size;
      return {
        app_id: d.app_id,
        ...(version !== undefined ? { version } : {}),
        desired,
        running,
        crashed: heard.filter((i) => i.state === 'CRASHED').length,
        flapping: (report?.flapping ?? []).some((f) => f.version === version),
      };
    }),
  };
}

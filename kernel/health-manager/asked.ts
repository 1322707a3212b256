// What the health managers have already asked the controllers for. Every HM hears every
// request on `cloudcontrollers.hm.requests` (outside the controllers' queue group) and
// records it here, its own and its peers' alike, so no HM repeats a START or STOP another
// has just sent while its effect cannot have reached a heartbeat yet.
import type { HmRequest } from '../bus/mod.ts';
import { startKey, type AskedSnapshot } from './types.ts';

export class AskedMemory {
  private readonly starts = new Map<string, number>();
  private readonly stops = new Map<string, number>();

  record(req: HmRequest, now: number): void {
    if (req.op === 'START') {
      for (const index of req.indices ?? []) this.starts.set(startKey(req.app_id, req.version, index), now);
    } else {
      for (const id of req.instance_ids ?? []) this.stops.set(id, now);
    }
  }

  /**
   * Forgets requests older than `forgetAfterMs`, except the START of an index whose crash
   * record still lives: the analysis compares that START with the last crash to tell an
   * unanswered crash from one already restarted.
   */
  prune(now: number, forgetAfterMs: number, keepStart: (key: string) => boolean): void {
    for (const [k, at] of this.starts) if (now - at >= forgetAfterMs && !keepStart(k)) this.starts.delete(k);
    for (const [k, at] of this.stops) if (now - at >= forgetAfterMs) this.stops.delete(k);
  }

  snapshot(): AskedSnapshot {
    return { starts: new Map(this.starts), stops: new Map(this.stops) };
  }
}

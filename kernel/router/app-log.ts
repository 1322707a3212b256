// Router lines on an app's log stream (logs.<app_id>, source RTR) are for the people reading
// `ingot logs`, not a metrics feed: publishing one NATS message per request would cost more
// than proxying the request. So each app gets at most a set number of lines per second from
// each proxy process; the rest are counted, and a line saying how many were left out follows.
// Pure: time comes in as arguments.

interface Window {
  second: number;
  sent: number;
  dropped: number;
}

export class AppLogLimiter {
  private readonly windows = new Map<string, Window>();
  private pendingReports: Array<[string, number]> = [];

  constructor(private readonly perSecond: number) {}

  /** True when a line for `appId` may go out at `now` (ms). */
  admit(appId: string, now: number): boolean {
    const second = Math.floor(now / 1000);
    let w = this.windows.get(appId);
    if (w === undefined) {
      w = { second, sent: 0, dropped: 0 };
      this.windows.set(appId, w);
    } else if (w.second !== second) {
      if (w.dropped > 0) this.pendingReports.push([appId, w.dropped]);
      w.second = second;
      w.sent = 0;
      w.dropped = 0;
    }
    if (w.sent < this.perSecond) {
      w.sent++;
      return true;
    }
    w.dropped++;
    return false;
  }

  /** Apps whose lines were left out in a finished second, with how many; then forgets them. */
  takeDropped(now: number): Array<[string, number]> {
    const second = Math.floor(now / 1000);
    for (const [appId, w] of this.windows) {
      if (w.second === second) continue;
      if (w.dropped > 0) this.pendingReports.push([appId, w.dropped]);
      // A quiet app's window is forgotten, so the map holds only apps with recent traffic.
      this.windows.delete(appId);
    }
    const out = this.pendingReports;
    this.pendingReports = [];
    return out;
  }
}

export function droppedLinesNotice(count: number, perSecond: number): string {
  return `router: ${count} request line(s) of this app were left out in the last second (at most ${perSecond} per second per router process)`;
}

// An app's log line as `ingot logs` prints it, the way `cf logs` does:
// `2026-11-26T10:00:00.12+0000 [APP/0] OUT hello` — local time with its offset, to the
// hundredth of a second; the source with the instance index when there is one; the stream.

export interface LogLineView {
  source: string;
  index?: number | undefined;
  stream: 'out' | 'err';
  /** ms since the epoch */
  timestamp: number;
  line: string;
}

/** `offsetMinutes` east of UTC (local time by default; tests pin it). */
export function formatLogLine(l: LogLineView, offsetMinutes = -new Date(l.timestamp).getTimezoneOffset()): string {
  const source = l.index !== undefined ? `${l.source}/${l.index}` : l.source;
  return `${formatTimestamp(l.timestamp, offsetMinutes)} [${source}] ${l.stream.toUpperCase()} ${l.line}`;
}

export function formatTimestamp(ms: number, offsetMinutes: number): string {
  const local = new Date(ms + offsetMinutes * 60_000);
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  const date = `${local.getUTCFullYear()}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}`;
  const time = `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}.${pad(Math.floor(local.getUTCMilliseconds() / 10))}`;
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${date}T${time}${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`;
}

// Access-log lines, in the shape Cloud Foundry operators know from the router, and the writer
// that batches them: one write per 100 ms or 64 KB instead of one per request. The same line
// goes to the app's log stream with source RTR.
import { createWriteStream, type WriteStream } from 'node:fs';

export interface AccessRecord {
  host: string;
  method: string;
  target: string;
  minor: number;
  /** 0 when the client left before any response. */
  status: number;
  bytesReceived: number;
  bytesSent: number;
  referer: string | undefined;
  userAgent: string | undefined;
  remote: string;
  backend: string | undefined;
  forwardedFor: string | undefined;
  forwardedProto: string | undefined;
  requestId: string;
  /** Epoch ms at which the request arrived. */
  startedAt: number;
  durationMs: number;
  appId: string | undefined;
  index: number | undefined;
}

export function formatAccessLine(r: AccessRecord): string {
  return (
    `${r.host} - [${isoTime(r.startedAt)}] "${quote(r.method)} ${quote(r.target)} HTTP/1.${r.minor}" ${r.status} ` +
    `${r.bytesReceived} ${r.bytesSent} "${quote(r.referer ?? '-')}" "${quote(r.userAgent ?? '-')}" "${r.remote}" "${r.backend ?? '-'}" ` +
    `x_forwarded_for:"${quote(r.forwardedFor ?? '-')}" x_forwarded_proto:"${quote(r.forwardedProto ?? '-')}" ` +
    `vcap_request_id:"${r.requestId}" response_time:${(r.durationMs / 1000).toFixed(6)} ` +
    `app_id:"${r.appId ?? '-'}" app_index:"${r.index ?? '-'}"`
  );
}

function quote(s: string): string {
  return s.includes('"') || s.includes('\\') ? s.replace(/["\\]/g, '\\$&') : s;
}

let isoMs = -1;
let isoText = '';

/** ISO time of an epoch ms, cached: consecutive requests mostly share the millisecond. */
function isoTime(ms: number): string {
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}

const FLUSH_MS = 100;
const FLUSH_BYTES = 64 * 1024;
/** Writes to a pipe of at most this size are atomic, so workers sharing stdout never split a line. */
const PIPE_BUF = 4096;

export class AccessLogWriter {
  private lines: string[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly file: WriteStream | undefined;

  /** `file` undefined: stdout. */
  constructor(file: string | undefined) {
    this.file = file === undefined ? undefined : createWriteStream(file, { flags: 'a' });
    this.file?.on('error', () => undefined);
  }

  write(line: string): void {
    this.lines.push(line);
    this.bytes += line.length + 1;
    if (this.bytes >= FLUSH_BYTES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS).unref();
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.lines.length === 0) return;
    const lines = this.lines;
    this.lines = [];
    this.bytes = 0;
    if (this.file) {
      this.file.write(lines.join('\n') + '\n');
      return;
    }
    let batch = '';
    for (const line of lines) {
      if (batch.length > 0 && batch.length + line.length + 1 > PIPE_BUF) {
        process.stdout.write(batch);
        batch = '';
      }
      batch += line + '\n';
    }
    if (batch.length > 0) process.stdout.write(batch);
  }

  async close(): Promise<void> {
    this.flush();
    const file = this.file;
    if (file) await new Promise<void>((resolve) => file.end(() => resolve()));
  }
}

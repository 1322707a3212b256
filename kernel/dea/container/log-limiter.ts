// Rate limit for an instance's log lines (stdout and stderr together): a token bucket of
// `linesPerSecond` refilled continuously, holding at most `burst` lines. Excess lines are
// dropped and counted; the next admitted line reports how many went missing before it, so
// the log says "N lines dropped" where the gap is. Pure: time comes from the caller.

import type { Readable } from 'node:stream';

export interface Admission {
  admitted: boolean;
  /** Lines dropped since the previous admitted line (set on an admitted line only). */
  droppedBefore: number;
}

export class LogRateLimiter {
  readonly linesPerSecond: number;
  readonly burst: number;
  #tokens: number;
  #last: number | null = null;
  #droppedSinceAdmit = 0;
  #droppedTotal = 0;

  constructor(options: { linesPerSecond: number; burst?: number }) {
    if (!(options.linesPerSecond > 0)) throw new RangeError(`linesPerSecond must be positive, got ${options.linesPerSecond}`);
    this.linesPerSecond = options.linesPerSecond;
    this.burst = Math.max(1, options.burst ?? options.linesPerSecond * 2);
    this.#tokens = this.burst;
  }

  /** Decides about one line arriving at `nowMs`. */
  admit(nowMs: number): Admission {
    if (this.#last !== null && nowMs > this.#last) {
      this.#tokens = Math.min(this.burst, this.#tokens + ((nowMs - this.#last) / 1000) * this.linesPerSecond);
    }
    if (this.#last === null || nowMs > this.#last) this.#last = nowMs;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      const droppedBefore = this.#droppedSinceAdmit;
      this.#droppedSinceAdmit = 0;
      return { admitted: true, droppedBefore };
    }
    this.#droppedSinceAdmit++;
    this.#droppedTotal++;
    return { admitted: false, droppedBefore: 0 };
  }

  get dropped(): number {
    return this.#droppedTotal;
  }
}

/** Splits a byte stream into lines; a line longer than maxLength is cut into pieces. */
export class LineSplitter {
  #partial = '';

  constructor(readonly maxLength = 64 * 1024) {}

  push(chunk: string): string[] {
    const text = this.#partial + chunk;
    const parts = text.split('\n');
    this.#partial = parts.pop() ?? '';
    const lines: string[] = [];
    for (const p of parts) lines.push(...this.#cut(p.endsWith('\r') ? p.slice(0, -1) : p));
    while (this.#partial.length > this.maxLength) {
      lines.push(this.#partial.slice(0, this.maxLength));
      this.#partial = this.#partial.slice(this.maxLength);
    }
    return lines;
  }

  /** The unterminated last line, if any, at end of stream. */
  end(): string[] {
    const rest = this.#partial;
    this.#partial = '';
    return rest ? this.#cut(rest) : [];
  }

  #cut(line: string): string[] {
    if (line.length <= this.maxLength) return [line];
    const out: string[] = [];
    for (let i = 0; i < line.length; i += this.maxLength) out.push(line.slice(i, i + this.maxLength));
    return out;
  }
}

/** Feeds `stream`'s lines through `limiter` to `onLine`, with a notice where lines were dropped. */
export function pipeLines(
  stream: Readable,
  limiter: LogRateLimiter,
  onLine: (line: string) => void,
  now: () => number = Date.now,
): void {
  const splitter = new LineSplitter();
  const deliver = (lines: string[]) => {
    for (const line of lines) {
      const a = limiter.admit(now());
      if (!a.admitted) continue;
      if (a.droppedBefore > 0) onLine(droppedNotice(a.droppedBefore, limiter.linesPerSecond));
      onLine(line);
    }
  };
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => deliver(splitter.push(chunk)));
  stream.on('end', () => deliver(splitter.end()));
}

export function droppedNotice(count: number, linesPerSecond: number): string {
  return `[ingot] ${count} log line${count === 1 ? '' : 's'} dropped (limit ${linesPerSecond} lines/s)`;
}

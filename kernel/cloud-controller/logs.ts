// Apps' recent log lines, kept in memory from `logs.<app_id>`: a ring buffer per app (the
// last N lines) and the live listeners of each app's stream. Recent lines are a convenience
// for `ingot logs --recent`, not an archive: a controller restart starts them afresh.
import type { LogLine } from '../bus/mod.ts';

export class RingBuffer<T> {
  private readonly items: Array<T | undefined>;
  private start = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
    this.items = new Array<T | undefined>(capacity);
  }

  push(item: T): void {
    const at = (this.start + this.count) % this.capacity;
    this.items[at] = item;
    if (this.count < this.capacity) this.count++;
    else this.start = (this.start + 1) % this.capacity;
  }

  get size(): number {
    return this.count;
  }

  /** Oldest first; the last `limit` when given. */
  toArray(limit = this.count): T[] {
    const n = Math.max(0, Math.min(limit, this.count));
    const out: T[] = [];
    for (let i = this.count - n; i < this.count; i++) out.push(this.items[(this.start + i) % this.capacity] as T);
    return out;
  }
}

export type LogListener = (line: LogLine) => void;

export class LogStore {
  private readonly buffers = new Map<string, RingBuffer<LogLine>>();
  private readonly listeners = new Map<string, Set<LogListener>>();
  received = 0;

  constructor(
    private readonly linesPerApp: number,
    /** Apps whose lines are kept; the least recently written is dropped past this. */
    private readonly maxApps = 10_000,
  ) {}

  add(line: LogLine): void {
    this.received++;
    let buf = this.buffers.get(line.app_id);
    if (buf) {
      // Re-inserting keeps the Map in least-recently-written order for eviction.
      this.buffers.delete(line.app_id);
    } else {
      buf = new RingBuffer<LogLine>(this.linesPerApp);
      if (this.buffers.size >= this.maxApps) {
        const oldest = this.buffers.keys().next().value;
        if (oldest !== undefined) this.buffers.delete(oldest);
      }
    }
    this.buffers.set(line.app_id, buf);
    buf.push(line);
    for (const l of this.listeners.get(line.app_id) ?? []) l(line);
  }

  recent(appId: string, limit?: number): LogLine[] {
    return this.buffers.get(appId)?.toArray(limit) ?? [];
  }

  /** Calls `listener` with each new line of the app until the returned function is called. */
  listen(appId: string, listener: LogListener): () => void {
    let set = this.listeners.get(appId);
    if (!set) this.listeners.set(appId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(appId);
    };
  }

  forget(appId: string): void {
    this.buffers.delete(appId);
  }

  get listenerCount(): number {
    let n = 0;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }
}

// An instance's stdout and stderr go to files in its container directory, not to pipes of
// the DEA: an app must not die of a broken pipe when its DEA restarts, and a restarted DEA
// picks its output up again by tailing the same files. Files are capped by truncation (the
// app writes with O_APPEND, so it carries on at the new end).
import { closeSync, openSync } from 'node:fs';
import { open, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';

/** How often a tail looks for new output: the latency of an app's log line. */
const TAIL_INTERVAL_MS = 50;
const READ_CHUNK = 64 * 1024;
export const DEFAULT_MAX_LOG_FILE_BYTES = 16 * 1024 * 1024;

export interface LogPaths {
  stdout: string;
  stderr: string;
}

export function logPaths(containerDir: string): LogPaths {
  return { stdout: join(containerDir, 'stdout.log'), stderr: join(containerDir, 'stderr.log') };
}

/** File descriptors for a child's stdio; the caller closes them once the child has them. */
export function openForChild(paths: LogPaths): { stdout: number; stderr: number; close(): void } {
  const stdout = openSync(paths.stdout, 'a', 0o600);
  const stderr = openSync(paths.stderr, 'a', 0o600);
  return {
    stdout,
    stderr,
    close() {
      closeSync(stdout);
      closeSync(stderr);
    },
  };
}

export interface FileTail {
  readonly stream: Readable;
  /** Reads what is left, then ends the stream. */
  finish(): Promise<void>;
}

/** Follows a file from `from` ('start' or 'end') into a stream of its new bytes. */
export async function tailFile(path: string, from: 'start' | 'end', maxBytes = DEFAULT_MAX_LOG_FILE_BYTES): Promise<FileTail> {
  const stream = new PassThrough();
  let offset = from === 'end' ? await stat(path).then((s) => s.size, () => 0) : 0;
  let busy: Promise<void> = Promise.resolve();
  let ended = false;

  const readNew = async (): Promise<void> => {
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      return;
    }
    if (size < offset) offset = 0; // truncated under us
    if (size === offset) return;
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      while (offset < size) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(READ_CHUNK, size - offset), offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        stream.write(Buffer.from(buf.subarray(0, bytesRead)));
      }
    } finally {
      await fh.close();
    }
    if (offset >= maxBytes) {
      await truncate(path, 0).catch(() => undefined);
      offset = 0;
    }
  };
  const tick = (): void => {
    busy = busy.then(readNew).catch(() => undefined);
  };
  const timer = setInterval(tick, TAIL_INTERVAL_MS);
  timer.unref();
  return {
    stream,
    async finish() {
      if (ended) return;
      ended = true;
      clearInterval(timer);
      tick();
      await busy;
      stream.end();
    },
  };
}

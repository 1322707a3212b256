// The small state files of nodes and gateways: read through a zod schema (a file that fails
// it is an error naming the file, never silently replaced), written atomically (a temporary
// file renamed over the old one) so a crash mid-write leaves the previous state intact.
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { z } from 'zod';
import { describeZod } from '../bus/mod.ts';

/** The file's content, or `empty` when there is no file yet. */
export async function readJsonFile<S extends z.ZodTypeAny>(file: string, schema: S, empty: z.output<S>): Promise<z.output<S>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return empty;
    throw new Error(`Reading ${file}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`Reading ${file}: not JSON (${(err as Error).message})`, { cause: err });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new Error(`Reading ${file}: ${describeZod(parsed.error)}`);
  return parsed.data;
}

/** Writes `value` as JSON, readable only by its owner (it holds passwords). */
export async function writeJsonFile(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

/** Runs async work one piece at a time, in order: a node's operations never interleave. */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.tail.then(work, work);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

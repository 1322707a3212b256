// The DEA's instances, persisted to <base_dir>/instances.json on every change so that a
// restarted DEA can adopt the instances still running in their containers.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { deaStart } from '../bus/mod.ts';
import type { Instance } from './instance.ts';

const fileSchema = z.object({
  version: z.literal(1),
  instances: z.array(
    z
      .object({
        instance_id: z.string(),
        app_id: z.string(),
        app_name: z.string(),
        index: z.number().int(),
        version: z.string(),
        state: z.enum(['STARTING', 'RUNNING', 'CRASHED', 'STOPPING', 'STOPPED', 'EVACUATING']),
        state_timestamp: z.number(),
        uris: z.array(z.string()),
        droplet_sha256: z.string(),
        memory_mb: z.number(),
        disk_mb: z.number(),
        host_port: z.number(),
        port: z.number(),
        started_at: z.number(),
        start: deaStart,
        evacuating: z.boolean().optional(),
        exit_description: z.string().optional(),
        exit_status: z.number().optional(),
      })
      .passthrough(),
  ),
});

export class InstanceRegistry {
  private readonly byId = new Map<string, Instance>();
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(private readonly file: string) {}

  /** Reads the registry a previous run left; an unreadable file is an empty registry. */
  async load(): Promise<{ loaded: number; problem?: string }> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return { loaded: 0 };
    }
    try {
      const parsed = fileSchema.parse(JSON.parse(text));
      for (const i of parsed.instances) this.byId.set(i.instance_id, i as Instance);
      return { loaded: parsed.instances.length };
    } catch (err) {
      return { loaded: 0, problem: `Reading ${this.file}: ${(err as Error).message.slice(0, 200)}` };
    }
  }

  get(id: string): Instance | undefined {
    return this.byId.get(id);
  }

  all(): Instance[] {
    return [...this.byId.values()];
  }

  get size(): number {
    return this.byId.size;
  }

  put(i: Instance): void {
    this.byId.set(i.instance_id, i);
    this.save();
  }

  delete(id: string): void {
    if (this.byId.delete(id)) this.save();
  }

  /** Writes are serialized and coalesced: the file always ends as the latest state. */
  save(): void {
    this.dirty = true;
    this.writing = this.writing.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const tmp = `${this.file}.tmp`;
      await writeFile(tmp, JSON.stringify({ version: 1, instances: this.all() }));
      await rename(tmp, this.file);
    }).catch(() => {
      // A failed write (disk full) is retried by the next change rather than lost.
      this.dirty = true;
    });
  }

  async flush(): Promise<void> {
    await this.writing;
  }
}

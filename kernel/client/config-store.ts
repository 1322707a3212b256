// Where the CLI keeps its cloud controller target between commands: `~/.ingot/config.json`
// (or `$INGOT_HOME/config.json`), mode 0600. The file is shared with the platform commands
// (they keep the director's target under their own key), so a write replaces only `api`.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ClientError } from './errors.ts';

const named = z.object({ guid: z.string(), name: z.string() });

const apiTarget = z.object({
  url: z.string(),
  system_domain: z.string().optional(),
  apps_domain: z.string().optional(),
  user: z.string().optional(),
  access_token: z.string().optional(),
  refresh_token: z.string().optional(),
  /** ms since the epoch */
  expires_at: z.number().optional(),
  organization: named.optional(),
  space: named.optional(),
});

export type ApiTarget = z.infer<typeof apiTarget>;
export type Named = z.infer<typeof named>;

export function ingotHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.INGOT_HOME && env.INGOT_HOME !== '' ? env.INGOT_HOME : join(homedir(), '.ingot');
}

export class ConfigStore {
  readonly file: string;

  constructor(readonly dir: string = ingotHome()) {
    this.file = join(dir, 'config.json');
  }

  private async readAll(): Promise<Record<string, unknown>> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new ClientError('bad_path', `cannot read ${this.file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    try {
      const all = JSON.parse(text) as unknown;
      return all && typeof all === 'object' && !Array.isArray(all) ? (all as Record<string, unknown>) : {};
    } catch {
      throw new ClientError('bad_path', `${this.file} is not JSON; remove it and run ingot api URL again`);
    }
  }

  async api(): Promise<ApiTarget | undefined> {
    const all = await this.readAll();
    if (all.api === undefined) return undefined;
    const parsed = apiTarget.safeParse(all.api);
    if (!parsed.success) throw new ClientError('bad_path', `${this.file}: the api target is damaged; run ingot api URL again`);
    return parsed.data;
  }

  /** Replaces the api target (undefined removes it), keeping the rest of the file. */
  saveApi(target: ApiTarget | undefined): Promise<void> {
    return this.saveSection('api', target);
  }

  /** Another command group's part of the file (the director target), unparsed: its owner validates it. */
  async section(key: string): Promise<unknown> {
    return (await this.readAll())[key];
  }

  /** Replaces one top-level key (undefined removes it), keeping the rest of the file. */
  async saveSection(key: string, value: unknown): Promise<void> {
    const all = await this.readAll();
    if (value === undefined) delete all[key];
    else all[key] = value;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Write then rename: a command killed mid-write never leaves half a file.
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(all, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, this.file);
  }

  async updateApi(patch: (t: ApiTarget) => ApiTarget): Promise<ApiTarget> {
    const current = await this.api();
    if (!current) throw new ClientError('no_api', 'no API is set; run ingot api URL first');
    const next = patch(current);
    await this.saveApi(next);
    return next;
  }
}

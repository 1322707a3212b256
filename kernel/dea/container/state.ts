// The state file of a container (<dataDir>/containers/<id>/state.json): what a restarted DEA
// needs to find its containers again — the launcher's pid and start time, and the uid, port
// and address slot to claim back. Parsed at this edge; the rest of the module trusts it.

import { readFile, rename, writeFile } from 'node:fs/promises';
import { z } from 'zod';

export const STATE_FILE = 'state.json';

const stateSchema = z.object({
  version: z.literal(1),
  id: z.string(),
  isolation: z.enum(['namespaces', 'none']),
  uid: z.number().int(),
  uidIndex: z.number().int(),
  portIndex: z.number().int(),
  slot: z.number().int().nullable(),
  hostPort: z.number().int(),
  containerPort: z.number().int(),
  containerAddress: z.string().nullable(),
  hostname: z.string(),
  appDir: z.string(),
  appDirOwned: z.boolean(),
  // Absent in state files written before binds existed.
  binds: z.array(z.object({ source: z.string(), target: z.string(), readOnly: z.boolean() })).default([]),
  limits: z.object({ memoryBytes: z.number(), pids: z.number(), cpuShares: z.number(), diskBytes: z.number() }),
  process: z.object({ pid: z.number().int(), startTime: z.number() }).nullable(),
  createdAt: z.string(),
});

export type ContainerState = z.output<typeof stateSchema>;

export async function writeState(file: string, state: ContainerState): Promise<void> {
  // Write then rename, so a crash never leaves a half-written state behind.
  const tmp = `${file}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

export async function readState(file: string): Promise<ContainerState> {
  const text = await readFile(file, 'utf8');
  const parsed = stateSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

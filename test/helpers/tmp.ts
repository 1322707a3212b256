// Per-run names and scratch directories. Every test run gets its own prefix; whatever a dead
// run left behind under the shared root is swept by .ci/run and by scripts/sweep.
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const TEST_ROOT = join(tmpdir(), 'ingot-test');

/** A short unique prefix for kernel object names (netns, nft tables, cgroups): `itst` + 4 hex; scripts/sweep.sh removes whatever carries `itst`. */
export function runPrefix(): string {
  return `itst${randomBytes(2).toString("hex")}`;
}

export function scratchDir(label: string): string {
  mkdirSync(TEST_ROOT, { recursive: true });
  return mkdtempSync(join(TEST_ROOT, `${label}-`));
}

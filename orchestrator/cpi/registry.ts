// CPIs by name, as `ingot cpi <name>` knows them. Loaded lazily so a CPI's dependencies are
// only imported when it is used.

import type { CpiFactory } from './types.ts';

export const cpiRegistry: Record<string, () => Promise<CpiFactory>> = {
  local: async () => (await import('./local/cpi.ts')).createLocalCpi,
};

export function cpiNames(): string[] {
  return Object.keys(cpiRegistry);
}

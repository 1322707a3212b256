// This host's identity, as /etc/machine-id names it: how `ingot ssh` knows that it runs on the
// director's own host (where the local CPI's VMs are).
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export function hostId(): string {
  try {
    return readFileSync('/etc/machine-id', 'utf8').trim() || hostname();
  } catch {
    return hostname();
  }
}

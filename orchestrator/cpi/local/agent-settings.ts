// The agent's settings file for a local VM, /var/vcap/bosh/settings.json: how the agent learns
// its id, mbus, blobstore, networks and disks on this IaaS (a file, as for SSH hosts). Pure.

import type { Networks, VmEnv } from '../types.ts';
import type { LocalCpiConfig } from './config.ts';

export const SETTINGS_PATH_IN_VM = '/var/vcap/bosh/settings.json';
export const STORE_PATH_IN_VM = '/var/vcap/store';

export interface AgentSettings {
  agent_id: string;
  mbus: { url: string; user?: string; password?: string };
  blobstore: { url: string };
  networks: Networks;
  disks: { persistent: Record<string, string> };
  vm: { name: string };
  env: VmEnv;
}

/** mbus and blobstore come from env (the director's) first, then the CPI's config. */
export function renderSettings(input: {
  agentId: string;
  vmCid: string;
  networks: Networks;
  env: VmEnv;
  disks: string[];
  defaults: LocalCpiConfig['agentDefaults'];
}): AgentSettings {
  const bosh = (input.env.bosh ?? {}) as { mbus?: { url?: string; user?: string; password?: string }; blobstore?: { url?: string } };
  const envMbus = (input.env.mbus ?? bosh.mbus ?? {}) as { url?: string; user?: string; password?: string };
  const envBlob = (input.env.blobstore ?? bosh.blobstore ?? {}) as { url?: string };
  const mbus = { ...input.defaults.mbus, ...envMbus };
  const blobstore = { ...input.defaults.blobstore, ...envBlob };
  const persistent: Record<string, string> = {};
  const last = input.disks.at(-1);
  if (last) persistent[last] = STORE_PATH_IN_VM;
  return {
    agent_id: input.agentId,
    mbus: { url: mbus.url ?? '', ...(mbus.user ? { user: mbus.user } : {}), ...(mbus.password ? { password: mbus.password } : {}) },
    blobstore: { url: blobstore.url ?? '' },
    networks: input.networks,
    disks: { persistent },
    vm: { name: input.vmCid },
    env: input.env,
  };
}

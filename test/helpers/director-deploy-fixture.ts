// What the director tests that deploy onto real VMs share: a local CPI of their own (prefix,
// bridge, subnet) swept first, a director listening on its gateway with that CPI, the local
// stemcell, the release built from this checkout, a one-AZ cloud-config; a manifest of nats
// and routers; and the sweep that leaves nothing behind, whatever happened.
import type { ExecutionContext } from 'ava';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { compileConfig } from '../../orchestrator/cpi/local/config.ts';
import { ensureHostNetwork } from '../../orchestrator/cpi/local/host-network.ts';
import { createRelease } from '../../orchestrator/release/mod.ts';
import { localCpiFixture, sweepCpi, vmLeftovers, type CpiFixture } from './cpi-local.ts';
import { directorConfig, DirectorProcess, tarball } from './director.ts';
import { freePort } from './ports.ts';
import { TEST_ROOT } from './tmp.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const AGENT_MAIN = join(ROOT, 'orchestrator/agent/main.ts');
// The daemonised agent starts in /, where `--import tsx` would not resolve: start it in the repo.
const AGENT_COMMAND = `cd '${ROOT}' && exec '${process.execPath}' --import tsx '${AGENT_MAIN}' --settings /var/vcap/bosh/settings.json`;

export interface DeployFixture {
  fx: CpiFixture;
  director: DirectorProcess;
  releaseVersion: string;
}

/** A director with the local CPI, a stemcell, this checkout's release and a cloud-config. */
/**
 * With several `azs`, the subnet is cut in one slice per zone (zoneSubnets), so an address tells
 * its zone. `extra`: more of the director's config (its health_monitor, say).
 */
export async function startDeployFixture(
  label: string,
  onCpi: (fx: CpiFixture) => void,
  deploy: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
  azs: string[] = ['z1'],
): Promise<DeployFixture> {
  const fx = await localCpiFixture({ agent_command: AGENT_COMMAND });
  onCpi(fx);
  await sweepCpi(fx);
  // The bridge and its gateway address exist first: the director and its mbus listen there.
  await ensureHostNetwork(compileConfig(JSON.parse(await readFile(fx.configFile, 'utf8'))));
  const port = await freePort(fx.gateway);
  const fixture = await directorConfig({
    listen: { host: fx.gateway, port },
    mbus: { host: fx.gateway, port: await freePort(fx.gateway) },
    blobstore: { url: `http://${fx.gateway}:${port}` },
    cpi: 'local',
    cpi_config: fx.configFile,
    deploy: { agent_ping_timeout_ms: 90_000, watch_poll_ms: 500, ...deploy },
    ...extra,
  });
  const director = await DirectorProcess.start(fixture, 30_000);
  const api = director.client();
  const stemcellMf = await readFile(join(ROOT, 'stemcells/local/stemcell.MF'), 'utf8');
  const st = await api.request('POST', '/stemcells', undefined, { raw: await tarball({ 'stemcell.MF': stemcellMf, image: 'the host\n' }) });
  if (st.status !== 201) throw new Error(`stemcell upload: ${st.status} ${st.text}`);
  const release = await createRelease({ repoRoot: ROOT, outDir: join(TEST_ROOT, `${label}-release`) });
  const up = await api.request('POST', '/releases', undefined, { raw: await readFile(release.tarball) });
  if (up.status !== 201) throw new Error(`release upload: ${up.status} ${up.text}`);
  const cloud = stringify({
    azs: azs.map((name) => ({ name })),
    vm_types: [{ name: 'small', cloud_properties: { memory_mb: 512 } }],
    networks: [{ name: 'default', type: 'manual', subnets: zoneSubnets(fx, azs) }],
    compilation: { workers: 1, network: 'default', vm_type: 'small', az: azs[0] },
  });
  const cc = await api.request('POST', '/cloud_configs', { properties: cloud });
  if (cc.status !== 201) throw new Error(`cloud-config: ${cc.status} ${cc.text}`);
  return { fx, director, releaseVersion: release.version };
}

/** One subnet per zone over the fixture's /25; zone k may use only its slice of the hosts (host 1 is the gateway). */
export function zoneSubnets(fx: CpiFixture, azs: string[]): Array<Record<string, unknown>> {
  if (azs.length === 1) return [{ range: fx.subnet, gateway: fx.gateway, az: azs[0] }];
  const slice = Math.floor(125 / azs.length);
  const slices = azs.map((_, k) => [2 + k * slice, k === azs.length - 1 ? 126 : 1 + (k + 1) * slice] as const);
  return azs.map((az, k) => ({
    range: fx.subnet,
    gateway: fx.gateway,
    az,
    reserved: slices.filter((_, j) => j !== k).map(([a, b]) => `${fx.net}.${a} - ${fx.net}.${b}`),
  }));
}

/** Stops the director, sweeps the CPI's VMs and network, removes its directory. */
export async function stopDeployFixture(t: ExecutionContext<unknown>, fx: CpiFixture | undefined, director: DirectorProcess | undefined): Promise<void> {
  await director?.cleanup();
  if (!fx) return;
  await sweepCpi(fx);
  const left = await vmLeftovers(fx.prefix);
  if (left.length) t.log(`left after the sweep: ${left.join('; ')}`);
  await rm(fx.dir, { recursive: true, force: true });
}

export interface KernelManifestOptions {
  releaseVersion: string;
  routers?: number;
  routerHost?: string;
  /** Both watch times ('MIN-MAX' ms). */
  watch?: string;
  canaryWatch?: string;
  routerExtra?: Record<string, unknown>;
  natsExtra?: Record<string, unknown>;
  /** The routers' zones (default [z1]). */
  routerAzs?: string[];
  /** The router group's own update block (vm_strategy, max_in_flight, …). */
  routerUpdate?: Record<string, unknown>;
  /** The router group's env (a change recreates its VMs). */
  routerEnv?: Record<string, unknown>;
  /** router.drain_wait_s (default 0.1). */
  routerDrainWait?: number;
  /** NATS nodes (default 1): several form one cluster over the nats job's own link. */
  natsInstances?: number;
}

/** Deployment `dd`: one nats and `routers` routers (one by default) on the fixture's network. */
export function kernelManifest(o: KernelManifestOptions): string {
  const watch = o.watch ?? '3000-60000';
  const group = (name: string, instances: number, job: Record<string, unknown>) => ({
    name,
    azs: ['z1'],
    instances,
    vm_type: 'small',
    stemcell: 'default',
    networks: [{ name: 'default' }],
    jobs: [{ name, release: 'ingot', ...job }],
  });
  return stringify({
    name: 'dd',
    releases: [{ name: 'ingot', version: o.releaseVersion }],
    stemcells: [{ alias: 'default', os: 'debian-12', version: 'latest' }],
    update: { canaries: 1, max_in_flight: 1, canary_watch_time: o.canaryWatch ?? watch, update_watch_time: watch },
    instance_groups: [
      group('nats', o.natsInstances ?? 1, { properties: { nats: { password: '((nats_password))', ...o.natsExtra } } }),
      {
        ...group('router', o.routers ?? 1, {
          properties: { router: { ...(o.routerHost ? { host: o.routerHost } : {}), ...o.routerExtra, port: 8080, drain_wait_s: o.routerDrainWait ?? 0.1, workers: 1, status: { port: 8081 } } },
        }),
        ...(o.routerAzs ? { azs: o.routerAzs } : {}),
        ...(o.routerUpdate ? { update: o.routerUpdate } : {}),
        ...(o.routerEnv ? { env: o.routerEnv } : {}),
      },
    ],
    variables: [{ name: 'nats_password', type: 'password' }],
  });
}

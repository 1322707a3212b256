// Everything a deploy knows before it touches anything, shared by the deploy task, its dry
// run and POST /deployments/:name/diff: the manifest read, interpolated (variables from the
// director's store) and checked against the latest cloud-config and the uploaded releases'
// job specs; stemcells and releases resolved; addresses allocated (kept across deploys); every
// instance's jobs rendered; the plan against what the store holds. Every problem found is
// reported together in one DeployInvalidError.
import { randomUUID } from 'node:crypto';
import { checkDeployment, interpolate, ManifestError, parseCloudConfig, readYaml, type CloudConfig, type Deployment, type JobSpec as LinkJobSpec } from '../../manifest/mod.ts';
import { linkSpecOf, readRelease, ReleaseError, type ReleaseArchive } from '../../release/mod.ts';
import type { Blobstore } from '../blobstore.ts';
import { pickVersion } from '../catalog.ts';
import type { DirectorStore } from '../store.ts';
import type { StemcellRecord } from '../types.ts';
import { buildDesiredState, type DesiredState, type ReleaseInUse } from './desired-state.ts';
import { allocateAddresses, applyAddresses, IpAllocationError, type AddressBook } from './ip-allocation.ts';
import { planDeployment, swapsVm } from './plan.ts';
import type { DeployedInstance, DesiredInstance, Plan } from './types.ts';
import { DeploymentVariableStore } from './variables.ts';

export class DeployInvalidError extends Error {
  override name = 'DeployInvalidError';
  readonly code = 'invalid_deploy';
  constructor(
    readonly deployment: string,
    readonly problems: string[],
  ) {
    super(
      problems.length === 1
        ? `Deployment ${deployment} cannot be deployed: ${problems[0]}`
        : `Deployment ${deployment} cannot be deployed; ${problems.length} problems:\n  ${problems.join('\n  ')}`,
    );
  }
}

export interface Prepared {
  name: string;
  manifestText: string;
  cloudConfigId: number;
  deployment: Deployment;
  desired: DesiredState;
  plan: Plan;
  /** `os/version` → the stemcell the CPI knows. */
  stemcells: Map<string, StemcellRecord>;
  deployed: DeployedInstance[];
  /** Uuids of the instances recreated create-swap-delete (their new VM has a new address). */
  swapped: Set<string>;
}

export interface PrepareDeps {
  store: DirectorStore;
  blobs: Blobstore;
  /** Release archives by blob id: reading one is a few hundred ms, so they are kept. */
  releaseCache: Map<string, ReleaseArchive>;
}

/** The deployment's name, read before anything else (the lock is taken on it). */
export function manifestName(text: string): string {
  let value: unknown;
  try {
    value = readYaml(text, 'manifest.yml').value;
  } catch (err) {
    if (err instanceof ManifestError) throw new DeployInvalidError('(unnamed)', err.lines);
    throw err;
  }
  const name = (value as { name?: unknown } | null)?.name;
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new DeployInvalidError('(unnamed)', ['manifest.yml name: expected a deployment name (letters, digits, ".", "_" and "-")']);
  }
  return name;
}

/** What the store says is deployed. */
export async function deployedInstances(store: DirectorStore, name: string): Promise<DeployedInstance[]> {
  const [rows, vms, disks] = await Promise.all([store.instances(name), store.vms(name), store.disks(name)]);
  return rows.map((r) => {
    const vm = vms.find((v) => v.instance_id === r.id);
    const disk = disks.find((d) => d.instance_id === r.id);
    const spec = (r.spec as { group?: unknown }).group === r.instance_group ? (r.spec as unknown as DesiredInstance) : null;
    return { group: r.instance_group, index: r.idx, uuid: r.uuid, state: r.state, spec, vm: vm ? { cid: vm.cid, agent_id: vm.agent_id } : null, disk_cid: disk?.cid ?? null };
  });
}

export async function prepareDeploy(deps: PrepareDeps, manifestText: string, opts: { recreate?: boolean; persistVariables: boolean; deployed?: DeployedInstance[] }): Promise<Prepared> {
  const name = manifestName(manifestText);
  const problems: string[] = [];
  const cc = (await deps.store.cloudConfigs(1))[0];
  let cloud: CloudConfig | undefined;
  if (!cc) problems.push('the director has no cloud-config: upload one with `ingot update-cloud-config`');
  else {
    try {
      cloud = parseCloudConfig(cc.properties, 'cloud-config.yml');
    } catch (err) {
      if (!(err instanceof ManifestError)) throw err;
      problems.push(...err.lines);
    }
  }

  let source;
  let raw: unknown;
  try {
    const doc = readYaml(manifestText, 'manifest.yml');
    raw = doc.value;
    source = await interpolate(doc, {}, new DeploymentVariableStore(deps.store, name, opts.persistVariables));
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    throw new DeployInvalidError(name, [...problems, ...err.lines]);
  }
  const value = source.value as { releases?: Array<{ name?: unknown; version?: unknown }>; stemcells?: Array<{ os?: unknown; name?: unknown; version?: unknown }> };

  // Releases: uploaded, and read (job specs and templates) from the blobstore.
  const releases = new Map<string, ReleaseInUse>();
  const specs: LinkJobSpec[] = [];
  const uploaded = await deps.store.releases();
  for (const r of Array.isArray(value.releases) ? value.releases : []) {
    if (typeof r?.name !== 'string') continue;
    const version = String(r.version ?? '');
    const candidates = uploaded.filter((u) => u.name === r.name);
    const record = pickVersion(candidates, version);
    if (!record) {
      problems.push(`release ${r.name}/${version} is not uploaded (uploaded: ${candidates.map((c) => c.version).join(', ') || 'none'})`);
      continue;
    }
    let archive = deps.releaseCache.get(record.blob_id);
    if (!archive) {
      try {
        archive = await readRelease(await deps.blobs.get(record.blob_id), `release ${record.name}/${record.version}`);
      } catch (err) {
        if (!(err instanceof ReleaseError)) throw err;
        problems.push(...err.problems);
        continue;
      }
      deps.releaseCache.set(record.blob_id, archive);
    }
    releases.set(record.name, { name: record.name, version: record.version, archive, record });
    specs.push(...archive.jobs.map((j) => linkSpecOf(j.spec, record.name)));
  }

  // Stemcells: uploaded, and known to the CPI.
  const stemcells = new Map<string, StemcellRecord>();
  const byAlias = new Map<string, StemcellRecord>();
  const allStemcells = await deps.store.stemcells();
  for (const s of Array.isArray(value.stemcells) ? value.stemcells : []) {
    const os = typeof s?.os === 'string' ? s.os : undefined;
    const sname = typeof s?.name === 'string' ? s.name : undefined;
    const version = String(s?.version ?? '');
    const candidates = allStemcells.filter((c) => (os !== undefined ? c.operating_system === os : c.name === sname));
    const record = pickVersion(candidates, version);
    if (!record) {
      problems.push(`stemcell ${os ?? sname}/${version} is not uploaded (uploaded: ${candidates.map((c) => c.version).join(', ') || 'none'})`);
      continue;
    }
    if (!record.cpi_cid) problems.push(`stemcell ${record.name}/${record.version} was uploaded without a CPI and cannot be used; upload it again`);
    stemcells.set(`${record.operating_system}/${record.version}`, record);
    byAlias.set(`${os ?? sname}/${version}`, record);
  }
  if (!cloud || problems.length > 0) throw new DeployInvalidError(name, problems);

  // Deployed instances keep their zones (and, below, their addresses).
  const deployed = opts.deployed ?? (await deployedInstances(deps.store, name));
  let deployment: Deployment;
  try {
    deployment = checkDeployment(source, cloud, specs, 'manifest.yml', new Map(deployed.filter((d) => d.spec).map((d) => [`${d.group}/${d.index}`, d.spec!.az])));
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    throw new DeployInvalidError(name, err.lines);
  }

  const checked = deployment;
  const addressesOf = (d: DeployedInstance): Record<string, string> => Object.fromEntries(d.spec!.networks.filter((n) => n.ip).map((n) => [n.name, n.ip!]));
  const previous: AddressBook = new Map(deployed.filter((d) => d.spec).map((d) => [`${d.group}/${d.index}`, addressesOf(d)]));

  /** Addresses allocated, every instance rendered and planned; `hold` as allocateAddresses takes it. */
  const planWith = (hold: AddressBook) => {
    let placed: Deployment;
    try {
      placed = applyAddresses(checked, allocateAddresses(checked, cloud!, previous, hold));
    } catch (err) {
      if (!(err instanceof IpAllocationError)) throw err;
      throw new DeployInvalidError(name, [err.message]);
    }
    const desired = buildDesiredState({
      deployment: placed,
      rawManifest: raw,
      releases,
      uuids: new Map(deployed.map((d) => [`${d.group}/${d.index}`, d.uuid])),
      newUuid: randomUUID,
    });
    // 'latest' resolved: the plan compares real versions.
    for (const g of desired.groups) {
      for (const inst of g.instances) {
        const rec = byAlias.get(`${inst.stemcell.os}/${inst.stemcell.version}`);
        if (rec) inst.stemcell = { os: rec.operating_system, version: rec.version };
      }
    }
    if (desired.problems.length > 0) throw new DeployInvalidError(name, desired.problems);
    const plan = planDeployment({
      deployment: name,
      groups: desired.groups,
      deployed,
      recreate: opts.recreate ?? false,
      releases: [...releases.values()].filter((r) => desired.groups.some((g) => g.instances.some((i) => i.jobs.some((j) => j.release === r.name)))).map((r) => `${r.name}/${r.version}`),
      stemcells: [...new Set(desired.groups.flatMap((g) => g.instances.map((i) => `${i.stemcell.os}/${i.stemcell.version}`)))],
    });
    return { deployment: placed, desired, plan };
  };

  let out = planWith(new Map());
  // create-swap-delete: the old VMs keep their addresses until they go, so their replacements
  // are planned again with new ones (and whoever links to them is re-rendered to match).
  const swaps = out.plan.groups.flatMap((g) => g.instances.filter((i) => swapsVm(i, g.update)));
  if (swaps.length > 0) {
    out = planWith(new Map(swaps.map((i) => [`${i.group}/${i.index}`, addressesOf(i.deployed!)])));
  }
  const swapped = new Set(swaps.map((i) => i.uuid).filter((uuid) => out.plan.groups.some((g) => g.instances.some((i) => i.uuid === uuid && swapsVm(i, g.update)))));
  return { name, manifestText, cloudConfigId: cc!.id, deployment: out.deployment, desired: out.desired, plan: out.plan, stemcells, deployed, swapped };
}

// The checks that need both the manifest and the cloud-config, and the plan input they
// produce: each instance placed in an AZ with its addresses, each job with its spec and
// resolved links. Addresses are allocated here, deterministically (static IPs in order,
// then the lowest free address of the AZ's subnet, group by group), so the same manifest
// and cloud-config always give the same plan and links can name real peers.
import type { CloudConfig, Subnet } from './cloud-config.ts';
import { readManifest, type Manifest, type ManifestInstanceGroup, type UpdatePolicy } from './deployment-manifest.ts';
import { ManifestError, type Problem } from './errors.ts';
import { expandRanges, formatIp, parseCidr, parseIp, parseIpRange } from './ip-ranges.ts';
import { findSpec, resolveLinks, type AddressedInstance, type JobSpec, type LinkData } from './links.ts';
import { problemAt, type YamlSource } from './yaml-source.ts';

export interface PlannedNetwork {
  name: string;
  type: 'manual' | 'dynamic' | 'vip';
  /** Null on a dynamic network: the IaaS assigns it. */
  address: string | null;
  static: boolean;
  range: string | undefined;
  gateway: string | undefined;
  dns: string[];
  default: Array<'dns' | 'gateway' | 'addressable'>;
  cloud_properties: Record<string, unknown>;
}

export interface PlannedInstance {
  index: number;
  az: string;
  /** The address on the default network. */
  address: string | null;
  networks: PlannedNetwork[];
}

export interface PlannedJob {
  name: string;
  release: string;
  properties: Record<string, unknown>;
  spec: JobSpec;
  /** By consumer name; null for an optional link with no provider. */
  links: Record<string, LinkData | null>;
}

export interface PlannedInstanceGroup {
  name: string;
  lifecycle: 'service' | 'errand';
  azs: string[];
  update: UpdatePolicy;
  stemcell: { alias: string; os: string; version: string };
  vm_type: { name: string; cloud_properties: Record<string, unknown> };
  vm_extensions: Array<{ name: string; cloud_properties: Record<string, unknown> }>;
  persistent_disk: { size_mb: number; type: string | undefined; cloud_properties: Record<string, unknown> } | null;
  properties: Record<string, unknown>;
  env: Record<string, unknown>;
  jobs: PlannedJob[];
  instances: PlannedInstance[];
}

/** The validated input of deploy planning. */
export interface Deployment {
  name: string;
  releases: Manifest['releases'];
  stemcells: Manifest['stemcells'];
  update: UpdatePolicy;
  variables: Manifest['variables'];
  features: Manifest['features'];
  properties: Record<string, unknown>;
  tags: Record<string, string>;
  compilation: CloudConfig['compilation'];
  instance_groups: PlannedInstanceGroup[];
}

/** `group/index` → the AZ a deployed instance is in: it stays there while its group still lists it. */
export type PreviousAzs = ReadonlyMap<string, string>;

/**
 * The whole check in one call, as the director runs it: the manifest's own problems and
 * its cross-checks against the cloud-config and job specs, all reported together.
 */
export function checkDeployment(manifest: string | YamlSource, cloud: CloudConfig, jobSpecs: readonly JobSpec[], file?: string, previousAzs: PreviousAzs = new Map()): Deployment {
  const read = readManifest(manifest, file);
  if (!read.manifest) throw new ManifestError(read.problems);
  try {
    const deployment = validateDeployment(read.manifest, cloud, jobSpecs, previousAzs);
    if (read.problems.length > 0) throw new ManifestError(sortProblems(read.problems));
    return deployment;
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    throw new ManifestError(sortProblems(dedupe([...read.problems, ...err.problems])));
  }
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.file}:${p.line}:${p.path}:${p.message}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

/**
 * Checks a manifest against a cloud-config and job specs and returns the plan input.
 * Throws ManifestError with every problem found.
 */
export function validateDeployment(manifest: Manifest, cloud: CloudConfig, jobSpecs: readonly JobSpec[], previousAzs: PreviousAzs = new Map()): Deployment {
  const problems: Problem[] = [];
  const at = (path: Array<string | number>, message: string) => problems.push(problemAt(manifest.source, path, message));
  const list = (items: Array<{ name: string }>) => items.map((i) => i.name).join(', ') || 'none';

  const azNames = new Set(cloud.azs.map((a) => a.name));
  const releaseNames = new Set(manifest.releases.map((r) => r.name));
  /** Every static IP of the deployment, by network, with where it was first claimed. */
  const claimed = new Map<string, Map<number, string>>();
  /** Addresses taken on each network (static ones first, then dynamic as allocated). */
  const taken = new Map<string, Set<number>>();
  const takenOn = (net: string) => taken.get(net) ?? taken.set(net, new Set()).get(net)!;

  // Pass 1: references, and static IPs (all of them claimed before any dynamic allocation).
  const staticIps = manifest.instance_groups.map((ig, g) => {
    const path = ['instance_groups', manifest.groupIndex[g]!];
    if (!manifest.stemcells.some((s) => s.alias === ig.stemcell)) at([...path, 'stemcell'], `unknown stemcell alias ${ig.stemcell} (stemcells: ${manifest.stemcells.map((s) => s.alias).join(', ')})`);
    if (!cloud.vm_types.some((v) => v.name === ig.vm_type)) at([...path, 'vm_type'], `unknown vm_type ${ig.vm_type} (cloud-config vm_types: ${list(cloud.vm_types)})`);
    ig.vm_extensions.forEach((e, i) => {
      if (!cloud.vm_extensions.some((v) => v.name === e)) at([...path, 'vm_extensions', i], `unknown vm_extension ${e}`);
    });
    if (ig.persistent_disk_type !== undefined && !cloud.disk_types.some((d) => d.name === ig.persistent_disk_type)) {
      at([...path, 'persistent_disk_type'], `unknown disk_type ${ig.persistent_disk_type} (cloud-config disk_types: ${list(cloud.disk_types)})`);
    }
    ig.azs.forEach((az, i) => {
      if (!azNames.has(az)) at([...path, 'azs', i], `unknown az ${az} (cloud-config azs: ${[...azNames].join(', ') || 'none'})`);
    });
    ig.jobs.forEach((job, j) => {
      if (!releaseNames.has(job.release)) at([...path, 'jobs', j, 'release'], `unknown release ${job.release} (releases: ${[...releaseNames].join(', ')})`);
      else if (!findSpec(jobSpecs, job)) {
        const known = jobSpecs.filter((s) => s.release === undefined || s.release === job.release).map((s) => s.name);
        at([...path, 'jobs', j, 'name'], `unknown job ${job.name} in release ${job.release} (its jobs: ${known.join(', ') || 'none'})`);
      }
    });
    return ig.networks.map((n, ni) => {
      const npath = [...path, 'networks', ni];
      const net = cloud.networks.find((c) => c.name === n.name);
      if (!net) {
        at([...npath, 'name'], `unknown network ${n.name} (cloud-config networks: ${list(cloud.networks)})`);
        return [];
      }
      if (net.type !== 'vip' && net.type !== 'dynamic') {
        ig.azs.forEach((az) => {
          if (azNames.has(az) && !subnetsFor(net.subnets, [az]).length) at(npath, `network ${n.name} has no subnet in az ${az}`);
        });
      }
      if (n.static_ips === undefined) return [];
      if (net.type === 'dynamic') {
        at([...npath, 'static_ips'], `network ${n.name} is dynamic and cannot have static IPs`);
        return [];
      }
      const ips: number[] = [];
      n.static_ips.forEach((text, i) => {
        const range = parseIpRange(text);
        if (!range || range[1] - range[0] > 65535) return at([...npath, 'static_ips', i], `expected an IPv4 address or range, got ${JSON.stringify(text)}`);
        for (const ip of expandRanges([range])) {
          const ipPath = [...npath, 'static_ips', i];
          const seen = claimed.get(n.name) ?? claimed.set(n.name, new Map()).get(n.name)!;
          const first = seen.get(ip);
          if (first !== undefined) at(ipPath, `${formatIp(ip)} is already used by ${first}`);
          else seen.set(ip, `${ig.name} (${problemAt(manifest.source, ipPath, '').path})`);
          ips.push(ip);
          takenOn(n.name).add(ip);
          if (net.type === 'vip') continue;
          const subnet = subnetsFor(net.subnets, ig.azs).find((s) => inCidr(s, ip));
          if (!subnet) at(ipPath, `${formatIp(ip)} is not in a subnet of network ${n.name} for azs ${ig.azs.join(', ')}`);
          else if (inRanges(subnet.reserved, ip)) at(ipPath, `${formatIp(ip)} is reserved in network ${n.name}`);
          else if (!inRanges(subnet.static, ip)) at(ipPath, `${formatIp(ip)} is outside the static range of network ${n.name} (${subnet.static.join(', ') || 'none'})`);
        }
      });
      if (ips.length !== ig.instances) at([...npath, 'static_ips'], `${ips.length} static IPs for ${ig.instances} instances`);
      return ips;
    });
  });

  // Pass 2: place each instance and give it an address on every network.
  const addressed = new Map<string, AddressedInstance[]>();
  const planned = new Map<string, PlannedInstance[]>();
  manifest.instance_groups.forEach((ig, g) => {
    const defaultNet = (ig.networks.find((n) => n.default?.includes('gateway')) ?? ig.networks[0])?.name ?? '';
    const instances: PlannedInstance[] = [];
    const exhausted = new Set<string>();
    const azs = placeAzs(ig, cloud, staticIps[g] ?? [], previousAzs);
    for (let index = 0; index < ig.instances; index++) {
      const az = azs[index]!;
      const networks = ig.networks.map((n, ni): PlannedNetwork => {
        const net = cloud.networks.find((c) => c.name === n.name);
        const ip = staticIps[g]?.[ni]?.[index];
        const subnet = net === undefined ? undefined : ip !== undefined ? net.subnets.find((s) => inCidr(s, ip)) : subnetsFor(net.subnets, [az])[0];
        let address: string | null = null;
        if (ip !== undefined) address = formatIp(ip);
        else if (net?.type === 'manual' && subnet) {
          const free = firstFree(subnet, takenOn(n.name));
          if (free === undefined) {
            if (!exhausted.has(`${n.name}/${az}`)) at(['instance_groups', manifest.groupIndex[g]!, 'instances'], `network ${n.name} has no free address left in az ${az} for instance ${ig.name}/${index}`);
            exhausted.add(`${n.name}/${az}`);
          } else {
            takenOn(n.name).add(free);
            address = formatIp(free);
          }
        }
        return {
          name: n.name,
          type: net?.type ?? 'manual',
          address,
          static: ip !== undefined,
          range: subnet?.range,
          gateway: subnet?.gateway,
          dns: subnet?.dns ?? [],
          default: n.default ?? (ig.networks.length === 1 ? ['dns', 'gateway'] : []),
          cloud_properties: subnet?.cloud_properties ?? {},
        };
      });
      instances.push({ index, az, address: networks.find((n) => n.name === defaultNet)?.address ?? null, networks });
    }
    planned.set(ig.name, instances);
    addressed.set(
      ig.name,
      instances.map((i) => ({ index: i.index, az: i.az, default_network: defaultNet, addresses: Object.fromEntries(i.networks.map((n) => [n.name, n.address])) })),
    );
  });

  const links = resolveLinks(manifest, jobSpecs, addressed, problems);
  if (problems.length > 0) throw new ManifestError(sortProblems(problems));

  return {
    name: manifest.name,
    releases: manifest.releases,
    stemcells: manifest.stemcells,
    update: manifest.update,
    variables: manifest.variables,
    features: manifest.features,
    properties: manifest.properties,
    tags: manifest.tags,
    compilation: cloud.compilation,
    instance_groups: manifest.instance_groups.map((ig) => {
      const stemcell = manifest.stemcells.find((s) => s.alias === ig.stemcell)!;
      const disk = ig.persistent_disk_type === undefined ? undefined : cloud.disk_types.find((d) => d.name === ig.persistent_disk_type)!;
      return {
        name: ig.name,
        lifecycle: ig.lifecycle,
        azs: ig.azs,
        update: ig.update,
        stemcell: { alias: stemcell.alias, os: stemcell.os ?? stemcell.name ?? '', version: stemcell.version },
        vm_type: cloud.vm_types.find((v) => v.name === ig.vm_type)!,
        vm_extensions: ig.vm_extensions.map((e) => cloud.vm_extensions.find((v) => v.name === e)!),
        persistent_disk: disk
          ? { size_mb: disk.disk_size, type: disk.name, cloud_properties: disk.cloud_properties }
          : ig.persistent_disk
            ? { size_mb: ig.persistent_disk, type: undefined, cloud_properties: {} }
            : null,
        properties: ig.properties,
        env: ig.env,
        jobs: ig.jobs.map((job) => ({
          name: job.name,
          release: job.release,
          properties: job.properties,
          spec: findSpec(jobSpecs, job)!,
          links: links.get(ig.name)?.get(job.name) ?? {},
        })),
        instances: planned.get(ig.name) ?? [],
      };
    }),
  };
}

/** Subnets serving any of the AZs; a subnet without AZs serves every AZ. */
function subnetsFor(subnets: readonly Subnet[], azs: readonly string[]): Subnet[] {
  return subnets.filter((s) => s.azs.length === 0 || s.azs.some((a) => azs.includes(a)));
}

/**
 * Each instance's AZ, as BOSH places them: a static IP decides (the subnet it sits in); a
 * deployed instance stays in its AZ while the group still lists it (adding a zone or an
 * instance moves nobody); the others go, in index order, to the zone holding the fewest of the
 * group's instances, ties to the first in `azs` — round robin when nothing is deployed.
 */
function placeAzs(ig: ManifestInstanceGroup, cloud: CloudConfig, staticIps: number[][], previous: PreviousAzs): string[] {
  const staticAz = (index: number): string | undefined => {
    for (let ni = 0; ni < ig.networks.length; ni++) {
      const ip = staticIps[ni]?.[index];
      if (ip === undefined) continue;
      const net = cloud.networks.find((c) => c.name === ig.networks[ni]!.name);
      const az = net?.subnets.find((s) => inCidr(s, ip))?.azs.find((a) => ig.azs.includes(a));
      if (az !== undefined) return az;
    }
    return undefined;
  };
  const placed: Array<string | undefined> = [];
  const count = new Map(ig.azs.map((a) => [a, 0]));
  for (let index = 0; index < ig.instances; index++) {
    const kept = previous.get(`${ig.name}/${index}`);
    const az = staticAz(index) ?? (kept !== undefined && ig.azs.includes(kept) ? kept : undefined);
    placed.push(az);
    if (az !== undefined) count.set(az, (count.get(az) ?? 0) + 1);
  }
  return placed.map((az) => {
    if (az !== undefined) return az;
    const least = ig.azs.reduce<string | undefined>((best, a) => (best === undefined || count.get(a)! < count.get(best)! ? a : best), undefined) ?? '';
    count.set(least, (count.get(least) ?? 0) + 1);
    return least;
  });
}

function inCidr(subnet: Subnet, ip: number): boolean {
  const cidr = subnet.range === undefined ? undefined : parseCidr(subnet.range);
  return cidr !== undefined && ip >= cidr.first && ip <= cidr.last;
}

function inRanges(ranges: readonly string[], ip: number): boolean {
  return ranges.some((r) => {
    const range = parseIpRange(r);
    return range !== undefined && ip >= range[0] && ip <= range[1];
  });
}

/** The lowest address that is not the network, broadcast, gateway, reserved, static or taken. */
function firstFree(subnet: Subnet, taken: ReadonlySet<number>): number | undefined {
  const cidr = subnet.range === undefined ? undefined : parseCidr(subnet.range);
  if (!cidr) return undefined;
  const gateway = subnet.gateway === undefined ? undefined : parseIp(subnet.gateway);
  for (let ip = cidr.first + 1; ip < cidr.last; ip++) {
    if (ip === gateway || taken.has(ip) || inRanges(subnet.reserved, ip) || inRanges(subnet.static, ip)) continue;
    return ip;
  }
  return undefined;
}

/** Problems in file order, so the operator reads them top to bottom. */
function sortProblems(problems: Problem[]): Problem[] {
  return [...problems].sort((a, b) => (a.file === b.file ? a.line - b.line : a.file.localeCompare(b.file)));
}

// The deploy engine's shapes: what an instance should be (desired), what the store says it is
// (deployed), and what the plan decides for each. Plain data, so planning is a pure function.
import type { UpdatePolicy } from '../../manifest/mod.ts';

/** One network of an instance as the CPI and the agent see it. */
export interface InstanceNetwork {
  name: string;
  type: 'manual' | 'dynamic' | 'vip';
  ip: string | null;
  static: boolean;
  range: string | undefined;
  gateway: string | undefined;
  dns: string[];
  default: string[];
  cloud_properties: Record<string, unknown>;
}

/** A job as rendered for one instance. */
export interface InstanceJob {
  name: string;
  release: string;
  release_version: string;
  /** sha256 of the rendered job tarball: a change of template, property or link changes it. */
  digest: string;
  /** The job's properties as the manifest wrote them before interpolation, for the diff. */
  manifest_properties: Record<string, unknown>;
  /** The job's resolved properties (defaults applied, interpolated), for the agent. */
  properties: Record<string, unknown>;
  /** Dotted property names whose values came from a ((variable)): always redacted. */
  secret_paths: string[];
}

export interface InstancePackage {
  name: string;
  version: string;
  blobstore_id: string;
  sha256: string;
}

/** What an instance should be after this deploy. This is what is stored as the instance's spec. */
export interface DesiredInstance {
  group: string;
  index: number;
  /** Kept across deploys; new instances get one when planned. */
  uuid: string;
  az: string;
  bootstrap: boolean;
  vm_type: { name: string; cloud_properties: Record<string, unknown> };
  stemcell: { os: string; version: string };
  networks: InstanceNetwork[];
  jobs: InstanceJob[];
  packages: InstancePackage[];
  persistent_disk_mb: number;
  persistent_disk_cloud_properties: Record<string, unknown>;
  env: Record<string, unknown>;
}

/** What the store knows of an instance. */
export interface DeployedInstance {
  group: string;
  index: number;
  uuid: string;
  /** running: the last update finished; anything else means it must be updated again. */
  state: string;
  /** The spec of the last successful update; null when it never finished one. */
  spec: DesiredInstance | null;
  vm: { cid: string; agent_id: string } | null;
  disk_cid: string | null;
}

export type InstanceAction = 'create' | 'update' | 'recreate' | 'delete' | 'unchanged';

export interface InstancePlan {
  action: InstanceAction;
  group: string;
  index: number;
  uuid: string;
  /** Why: `stemcell debian-12/1 → debian-12/2`, `jobs router`, `properties router.port`. */
  reasons: string[];
  desired: DesiredInstance | null;
  deployed: DeployedInstance | null;
}

export interface GroupPlan {
  name: string;
  update: UpdatePolicy;
  /** The group's zones in manifest order: the order it rolls in ([] for a removed group). */
  azs: string[];
  instances: InstancePlan[];
}

export interface Plan {
  deployment: string;
  /** In manifest order; groups no longer in the manifest come last, holding only deletes. */
  groups: GroupPlan[];
  /** Releases and stemcells as deployed before and as wanted now: `ingot/1`. */
  releases: { before: string[]; after: string[] };
  stemcells: { before: string[]; after: string[] };
}

export function instanceName(i: { group: string; index: number }): string {
  return `${i.group}/${i.index}`;
}

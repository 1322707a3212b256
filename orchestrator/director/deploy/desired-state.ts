// From the checked deployment to desired instances: every job of every instance rendered
// (renderJob → checkComponentConfigs → packRenderedJob) with the instance's own context, its
// digest taken, its packages named by blob. Pure: it collects every problem of every instance
// and returns them together, so a deploy reports them all before it touches anything.
import { createHash } from 'node:crypto';
import { checkComponentConfigs, packRenderedJob, renderJob, RenderError, type ReleaseArchive } from '../../release/mod.ts';
import type { Deployment } from '../../manifest/mod.ts';
import type { ReleaseRecord } from '../types.ts';
import type { DesiredGroup } from './plan.ts';
import { variablePaths } from './diff.ts';
import type { DesiredInstance, InstanceJob, InstancePackage } from './types.ts';

export interface ReleaseInUse {
  name: string;
  version: string;
  archive: ReleaseArchive;
  record: ReleaseRecord;
}

export interface RenderedInstanceJob {
  name: string;
  tarball: Buffer;
  digest: string;
}

export interface DesiredState {
  groups: DesiredGroup[];
  /** By instance uuid: the packed jobs to put in the blobstore. */
  rendered: Map<string, RenderedInstanceJob[]>;
  problems: string[];
}

export interface DesiredInput {
  deployment: Deployment;
  /** The manifest before interpolation: job properties as written, to tell secrets from the rest. */
  rawManifest: unknown;
  releases: ReadonlyMap<string, ReleaseInUse>;
  /** `group/index` → uuid of deployed instances; new ones get `newUuid()`. */
  uuids: ReadonlyMap<string, string>;
  newUuid: () => string;
  /** Where the agent installs jobs (/var/vcap). */
  root?: string;
}

function rawJobProperties(raw: unknown, group: string, job: string): Record<string, unknown> {
  const groups = (raw as { instance_groups?: Array<{ name?: unknown; jobs?: Array<{ name?: unknown; properties?: unknown }> }> } | null)?.instance_groups;
  const g = Array.isArray(groups) ? groups.find((x) => x?.name === group) : undefined;
  const j = Array.isArray(g?.jobs) ? g!.jobs!.find((x) => x?.name === job) : undefined;
  const p = j?.properties;
  return p !== null && typeof p === 'object' && !Array.isArray(p) ? (p as Record<string, unknown>) : {};
}

export function buildDesiredState(input: DesiredInput): DesiredState {
  const problems: string[] = [];
  const rendered = new Map<string, RenderedInstanceJob[]>();
  const root = input.root ?? '/var/vcap';
  const { deployment } = input;
  const groups: DesiredGroup[] = deployment.instance_groups
    .filter((ig) => ig.lifecycle === 'service')
    .map((ig) => {
      const instances: DesiredInstance[] = ig.instances.map((inst) => {
        const name = `${ig.name}/${inst.index}`;
        const uuid = input.uuids.get(name) ?? input.newUuid();
        const jobs: InstanceJob[] = [];
        const packages = new Map<string, InstancePackage>();
        const packed: RenderedInstanceJob[] = [];
        for (const job of ig.jobs) {
          const release = input.releases.get(job.release);
          const archiveJob = release?.archive.jobs.find((j) => j.name === job.name);
          if (!release || !archiveJob) {
            problems.push(`${name}: job ${job.name} is not in release ${job.release}${release ? `/${release.version}` : ''}`);
            continue;
          }
          const properties = Object.keys(job.properties).length > 0 ? job.properties : Object.keys(ig.properties).length > 0 ? ig.properties : deployment.properties;
          try {
            const out = renderJob(archiveJob.spec, archiveJob.templates, properties, job.links, {
              deployment: deployment.name,
              name: ig.name,
              index: inst.index,
              id: uuid,
              address: inst.address,
              az: inst.az,
              bootstrap: inst.index === 0,
              root,
            });
            const configProblems = checkComponentConfigs(out, `${root}/jobs/${job.name}`);
            if (configProblems.length) {
              problems.push(...configProblems.map((p) => `${name}: ${p}`));
              continue;
            }
            const tarball = packRenderedJob(out);
            const digest = createHash('sha256').update(tarball).digest('hex');
            packed.push({ name: job.name, tarball, digest });
            const raw = rawJobProperties(input.rawManifest, ig.name, job.name);
            jobs.push({
              name: job.name,
              release: job.release,
              release_version: release.version,
              digest,
              manifest_properties: raw,
              properties: out.properties,
              secret_paths: variablePaths(raw),
            });
          } catch (err) {
            if (err instanceof RenderError) problems.push(...err.problems.map((p) => `${name}: ${p}`));
            else problems.push(`${name}: rendering job ${job.name}: ${(err as Error).message}`);
            continue;
          }
          for (const pkgName of archiveJob.spec.packages) {
            const pkg = release.record.packages.find((p) => p.name === pkgName);
            if (!pkg?.blob_id) {
              problems.push(`${name}: package ${pkgName} of job ${job.name} is not in the blobstore (upload release ${job.release}/${release.version} again)`);
              continue;
            }
            packages.set(pkgName, { name: pkgName, version: pkg.version, blobstore_id: pkg.blob_id, sha256: pkg.blob_id });
          }
        }
        rendered.set(uuid, packed);
        return {
          group: ig.name,
          index: inst.index,
          uuid,
          az: inst.az,
          bootstrap: inst.index === 0,
          vm_type: { name: ig.vm_type.name, cloud_properties: ig.vm_type.cloud_properties },
          stemcell: { os: ig.stemcell.os, version: ig.stemcell.version },
          networks: inst.networks.map((n) => ({
            name: n.name,
            type: n.type,
            ip: n.address,
            static: n.static,
            range: n.range,
            gateway: n.gateway,
            dns: n.dns,
            default: n.default,
            cloud_properties: n.cloud_properties,
          })),
          jobs,
          packages: [...packages.values()].sort((a, b) => a.name.localeCompare(b.name)),
          persistent_disk_mb: ig.persistent_disk?.size_mb ?? 0,
          persistent_disk_cloud_properties: ig.persistent_disk?.cloud_properties ?? {},
          env: ig.env,
        };
      });
      return { name: ig.name, update: ig.update, azs: ig.azs, instances };
    });
  return { groups, rendered, problems };
}

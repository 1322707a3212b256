// Installs what an apply spec names: each package under <root>/packages/<name> and each
// rendered job under <root>/jobs/<name>, from tarballs fetched by digest. A job's spec.json
// lists its processes; its properties are written to <job>/config/properties.json.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import type { BlobstoreClient } from './blobstore.ts';
import { AgentError, doing } from './errors.ts';
import { describeIssues, JobSpecFile, type ApplySpec, type BlobRef, type JobSpecFile as JobSpec } from './protocol.ts';

export interface InstalledJob {
  name: string;
  dir: string;
  spec: JobSpec;
}

export function jobDir(root: string, name: string): string {
  return join(root, 'jobs', name);
}

async function installBlob(blobs: BlobstoreClient, ref: BlobRef, dest: string, root: string, signal?: AbortSignal): Promise<void> {
  const body = await blobs.fetchVerified(ref.blobstore_id, ref.sha256, signal);
  const staging = join(root, 'data', 'tmp', `${ref.name}-${process.pid}-${Date.now()}`);
  mkdirSync(staging, { recursive: true });
  try {
    await pipeline(Readable.from([body]), tar.x({ cwd: staging }));
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw new AgentError('install_failed', `unpacking blob ${ref.blobstore_id}: ${(err as Error).message}`, { cause: err });
  }
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(join(dest, '..'), { recursive: true });
  renameSync(staging, dest);
}

export function readJobSpec(dir: string, name: string): JobSpec {
  const file = join(dir, 'spec.json');
  if (!existsSync(file)) return { name, processes: [] };
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AgentError('invalid_spec', `reading ${file}: ${(err as Error).message}`);
  }
  const parsed = JobSpecFile.safeParse(json);
  if (!parsed.success) throw new AgentError('invalid_spec', `reading ${file}: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** Fetches, verifies and installs every package and job; nothing running is touched. */
export async function install(spec: ApplySpec, root: string, blobs: BlobstoreClient, signal?: AbortSignal): Promise<InstalledJob[]> {
  for (const pkg of spec.packages) {
    await doing(`Installing package ${pkg.name}`, () => installBlob(blobs, pkg, join(root, 'packages', pkg.name), root, signal));
  }
  const jobs: InstalledJob[] = [];
  for (const job of spec.jobs) {
    const dir = jobDir(root, job.name);
    const installed = await doing(`Installing job ${job.name}`, async () => {
      await installBlob(blobs, job, dir, root, signal);
      mkdirSync(join(dir, 'config'), { recursive: true });
      writeFileSync(join(dir, 'config', 'properties.json'), JSON.stringify(job.properties, null, 2));
      return { name: job.name, dir, spec: readJobSpec(dir, job.name) };
    });
    jobs.push(installed);
  }
  return jobs;
}

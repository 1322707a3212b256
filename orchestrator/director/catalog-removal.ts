// Removing releases and stemcells: `DELETE /releases/:name[/:version]`, `DELETE
// /stemcells/:name/:version` (run inline as tasks of their own) and the `cleanup` task (BOSH's
// clean-up). A version a deployment uses is refused; otherwise its records go, the CPI's
// stemcell with them, and then every blob that no remaining release or stemcell references.
//
// Why this cannot race a deploy: every task that reads releases or stemcells for a deployment
// (deploy, recreate, cloud-check, start/stop, errands, the resurrector) holds that deployment's
// `deployment:<name>` lock, and a manifest or an instance's spec only changes under it. A
// removal holds ALL_DEPLOYMENTS_LOCK (`deployment:*`, store.ts), which cannot be taken while any
// deployment's lock is held — queued or running — and while held keeps every deployment's from
// being taken (those requests get a 409 naming the removal). So the usage read under it is the
// usage for as long as it runs, and no deploy starts before the records are gone (it then finds
// the version not uploaded, rather than half deleted). Uploads do not take locks; they and the
// blob sweep are serialised in this process by `exclusive`, so an upload that found a blob
// already stored never has it swept before its record is written.
import { createHash } from 'node:crypto';
import type { Blobstore } from './blobstore.ts';
import { catalogUsage, cleanupChoice, cleanupResult, newestFirst, releaseBlobs, unreferencedBlobs, usedBy, type CatalogUsage } from './catalog.ts';
import { CatalogError } from './errors.ts';
import { tarMembers } from './release-tarball.ts';
import { ALL_DEPLOYMENTS_LOCK, type DirectorStore } from './store.ts';
import type { TaskRunner } from './task-runner.ts';
import type { ReleaseRecord, StemcellRecord, TaskContext, TaskHandler } from './types.ts';

export interface CatalogRemovalDeps {
  store: DirectorStore;
  blobs: Blobstore;
  tasks: TaskRunner;
  /** The CPI's delete_stemcell; without a CPI a stemcell's record and blobs go, nothing else. */
  deleteStemcell?: (cid: string) => Promise<unknown>;
}

export interface Removed {
  task_id: number;
  deleted: string[];
  blobs: string[];
}

const label = (r: { name: string; version: string }): string => `${r.name}/${r.version}`;
const plural = (n: number, one: string): string => `${n} ${one}${n === 1 ? '' : 's'}`;

export class CatalogRemoval {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly d: CatalogRemovalDeps) {}

  /** Runs `fn` after every earlier holder: blob writes of uploads and the blob sweep never interleave. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Which releases and stemcells the deployments use now. */
  async usage(): Promise<{ usage: CatalogUsage; releases: ReleaseRecord[]; stemcells: StemcellRecord[] }> {
    const [uses, releases, stemcells] = [await this.d.store.deploymentUses(), await this.d.store.releases(), await this.d.store.stemcells()];
    return { usage: catalogUsage(uses, releases, stemcells), releases, stemcells };
  }

  /** `version` one version, or every version of `name` (refused whole when any is in use). */
  async deleteReleases(name: string, version: string | undefined, username: string): Promise<Removed> {
    const what = version === undefined ? `release ${name}` : `release ${name}/${version}`;
    const pick = (all: ReleaseRecord[]) => all.filter((r) => r.name === name && (version === undefined || r.version === version));
    // Checked before the task too, so a refusal leaves no failed task behind.
    const before = await this.usage();
    this.refuseUsedReleases(what, pick(before.releases), before.usage);
    return this.d.tasks.runInline(
      { type: 'delete_release', description: `delete ${what}`, username, locks: [ALL_DEPLOYMENTS_LOCK], params: { name, ...(version === undefined ? {} : { version }) } },
      (ctx) =>
        this.exclusive(async () => {
          const now = await this.usage();
          const doomed = newestFirst(pick(now.releases)).reverse();
          this.refuseUsedReleases(what, doomed, now.usage);
          await this.removeReleases(doomed, ctx);
          const blobs = await this.sweep(doomed.flatMap(releaseBlobs), ctx);
          const deleted = doomed.map(label);
          return { result: `Deleted ${plural(deleted.length, 'release')} (${deleted.join(', ')}) and ${plural(blobs.length, 'blob')}`, value: { task_id: ctx.task.id, deleted, blobs } };
        }),
    );
  }

  async deleteStemcell(name: string, version: string, username: string): Promise<Removed> {
    const what = `stemcell ${name}/${version}`;
    const find = (all: StemcellRecord[]) => all.find((s) => s.name === name && s.version === version);
    const before = await this.usage();
    this.refuseUsedStemcell(what, find(before.stemcells), before.usage);
    return this.d.tasks.runInline(
      { type: 'delete_stemcell', description: `delete ${what}`, username, locks: [ALL_DEPLOYMENTS_LOCK], params: { name, version } },
      (ctx) =>
        this.exclusive(async () => {
          const now = await this.usage();
          const record = find(now.stemcells);
          this.refuseUsedStemcell(what, record, now.usage);
          const candidates = await this.stemcellBlobs(record!);
          await this.removeStemcells([record!], ctx);
          const blobs = await this.sweep(candidates, ctx);
          return { result: `Deleted ${what} and ${plural(blobs.length, 'blob')}`, value: { task_id: ctx.task.id, deleted: [label(record!)], blobs } };
        }),
    );
  }

  /** The cleanup task: the unused versions but the two newest of each name, or all unused with `remove_all`. */
  cleanupHandler(): TaskHandler {
    return (ctx) =>
      this.exclusive(async () => {
        const removeAll = ctx.task.params.remove_all === true;
        const now = await this.usage();
        const chosen = cleanupChoice({ releases: now.releases, stemcells: now.stemcells, usage: now.usage, removeAll });
        ctx.log(`clean-up${removeAll ? ' --all' : ''}: ${chosen.releases.length} releases and ${chosen.stemcells.length} stemcells unused and not kept`);
        const candidates = [...chosen.releases.flatMap(releaseBlobs)];
        for (const s of chosen.stemcells) candidates.push(...(await this.stemcellBlobs(s)));
        const deleted = { releases: [] as string[], stemcells: [] as string[] };
        try {
          deleted.releases = await this.removeReleases(chosen.releases, ctx);
          deleted.stemcells = await this.removeStemcells(chosen.stemcells, ctx);
        } finally {
          // What was deleted before a failure still leaves no orphaned blob behind.
          await this.sweep(candidates, ctx);
        }
        return cleanupResult(deleted);
      });
  }

  private refuseUsedReleases(what: string, records: ReleaseRecord[], usage: CatalogUsage): void {
    if (records.length === 0) throw new CatalogError('not_found', `${what[0]!.toUpperCase()}${what.slice(1)}`);
    const used = records.filter((r) => usage.releases.get(r.id)?.length);
    if (used.length) throw new CatalogError('in_use', `Cannot delete ${what}: in use by ${used.map((r) => usedBy(label(r), usage.releases.get(r.id)!)).join(', ')}`);
  }

  private refuseUsedStemcell(what: string, record: StemcellRecord | undefined, usage: CatalogUsage): void {
    if (!record) throw new CatalogError('not_found', `${what[0]!.toUpperCase()}${what.slice(1)}`);
    const deps = usage.stemcells.get(record.id);
    if (deps?.length) throw new CatalogError('in_use', `Cannot delete ${what}: in use by ${usedBy(label(record), deps)}`);
  }

  private async removeReleases(list: ReleaseRecord[], ctx: TaskContext): Promise<string[]> {
    const done: string[] = [];
    for (const [i, r] of list.entries()) {
      ctx.signal.throwIfAborted();
      await this.d.store.deleteRelease(r.id);
      ctx.events.emit({ stage: 'Deleting releases', task: label(r), index: i + 1, total: list.length, state: 'finished', progress: 100 });
      done.push(label(r));
    }
    return done;
  }

  /** The CPI's stemcell first: when it refuses, the record stays (the error says why). */
  private async removeStemcells(list: StemcellRecord[], ctx: TaskContext): Promise<string[]> {
    const done: string[] = [];
    for (const [i, s] of list.entries()) {
      ctx.signal.throwIfAborted();
      const ev = { stage: 'Deleting stemcells', task: label(s), index: i + 1, total: list.length };
      ctx.events.emit({ ...ev, state: 'started', progress: 0 });
      if (s.cpi_cid && this.d.deleteStemcell) {
        try {
          await this.d.deleteStemcell(s.cpi_cid);
        } catch (err) {
          ctx.events.emit({ ...ev, state: 'failed', progress: 100, data: { error: (err as Error).message } });
          throw new CatalogError('cpi_failed', `Deleting stemcell ${label(s)} (cid ${s.cpi_cid}) from the CPI: ${(err as Error).message}`, { cause: err });
        }
      } else if (s.cpi_cid) ctx.log(`no CPI is wired: stemcell ${s.cpi_cid} is only forgotten`);
      await this.d.store.deleteStemcell(s.id);
      ctx.events.emit({ ...ev, state: 'finished', progress: 100 });
      done.push(label(s));
    }
    return done;
  }

  /**
   * A stemcell's blobs: its tarball and, when a CPI was given it, the image taken out of it —
   * recorded at upload; only a stemcell uploaded before that (migration 4) has its tarball read.
   */
  private async stemcellBlobs(s: StemcellRecord): Promise<string[]> {
    if (s.image_blob_id !== null) return [s.blob_id, s.image_blob_id];
    if (s.cpi_cid === null || !this.d.blobs.has(s.blob_id)) return [s.blob_id];
    try {
      const image = (await tarMembers(await this.d.blobs.get(s.blob_id), (p) => p === 'image')).get('image');
      return image ? [s.blob_id, createHash('sha256').update(image).digest('hex')] : [s.blob_id];
    } catch {
      return [s.blob_id];
    }
  }

  /** Deletes those of `candidates` that no remaining release or stemcell references; returns them. */
  private async sweep(candidates: string[], ctx: TaskContext): Promise<string[]> {
    if (candidates.length === 0) return [];
    const kept: string[] = (await this.d.store.releases()).flatMap(releaseBlobs);
    for (const s of await this.d.store.stemcells()) kept.push(...(await this.stemcellBlobs(s)));
    const gone = unreferencedBlobs(candidates, kept);
    for (const id of gone) await this.d.blobs.delete(id);
    ctx.log(`deleted ${plural(gone.length, 'blob')} no release or stemcell references any more${gone.length ? `: ${gone.join(', ')}` : ''}`);
    return gone;
  }
}

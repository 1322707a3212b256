// Staging a build: the package goes to one stager (`staging.request`, queue group
// `stagers`) with two signed, expiring URLs served by this controller — one to download
// the package, one to upload the droplet. The stager replies once with STAGED or FAILED.
// The build runs in the background: STAGING → STAGED (the droplet stored by sha256 in the
// blobstore) | FAILED with the reason.
//
// A controller restart cannot receive the reply of a staging it started, so at boot every
// build it (its config `index`) left STAGING is marked FAILED with that reason (the client
// creates a new build); its droplet upload URL is refused from then on. Builds of the other
// controllers sharing the database are theirs to settle.
import type { Logger } from 'pino';
import { BusError, replies, subjects, type Bus, type StagingReply } from '../bus/mod.ts';
import { blobPaths, type UrlSigner } from './auth/signed-urls.ts';
import type { CcConfig } from './config.ts';
import type { AppRecord, BuildRecord, PackageRecord, Store } from './db/mod.ts';
import { webProcess } from './lookups.ts';

export const INTERRUPTED = 'The cloud controller restarted while this build was staging; its result can no longer arrive. Create a new build.';

export class Stager {
  private readonly inFlight = new Set<Promise<void>>();
  readonly counts = { requested: 0, staged: 0, failed: 0 };

  constructor(
    private readonly d: {
      store: Store;
      bus: Bus;
      signer: UrlSigner;
      config: CcConfig;
      log: Logger;
      apiLog: (appGuid: string, line: string, stream?: 'out' | 'err') => void;
    },
  ) {}

  /** At boot: builds whose stager reply can no longer arrive. */
  async failInterrupted(): Promise<number> {
    const stuck = await this.d.store.builds.list({ state: 'STAGING', controller_index: this.d.config.index });
    for (const b of stuck) await this.fail(b, INTERRUPTED);
    return stuck.length;
  }

  /** Sends the build to a stager; resolves at once, the build moves on in the background. */
  stage(build: BuildRecord, pkg: PackageRecord & { sha256: string }, app: AppRecord): void {
    const p = this.run(build, pkg, app)
      .catch(async (err: unknown) => {
        this.d.log.error({ build_id: build.guid, err: err instanceof Error ? err.stack : String(err) }, 'staging failed unexpectedly');
        await this.fail(build, `Staging failed: ${(err as Error).message}`).catch(() => undefined);
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  get active(): number {
    return this.inFlight.size;
  }

  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private async run(build: BuildRecord, pkg: PackageRecord & { sha256: string }, app: AppRecord): Promise<void> {
    const { config } = this.d;
    const process = await webProcess(this.d.store, app.guid);
    const timeoutS = config.staging.timeout_s;
    this.counts.requested++;
    this.d.apiLog(app.guid, `Staging package ${pkg.guid} of ${app.name} (build ${build.guid})`);
    let reply: StagingReply;
    try {
      reply = await this.d.bus.request(
        subjects.stagingRequest,
        {
          app_id: app.guid,
          build_id: build.guid,
          package_uri: this.d.signer.sign('GET', blobPaths.packageDownload(pkg.guid), config.signed_url_ttl_s),
          package_sha256: pkg.sha256,
          // The upload comes at the end of staging: its URL must outlive the staging timeout.
          droplet_upload_uri: this.d.signer.sign('PUT', blobPaths.dropletUpload(build.droplet_guid), Math.ceil(timeoutS) + config.signed_url_ttl_s),
          ...(build.buildpacks[0] ? { buildpack: build.buildpacks[0] } : {}),
          env: { ...app.environment_variables },
          limits: { memory_mb: build.staging_memory_in_mb, disk_mb: build.staging_disk_in_mb },
          stack: build.stack,
          ...(process?.command ? { command: process.command } : {}),
        },
        replies.stagingRequest,
        { timeoutMs: timeoutS * 1000 },
      );
    } catch (err) {
      const reason =
        err instanceof BusError && err.code === 'no_responders'
          ? 'No stager is available (no DEA answers staging.request)'
          : err instanceof BusError && err.code === 'timeout'
            ? `Staging timed out after ${timeoutS} s`
            : `Staging request failed: ${(err as Error).message}`;
      await this.fail(build, reason);
      return;
    }
    if (reply.build_id !== build.guid) {
      await this.fail(build, `The stager replied for build ${reply.build_id}, not ${build.guid}`);
      return;
    }
    if (reply.state === 'FAILED') {
      await this.fail(build, reply.error ?? 'Staging failed');
      return;
    }
    const droplet = await this.d.store.droplets.get(build.droplet_guid);
    if (!droplet?.sha256) {
      await this.fail(build, 'The stager reported STAGED but uploaded no droplet');
      return;
    }
    if (reply.droplet_sha256 && reply.droplet_sha256 !== droplet.sha256) {
      await this.fail(build, `The uploaded droplet's sha256 ${droplet.sha256} is not the ${reply.droplet_sha256} the stager reported`);
      return;
    }
    const current = await this.d.store.builds.get(build.guid);
    if (current?.state !== 'STAGING') return; // failed meanwhile (e.g. its app was deleted)
    await this.d.store.transaction(async (tx) => {
      await tx.droplets.update(droplet.guid, {
        state: 'STAGED',
        buildpack: reply.detected_buildpack ?? null,
        process_types: reply.start_command ? { web: reply.start_command } : {},
      });
      await tx.builds.update(build.guid, { state: 'STAGED' });
    });
    this.counts.staged++;
    this.d.apiLog(app.guid, `Build ${build.guid} staged: droplet ${droplet.guid}${reply.detected_buildpack ? ` (${reply.detected_buildpack})` : ''}`);
  }

  private async fail(build: BuildRecord, reason: string): Promise<void> {
    this.counts.failed++;
    await this.d.store.transaction(async (tx) => {
      await tx.builds.updateWhere({ guid: build.guid, state: 'STAGING' }, { state: 'FAILED', error: reason });
      await tx.droplets.updateWhere({ guid: build.droplet_guid, state: 'STAGING' }, { state: 'FAILED', error: reason });
    });
    this.d.log.warn({ build_id: build.guid, app_id: build.app_guid, reason }, 'build failed');
    this.d.apiLog(build.app_guid, `Build ${build.guid} failed: ${reason}`, 'err');
  }
}

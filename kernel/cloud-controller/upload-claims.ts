// Who is receiving a package's bits, so that a controller fails only the uploads that are
// really dead. Claiming a package (AWAITING_UPLOAD or FAILED → PROCESSING_UPLOAD) records the
// controller's config `index` and a token of this upload; until the upload is settled the
// controller touches the package every `upload_heartbeat_s` (its updated_at is the heartbeat).
// An upload is dead when the controller receiving it is:
// - at start, a controller fails the uploads its own index left — its previous process is gone
//   (controllers sharing a database have distinct indexes; staging builds rely on it too);
// - every heartbeat, each controller fails the uploads nobody touched for STALE_AFTER
//   heartbeats — their controller stopped and has not come back. Several heartbeats, so that
//   a slow statement or a few seconds of clock skew between hosts never fails a live upload.
// Another controller's live upload is left alone. Only the claim's holder moves the package on,
// so a controller given up on while merely stalled cannot overwrite a later upload.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { PackageRecord, Store } from './db/mod.ts';

export const CUT_OFF_BY_RESTART = 'The upload was cut off by a controller restart; upload the bits again.';

/** Heartbeats an upload may miss before it counts as dead. */
const STALE_AFTER = 3;

const RELEASED = { upload_controller_index: null, upload_claim: null } as const;

/** How an upload ends: the package's new state and what goes with it. */
export type UploadOutcome = Partial<Pick<PackageRecord, 'state' | 'sha256' | 'size' | 'error'>>;

/** An upload this controller holds, touched until it is settled. */
export interface UploadClaim {
  /** Moves the package on and ends the claim: the package, or undefined when the claim was lost (failed as dead meanwhile). */
  settle(outcome: UploadOutcome): Promise<PackageRecord | undefined>;
}

export class UploadClaims {
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly d: { store: Store; index: number; heartbeatS: number; log: Logger }) {}

  /** Claims the package for an upload if it awaits bits (or its last upload failed); else undefined. */
  async claim(pkgGuid: string): Promise<UploadClaim | undefined> {
    const { store, log } = this.d;
    const token = randomUUID();
    const claimed = await store.packages.updateWhere(
      { guid: pkgGuid, state: ['AWAITING_UPLOAD', 'FAILED'] },
      { state: 'PROCESSING_UPLOAD', error: null, upload_controller_index: this.d.index, upload_claim: token },
    );
    if (claimed === 0) return undefined;
    const mine = { guid: pkgGuid, state: 'PROCESSING_UPLOAD', upload_claim: token } as const;
    const heartbeat = setInterval(() => {
      store.packages.updateWhere(mine, {}).catch((err: unknown) => log.warn({ package_id: pkgGuid, err: (err as Error).message }, 'upload heartbeat failed'));
    }, this.d.heartbeatS * 1000);
    return {
      async settle(outcome) {
        clearInterval(heartbeat);
        const settled = await store.packages.updateWhere(mine, { ...outcome, ...RELEASED });
        return settled === 0 ? undefined : store.packages.get(pkgGuid);
      },
    };
  }

  /** At start: the uploads this controller's previous process left, and those gone silent. */
  async failDead(): Promise<number> {
    const own = await this.d.store.packages.updateWhere(
      { state: 'PROCESSING_UPLOAD', upload_controller_index: this.d.index },
      { state: 'FAILED', error: CUT_OFF_BY_RESTART, ...RELEASED },
    );
    return own + (await this.failSilent());
  }

  /** Checks for silent uploads every heartbeat until stop(). */
  start(): void {
    this.sweeper = setInterval(() => {
      this.failSilent()
        .then((n) => n > 0 && this.d.log.warn({ packages: n }, 'uploads whose controller went silent marked FAILED'))
        .catch((err: unknown) => this.d.log.warn({ err: (err as Error).message }, 'checking for silent uploads failed'));
    }, this.d.heartbeatS * 1000);
  }

  stop(): void {
    clearInterval(this.sweeper);
  }

  private failSilent(): Promise<number> {
    const boundS = STALE_AFTER * this.d.heartbeatS;
    const cutoff = new Date(Date.now() - boundS * 1000).toISOString();
    return this.d.store.packages.updateWhere(
      { state: 'PROCESSING_UPLOAD', $lt: { updated_at: cutoff } },
      { state: 'FAILED', error: `The controller receiving this upload stopped (nothing heard from it for ${boundS} s); upload the bits again.`, ...RELEASED },
    );
  }
}

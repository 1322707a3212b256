// The intended state: what the controller wants running. Loaded in full from the
// controller's bulk endpoint at start and every resync interval, and app by app when
// `droplet.updated` says one changed (kernel/cloud-controller/API.md, "the bulk API"):
//   GET /bulk/apps?batch_size=N&bulk_token={"id":"<last guid>"}  every STARTED app, paged
//   GET /bulk/apps/:guid                                        one app in any state; 404 = deleted
// The replies are validated here, at the edge; the analysis trusts what this holds.
import { z } from 'zod';
import { HmError } from './errors.ts';
import type { DesiredApp, IntendedSnapshot } from './types.ts';

const bulkApp = z
  .object({
    id: z.string().min(1),
    name: z.string(),
    version: z.string().min(1),
    instances: z.number().int().min(0),
    state: z.enum(['STARTED', 'STOPPED']),
    package_state: z.string(),
  })
  .passthrough();
export type BulkApp = z.infer<typeof bulkApp>;

const bulkPage = z
  .object({
    results: z.record(bulkApp),
    bulk_token: z.object({ id: z.string() }).passthrough(),
  })
  .passthrough();

/** A safety stop for a cursor that never advances: 5000 pages of up to 5000 apps. */
const MAX_PAGES = 5000;

export interface BulkClientOptions {
  /** One controller's base URL, or several sharing one database (tried in turn). */
  urls: string[];
  user: string;
  password: string;
  batchSize: number;
  timeoutMs: number;
}

export class BulkClient {
  private readonly bases: string[];
  private readonly auth: string;
  /** The controller that answered last: asked first next time. */
  private preferred = 0;

  constructor(private readonly opts: BulkClientOptions) {
    if (opts.urls.length === 0) throw new Error('BulkClient: no controller URL');
    this.bases = opts.urls.map((u) => u.replace(/\/+$/, ''));
    this.auth = `Basic ${Buffer.from(`${opts.user}:${opts.password}`).toString('base64')}`;
  }

  private get base(): string {
    return this.bases[this.preferred]!;
  }

  /** Every STARTED app, page by page. */
  async all(): Promise<BulkApp[]> {
    const apps: BulkApp[] = [];
    let token: { id?: string } = {};
    for (let page = 0; page < MAX_PAGES; page++) {
      const path = `/bulk/apps?batch_size=${this.opts.batchSize}&bulk_token=${encodeURIComponent(JSON.stringify(token))}`;
      const body = await this.get(path, 'Loading the desired state');
      const parsed = bulkPage.safeParse(body);
      if (!parsed.success) throw invalid(`${this.base}/bulk/apps`, parsed.error);
      const results = Object.values(parsed.data.results);
      if (results.length === 0 || parsed.data.bulk_token.id === token.id) return apps;
      apps.push(...results);
      token = { id: parsed.data.bulk_token.id };
    }
    return apps;
  }

  /** One app in any state; undefined when the controller no longer has it. */
  async one(appId: string): Promise<BulkApp | undefined> {
    const body = await this.get(`/bulk/apps/${encodeURIComponent(appId)}`, `Reading the desired state of app ${appId}`, true);
    if (body === undefined) return undefined;
    const parsed = bulkApp.safeParse(body);
    if (!parsed.success) throw invalid(`${this.base}/bulk/apps/${appId}`, parsed.error);
    return parsed.data;
  }

  /**
   * Asks the preferred controller, then each other in turn when one cannot be reached or fails
   * (5xx): controllers sharing a database answer alike, so a paged cursor survives the switch.
   * A refused credential or a malformed reply is the same everywhere and ends the attempt.
   */
  private async get(path: string, doing: string, notFoundIsEmpty = false): Promise<unknown> {
    let failure: HmError | undefined;
    for (let i = 0; i < this.bases.length; i++) {
      const at = (this.preferred + i) % this.bases.length;
      try {
        const body = await this.getFrom(this.bases[at]!, path, doing, notFoundIsEmpty);
        this.preferred = at;
        return body;
      } catch (err) {
        if (!(err instanceof HmError) || err.code !== 'bulk_request_failed') throw err;
        failure = err;
      }
    }
    throw failure!;
  }

  private async getFrom(base: string, path: string, doing: string, notFoundIsEmpty: boolean): Promise<unknown> {
    const url = `${base}${path}`;
    let res: Response;
    try {
      res = await fetch(url, { headers: { authorization: this.auth, accept: 'application/json' }, signal: AbortSignal.timeout(this.opts.timeoutMs) });
    } catch (err) {
      const why = (err as Error).name === 'TimeoutError' ? `no answer within ${this.opts.timeoutMs} ms` : ((err as { cause?: Error }).cause?.message ?? (err as Error).message);
      throw new HmError('bulk_request_failed', `${doing} from ${base}: ${why}`, { cause: err });
    }
    const text = await res.text().catch(() => '');
    if (res.status === 404 && notFoundIsEmpty) return undefined;
    if (res.status === 401 || res.status === 403) {
      throw new HmError('bulk_unauthorized', `${doing} from ${base}: HTTP ${res.status}; check bulk_api.user and bulk_api.password against the controller's bulk_api`);
    }
    if (!res.ok) throw new HmError('bulk_request_failed', `${doing} from ${base}: HTTP ${res.status} ${text.slice(0, 200)}`);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new HmError('bulk_invalid_reply', `${doing} from ${base}: the reply is not JSON`);
    }
  }
}

function invalid(url: string, error: z.ZodError): HmError {
  const first = error.issues[0];
  return new HmError('bulk_invalid_reply', `Reading ${url}: unexpected reply (${first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'invalid'})`);
}

/** The source of desired state: the controller, or a fake in tests. */
export interface DesiredStateSource {
  all(): Promise<BulkApp[]>;
  one(appId: string): Promise<BulkApp | undefined>;
}

export class IntendedState {
  private readonly apps = new Map<string, BulkApp>();
  /** When the controller last told us about each app (the start of that read): fresher wins. */
  private readonly fetchedAt = new Map<string, number>();
  /** When each app was last seen to change (droplet.updated, or a read that differed). */
  private readonly changedAt = new Map<string, number>();
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private loadedAt: number | undefined;
  readonly counts = { full_loads: 0, full_load_failures: 0, app_reads: 0, app_read_failures: 0 };
  lastError: string | undefined;

  constructor(
    private readonly source: DesiredStateSource,
    private readonly clock: () => number = Date.now,
  ) {}

  get loaded(): boolean {
    return this.loadedAt !== undefined;
  }

  get size(): number {
    return this.apps.size;
  }

  has(appId: string): boolean {
    return this.apps.has(appId);
  }

  /**
   * The full walk. An app read on its own after the walk began keeps that fresher record; an
   * app the walk no longer lists (stopped or deleted) is forgotten unless read since.
   */
  async loadAll(): Promise<void> {
    const began = this.clock();
    let records: BulkApp[];
    try {
      records = await this.source.all();
    } catch (err) {
      this.counts.full_load_failures++;
      this.lastError = (err as Error).message;
      throw err;
    }
    const listed = new Set<string>();
    for (const r of records) {
      listed.add(r.id);
      if ((this.fetchedAt.get(r.id) ?? -Infinity) > began) continue;
      this.apply(r, began);
    }
    for (const id of [...this.apps.keys()]) {
      if (!listed.has(id) && (this.fetchedAt.get(id) ?? -Infinity) <= began) this.forget(id);
    }
    for (const [id, at] of this.fetchedAt) if (!this.apps.has(id) && at <= began) this.fetchedAt.delete(id);
    this.loadedAt ??= this.clock();
    this.counts.full_loads++;
    this.lastError = undefined;
  }

  /** droplet.updated: the app is left alone for the quiet period from now, and read again. */
  changed(appId: string): Promise<void> {
    this.changedAt.set(appId, this.clock());
    return this.refresh(appId);
  }

  /** Reads one app again. Reads of one app never overlap: a request meanwhile reads once more after. */
  refresh(appId: string): Promise<void> {
    const running = this.inflight.get(appId);
    if (running) {
      this.again.add(appId);
      return running;
    }
    const p = (async () => {
      do {
        this.again.delete(appId);
        await this.readOne(appId);
      } while (this.again.has(appId));
    })().finally(() => this.inflight.delete(appId));
    this.inflight.set(appId, p);
    return p;
  }

  snapshot(): IntendedSnapshot {
    const apps = new Map<string, DesiredApp>();
    for (const r of this.apps.values()) {
      apps.set(r.id, {
        app_id: r.id,
        name: r.name,
        version: r.version,
        instances: r.instances,
        state: r.state,
        package_state: r.package_state,
        changed_at: this.changedAt.get(r.id),
      });
    }
    return { apps, loaded_at: this.loadedAt };
  }

  private async readOne(appId: string): Promise<void> {
    const began = this.clock();
    let record: BulkApp | undefined;
    try {
      record = await this.source.one(appId);
    } catch (err) {
      this.counts.app_read_failures++;
      this.lastError = (err as Error).message;
      throw err;
    }
    this.counts.app_reads++;
    if (record) this.apply(record, began);
    else this.forget(appId);
    this.fetchedAt.set(appId, began);
  }

  private apply(r: BulkApp, fetchedAt: number): void {
    const before = this.apps.get(r.id);
    const differs = before ? before.version !== r.version || before.instances !== r.instances || before.state !== r.state : this.loadedAt !== undefined;
    // A change (announced or found by a reload after a lost droplet.updated) starts the
    // quiet period again from when the HM learned what it is.
    if (differs) this.changedAt.set(r.id, this.clock());
    this.apps.set(r.id, r);
    this.fetchedAt.set(r.id, fetchedAt);
  }

  private forget(appId: string): void {
    this.apps.delete(appId);
    this.changedAt.delete(appId);
  }
}

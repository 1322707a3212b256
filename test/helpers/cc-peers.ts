// Test peers of the cloud controller that speak the real NATS protocol (the kernel bus and
// its schemas): a stager that downloads the package from its signed URL, uploads a droplet
// to the signed URL and replies STAGED (or FAILED on request); and DEAs that answer
// dea.discover, record starts, stops and updates, fetch the droplet, turn instances RUNNING
// after a delay, and answer dea.find.droplet. Every event lands in one ordered journal.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { Bus, replies, subjects, type DeaStart, type DeaStop, type InstanceState, type StagingRequest } from '../../kernel/bus/mod.ts';
import type { NatsServer } from './nats-server.ts';

export type JournalEvent =
  | { type: 'start'; dea: string; at: number; msg: DeaStart; droplet_ok: boolean }
  | { type: 'running'; dea: string; at: number; app_id: string; index: number; version: string; instance_id: string }
  | { type: 'stop'; dea: string; at: number; msg: DeaStop; stopped: string[] }
  | { type: 'update'; dea: string; at: number; app_id: string; uris: string[] }
  | { type: 'staging'; at: number; msg: StagingRequest; package_bytes: number };

export class Journal {
  readonly events: JournalEvent[] = [];
  push(e: JournalEvent): void {
    this.events.push(e);
  }
  starts(appId?: string) {
    return this.events.filter((e): e is Extract<JournalEvent, { type: 'start' }> => e.type === 'start' && (!appId || e.msg.app_id === appId));
  }
  stops(appId?: string) {
    return this.events.filter((e): e is Extract<JournalEvent, { type: 'stop' }> => e.type === 'stop' && (!appId || e.msg.app_id === appId));
  }
  updates(appId?: string) {
    return this.events.filter((e): e is Extract<JournalEvent, { type: 'update' }> => e.type === 'update' && (!appId || e.app_id === appId));
  }
  since(n: number): JournalEvent[] {
    return this.events.slice(n);
  }
}

const quiet = pino({ level: 'silent' });

async function connect(nats: NatsServer, name: string): Promise<Bus> {
  return Bus.connect({ ...nats.componentConfig, name, logger: quiet });
}

export interface PeerInstance {
  instance_id: string;
  app_id: string;
  index: number;
  version: string;
  state: InstanceState;
  state_timestamp: number;
  started_at: number;
}

export class TestDea {
  readonly instances = new Map<string, PeerInstance>();
  private constructor(
    readonly id: string,
    private readonly bus: Bus,
    private readonly journal: Journal,
    private readonly opts: { runAfterMs: number; discoverDelayMs: number },
  ) {}

  static async start(nats: NatsServer, id: string, journal: Journal, opts: Partial<{ runAfterMs: number; discoverDelayMs: number }> = {}): Promise<TestDea> {
    const dea = new TestDea(id, await connect(nats, `test-dea/${id}`), journal, { runAfterMs: opts.runAfterMs ?? 150, discoverDelayMs: opts.discoverDelayMs ?? 0 });
    dea.listen();
    await dea.bus.flush();
    return dea;
  }

  /** Pretends instances of an app crashed (gone without being asked). */
  crash(appId: string, index: number): void {
    for (const [id, i] of this.instances) if (i.app_id === appId && i.index === index) this.instances.delete(id);
  }

  active(appId: string): PeerInstance[] {
    return [...this.instances.values()].filter((i) => i.app_id === appId);
  }

  async close(): Promise<void> {
    await this.bus.close();
  }

  private listen(): void {
    const { bus } = this;
    bus.subscribe(subjects.deaDiscover, (_msg, ctx) => {
      if (!ctx.reply) return;
      const reply = ctx.reply;
      setTimeout(() => bus.respond(reply, replies.deaDiscover, { dea_id: this.id, host: '127.0.0.1' }), this.opts.discoverDelayMs);
    });
    bus.subscribe(subjects.deaStart(this.id), async (msg) => {
      const at = Date.now();
      const instance: PeerInstance = { instance_id: msg.instance_id ?? `${this.id}-${at}`, app_id: msg.app_id, index: msg.index, version: msg.version, state: 'STARTING', state_timestamp: at / 1000, started_at: at };
      this.instances.set(instance.instance_id, instance);
      let dropletOk = false;
      try {
        const res = await fetch(msg.droplet_uri);
        const bytes = Buffer.from(await res.arrayBuffer());
        dropletOk = res.ok && createHash('sha256').update(bytes).digest('hex') === msg.droplet_sha256;
      } catch {
        dropletOk = false;
      }
      this.journal.push({ type: 'start', dea: this.id, at, msg, droplet_ok: dropletOk });
      setTimeout(() => {
        if (!this.instances.has(instance.instance_id)) return;
        instance.state = 'RUNNING';
        instance.state_timestamp = Date.now() / 1000;
        this.journal.push({ type: 'running', dea: this.id, at: Date.now(), app_id: msg.app_id, index: msg.index, version: msg.version, instance_id: instance.instance_id });
      }, this.opts.runAfterMs);
    });
    bus.subscribe(subjects.deaStop, (msg) => {
      const stopped: string[] = [];
      for (const [id, i] of this.instances) {
        if (matches(i, msg)) {
          this.instances.delete(id);
          stopped.push(id);
        }
      }
      this.journal.push({ type: 'stop', dea: this.id, at: Date.now(), msg, stopped });
    });
    bus.subscribe(subjects.deaUpdate, (msg) => {
      this.journal.push({ type: 'update', dea: this.id, at: Date.now(), app_id: msg.app_id, uris: msg.uris });
    });
    bus.subscribe(subjects.deaFindDroplet, (msg, ctx) => {
      if (!ctx.reply) return;
      for (const i of this.instances.values()) {
        if (!matches(i, msg)) continue;
        bus.respond(ctx.reply, replies.deaFindDroplet, {
          dea_id: this.id,
          app_id: i.app_id,
          version: i.version,
          instance_id: i.instance_id,
          index: i.index,
          state: i.state,
          state_timestamp: i.state_timestamp,
          host: '127.0.0.1',
          port: 61000 + i.index,
          ...(msg.include_stats
            ? { stats: { uptime_s: (Date.now() - i.started_at) / 1000, cpu_percent: 12.5, memory_bytes: 50 * 1024 * 1024, memory_quota_bytes: 256 * 1024 * 1024, disk_bytes: 10 * 1024 * 1024, disk_quota_bytes: 1024 * 1024 * 1024 } }
            : {}),
        });
      }
    });
  }
}

function matches(i: PeerInstance, f: { app_id: string; version?: string | undefined; instance_ids?: string[] | undefined; indices?: number[] | undefined; states?: InstanceState[] | undefined }): boolean {
  if (i.app_id !== f.app_id) return false;
  if (f.version !== undefined && i.version !== f.version) return false;
  if (f.instance_ids !== undefined && !f.instance_ids.includes(i.instance_id)) return false;
  if (f.indices !== undefined && !f.indices.includes(i.index)) return false;
  if (f.states !== undefined && !f.states.includes(i.state)) return false;
  return true;
}

export class TestStager {
  private failures: string[] = [];
  private held: Array<() => void> = [];
  private holdNext = false;
  readonly requests: StagingRequest[] = [];
  uploads: Array<{ status: number; body: string }> = [];

  private constructor(
    private readonly bus: Bus,
    private readonly journal: Journal,
  ) {}

  static async start(nats: NatsServer, journal: Journal): Promise<TestStager> {
    const s = new TestStager(await connect(nats, 'test-stager'), journal);
    s.listen();
    await s.bus.flush();
    return s;
  }

  /** The next staging replies FAILED with this error. */
  failNext(error: string): void {
    this.failures.push(error);
  }

  /** The next staging waits until release() before it uploads and replies. */
  hold(): void {
    this.holdNext = true;
  }

  release(): void {
    for (const r of this.held.splice(0)) r();
  }

  get waiting(): number {
    return this.held.length;
  }

  async close(): Promise<void> {
    this.release();
    await this.bus.close();
  }

  private listen(): void {
    this.bus.subscribe(
      subjects.stagingRequest,
      async (msg, ctx) => {
        this.requests.push(msg);
        const reply = ctx.reply!;
        if (this.holdNext) {
          this.holdNext = false;
          await new Promise<void>((r) => this.held.push(r));
        }
        const pkg = await fetch(msg.package_uri);
        const bits = Buffer.from(await pkg.arrayBuffer());
        this.journal.push({ type: 'staging', at: Date.now(), msg, package_bytes: bits.length });
        const failure = this.failures.shift();
        if (failure) {
          this.bus.respond(reply, replies.stagingRequest, { build_id: msg.build_id, state: 'FAILED', error: failure });
          return;
        }
        if (!pkg.ok || (msg.package_sha256 && createHash('sha256').update(bits).digest('hex') !== msg.package_sha256)) {
          this.bus.respond(reply, replies.stagingRequest, { build_id: msg.build_id, state: 'FAILED', error: `package download failed: HTTP ${pkg.status}` });
          return;
        }
        // The "droplet": the package, gzipped — any bytes do for the controller.
        const droplet = gzipSync(Buffer.concat([Buffer.from(`droplet of ${msg.app_id}\n`), bits]));
        const sha256 = createHash('sha256').update(droplet).digest('hex');
        const up = await fetch(msg.droplet_upload_uri, {
          method: 'PUT',
          body: droplet,
          headers: { 'content-type': 'application/gzip', 'content-digest': `sha-256=:${Buffer.from(sha256, 'hex').toString('base64')}:` },
        });
        this.uploads.push({ status: up.status, body: await up.text() });
        if (!up.ok) {
          this.bus.respond(reply, replies.stagingRequest, { build_id: msg.build_id, state: 'FAILED', error: `droplet upload failed: HTTP ${up.status}` });
          return;
        }
        this.bus.respond(reply, replies.stagingRequest, { build_id: msg.build_id, state: 'STAGED', droplet_sha256: sha256, detected_buildpack: 'test-buildpack', start_command: 'node server.js' });
      },
      { queue: 'stagers' },
    );
  }
}

/** A raw bus for the test itself: publish hm requests and logs, watch droplet.updated. */
export async function testBus(nats: NatsServer): Promise<Bus> {
  return connect(nats, 'test');
}

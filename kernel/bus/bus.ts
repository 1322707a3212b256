// The kernel bus: a NATS connection whose every message is typed by the catalogue in
// subjects.ts. Incoming messages are parsed and validated here, once; a message that fails
// is dropped, counted and logged (rate-limited), and a handler that throws never kills its
// subscription. Components see only typed messages.
import { connect, createInbox, Events, type NatsConnection, type Msg, type Subscription } from 'nats';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { BusError } from './errors.ts';
import type { Topic } from './subjects.ts';

export interface BusOptions {
  servers: string[];
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
  /** Connection name shown by nats-server (`<type>/<index>/<uuid>`). */
  name: string;
  logger: Logger;
  /** A dead server is noticed after pingIntervalMs × maxPingOut (defaults: 4 s × 2 ≈ 8–12 s). */
  pingIntervalMs?: number;
  maxPingOut?: number;
  /** Base wait between reconnect attempts; jitter is added so a fleet does not stampede. */
  reconnectTimeWaitMs?: number;
}

export interface Inbound<T> {
  subject: string;
  /** Present when the sender asked for a reply (a request). */
  reply?: string | undefined;
  msg: T;
}

export interface SubscribeOptions {
  queue?: string;
}

type Handler<T> = (msg: T, ctx: Inbound<T>) => void | Promise<void>;

export interface BusStats {
  published: number;
  received: number;
  /** Messages dropped because they failed their schema (or were not JSON), per subject pattern. */
  invalid: Record<string, number>;
  handler_errors: number;
  reconnects: number;
  connected: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** At most one "dropped a malformed message" log line per subject in this window. */
const INVALID_LOG_WINDOW_MS = 10_000;

export class Bus {
  private readonly subs = new Set<Subscription>();
  private readonly reconnectHooks: Array<() => void> = [];
  private readonly disconnectHooks: Array<() => void> = [];
  private disconnectedAt: number | undefined;
  private readonly lastInvalidLog = new Map<string, { at: number; suppressed: number }>();
  private readonly counters: BusStats = { published: 0, received: 0, invalid: {}, handler_errors: 0, reconnects: 0, connected: true };
  private closing = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {
    void this.watchStatus();
  }

  /** Connects, waiting for the first server as long as it takes (components start in any order). */
  static async connect(opts: BusOptions): Promise<Bus> {
    const auth = opts.token !== undefined ? { token: opts.token } : { user: opts.user, pass: opts.password };
    try {
      const nc = await connect({
        servers: opts.servers,
        name: opts.name,
        ...auth,
        maxReconnectAttempts: -1,
        reconnectTimeWait: opts.reconnectTimeWaitMs ?? 1000,
        reconnectJitter: 500,
        pingInterval: opts.pingIntervalMs ?? 4000,
        maxPingOut: opts.maxPingOut ?? 2,
        waitOnFirstConnect: true,
        timeout: 5000,
      });
      return new Bus(nc, opts.logger);
    } catch (err) {
      throw new BusError('connect_failed', `Connecting to NATS at ${opts.servers.join(', ')}: ${(err as Error).message}`, { cause: err });
    }
  }

  get connected(): boolean {
    return this.counters.connected;
  }

  /** How long the connection has been down (0 while connected). */
  disconnectedForMs(now = Date.now()): number {
    return this.disconnectedAt === undefined ? 0 : now - this.disconnectedAt;
  }

  /** Called after every reconnect: re-announce, re-register. */
  onReconnected(hook: () => void): void {
    this.reconnectHooks.push(hook);
  }

  onDisconnected(hook: () => void): void {
    this.disconnectHooks.push(hook);
  }

  stats(): BusStats {
    return { ...this.counters, invalid: { ...this.counters.invalid } };
  }

  /** Largest payload the server accepts. */
  get maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  publish<S extends z.ZodTypeAny>(topic: Topic<S>, msg: z.input<S>, opts: { reply?: string } = {}): void {
    assertConcrete(topic.subject);
    this.nc.publish(topic.subject, this.encode(topic, msg), opts.reply ? { reply: opts.reply } : undefined);
    this.counters.published++;
  }

  /** Answers a request received by a handler; the reply is validated against its schema. */
  respond<S extends z.ZodTypeAny>(replyTo: string, schema: S, msg: z.input<S>): void {
    this.publish({ subject: replyTo, schema }, msg);
  }

  subscribe<S extends z.ZodTypeAny>(topic: Topic<S>, handler: Handler<z.output<S>>, opts: SubscribeOptions = {}): () => void {
    const sub = this.nc.subscribe(topic.subject, {
      ...(opts.queue ? { queue: opts.queue } : {}),
      callback: (err, m) => {
        if (err) {
          this.log.warn({ subject: topic.subject, err: err.message }, 'subscription error');
          return;
        }
        this.deliver(topic, m, handler);
      },
    });
    this.subs.add(sub);
    return () => {
      this.subs.delete(sub);
      sub.unsubscribe();
    };
  }

  /** One request, one validated reply. */
  async request<S extends z.ZodTypeAny, R extends z.ZodTypeAny>(
    topic: Topic<S>,
    msg: z.input<S>,
    replySchema: R,
    opts: { timeoutMs?: number } = {},
  ): Promise<z.output<R>> {
    assertConcrete(topic.subject);
    const timeout = opts.timeoutMs ?? 5000;
    let reply: Msg;
    try {
      reply = await this.nc.request(topic.subject, this.encode(topic, msg), { timeout });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '503') throw new BusError('no_responders', `No one answers on ${topic.subject}`, { cause: err });
      throw new BusError('timeout', `No reply on ${topic.subject} within ${timeout} ms`, { cause: err });
    }
    this.counters.published++;
    const parsed = this.decode(topic.subject, replySchema, reply.data);
    if (!parsed.ok) throw new BusError('invalid_reply', `Invalid reply on ${topic.subject}: ${parsed.reason}`);
    return parsed.value;
  }

  /**
   * A request with many answers (dea.discover, dea.find.droplet): gathers valid replies until
   * `max` have arrived or `windowMs` has passed. Invalid replies are dropped and counted.
   */
  async requestMany<S extends z.ZodTypeAny, R extends z.ZodTypeAny>(
    topic: Topic<S>,
    msg: z.input<S>,
    replySchema: R,
    opts: { windowMs: number; max?: number },
  ): Promise<Array<z.output<R>>> {
    assertConcrete(topic.subject);
    const inbox = createInbox();
    const replies: Array<z.output<R>> = [];
    const max = opts.max ?? Number.POSITIVE_INFINITY;
    return new Promise((resolve) => {
      const sub = this.nc.subscribe(inbox, {
        callback: (err, m) => {
          if (err) return;
          // The server's "no responders" status (503, no body) is not a malformed reply.
          if (m.data.length === 0 && m.headers?.code === 503) return;
          const parsed = this.decode(topic.subject, replySchema, m.data);
          if (parsed.ok) replies.push(parsed.value);
          if (replies.length >= max) finish();
        },
      });
      const timer = setTimeout(finish, opts.windowMs);
      function finish(): void {
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(replies);
      }
      this.nc.publish(topic.subject, this.encode(topic, msg), { reply: inbox });
      this.counters.published++;
    });
  }

  /** Flushes pending publishes to the server. */
  async flush(): Promise<void> {
    await this.nc.flush();
  }

  /** Drains subscriptions (in-flight handlers finish) and closes the connection. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    try {
      if (!this.nc.isClosed()) await this.nc.drain();
    } catch {
      await this.nc.close();
    }
  }

  private encode<S extends z.ZodTypeAny>(topic: Topic<S>, msg: z.input<S>): Uint8Array {
    const parsed = topic.schema.safeParse(msg);
    if (!parsed.success) {
      throw new BusError('invalid_outgoing', `Refusing to publish an invalid message on ${topic.subject}: ${describeZod(parsed.error)}`);
    }
    return encoder.encode(JSON.stringify(parsed.data));
  }

  private deliver<S extends z.ZodTypeAny>(topic: Topic<S>, m: Msg, handler: Handler<z.output<S>>): void {
    this.counters.received++;
    const parsed = this.decode(topic.subject, topic.schema, m.data, m.subject);
    if (!parsed.ok) return;
    const ctx: Inbound<z.output<S>> = { subject: m.subject, reply: m.reply || undefined, msg: parsed.value };
    const onError = (err: unknown): void => {
      this.counters.handler_errors++;
      this.log.error({ subject: m.subject, err: err instanceof Error ? err.message : String(err) }, 'handler failed');
    };
    try {
      const result = handler(parsed.value, ctx);
      if (result instanceof Promise) result.catch(onError);
    } catch (err) {
      onError(err);
    }
  }

  private decode<S extends z.ZodTypeAny>(
    pattern: string,
    schema: S,
    data: Uint8Array,
    subject = pattern,
  ): { ok: true; value: z.output<S> } | { ok: false; reason: string } {
    let json: unknown;
    try {
      json = JSON.parse(decoder.decode(data));
    } catch {
      return this.invalid(pattern, subject, `not JSON (${data.length} bytes)`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) return this.invalid(pattern, subject, describeZod(parsed.error));
    return { ok: true, value: parsed.data };
  }

  private invalid(pattern: string, subject: string, reason: string): { ok: false; reason: string } {
    this.counters.invalid[pattern] = (this.counters.invalid[pattern] ?? 0) + 1;
    const now = Date.now();
    const last = this.lastInvalidLog.get(pattern);
    if (!last || now - last.at >= INVALID_LOG_WINDOW_MS) {
      this.log.warn({ subject, reason, suppressed: last?.suppressed ?? 0 }, 'dropped a malformed message');
      this.lastInvalidLog.set(pattern, { at: now, suppressed: 0 });
    } else {
      last.suppressed++;
    }
    return { ok: false, reason };
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === Events.Disconnect) {
        this.counters.connected = false;
        this.disconnectedAt ??= Date.now();
        this.log.warn({ server: s.data }, 'disconnected from NATS');
        for (const hook of this.disconnectHooks) runHook(hook, this.log);
      } else if (s.type === Events.Reconnect) {
        this.counters.connected = true;
        this.disconnectedAt = undefined;
        this.counters.reconnects++;
        this.log.info({ server: s.data }, 'reconnected to NATS');
        for (const hook of this.reconnectHooks) runHook(hook, this.log);
      }
    }
  }
}

function runHook(hook: () => void, log: Logger): void {
  try {
    hook();
  } catch (err) {
    log.error({ err: (err as Error).message }, 'reconnect hook failed');
  }
}

function assertConcrete(subject: string): void {
  if (/(^|\.)(\*|>)(\.|$)/.test(subject)) throw new BusError('invalid_outgoing', `Cannot publish to the wildcard subject ${subject}`);
}

/** zod's issues as one line: `uris.0: expected string, received number; port: required`. */
export function describeZod(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

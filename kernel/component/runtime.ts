// Starts a component from its config file and carries it through its life: status server,
// bus, announce, then drain on SIGTERM with a bounded grace and stop. One code path for every
// kernel process (`ingot component <name> --config FILE`).
import { randomBytes, randomUUID } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { resolve } from 'node:path';
import { Bus } from '../bus/mod.ts';
import { formatUptime, startAnnouncing } from './announce.ts';
import { loadConfig, type CommonConfig } from './config.ts';
import { createLogger, type Logger } from './logger.ts';
import { counter, gauge, type Metric } from './metrics.ts';
import { StatusServer } from './status-server.ts';
import type { ComponentDefinition, RunningComponent } from './types.ts';
import { INGOT_VERSION } from './version.ts';

export interface ComponentHandle {
  readonly type: string;
  readonly uuid: string;
  readonly status: StatusServer;
  readonly bus: Bus;
  readonly log: Logger;
  readonly component: RunningComponent;
  /** Drains (when asked) then stops everything; safe to call twice. */
  shutdown(opts?: { drain?: boolean }): Promise<void>;
}

const SECRET_KEY = /pass(word)?|secret|token|credential|private_?key/i;

/** How long a component may be without NATS before /healthz says 503. */
const NATS_OUTAGE_UNHEALTHY_MS = 5000;

export async function startComponent(def: ComponentDefinition, configFile: string): Promise<ComponentHandle> {
  const file = resolve(configFile);
  const config = (await loadConfig(file, def.config)) as CommonConfig;
  const log = createLogger(def.type, config.index, config.logging.level);
  const uuid = randomUUID();
  const host = config.local_ip ?? localIp();
  // Where monitoring reaches the status server: the address it is bound to, unless it listens on all.
  const statusHost = ['0.0.0.0', '::'].includes(config.status.host) ? host : config.status.host;
  const startedAt = new Date();
  const cpuAtStart = { usage: process.cpuUsage(), at: process.hrtime.bigint() };
  let draining = false;
  let bus: Bus | undefined;
  let component: RunningComponent | undefined;

  const status: StatusServer = new StatusServer({
    host: config.status.host,
    port: config.status.port,
    user: config.status.user ?? 'ingot',
    password: config.status.password ?? randomBytes(16).toString('hex'),
    metricPrefix: `ingot_${def.type.replace(/-/g, '_')}`,
    // A moment without NATS is not sickness: when one server of a cluster goes (a roll), the
    // client reconnects to another within a second or two, and a balancer dropping every
    // component connected to it meanwhile would turn a routine roll into an outage.
    healthy: () => !draining && bus !== undefined && bus.disconnectedForMs() < NATS_OUTAGE_UNHEALTHY_MS && (component?.healthy?.() ?? component !== undefined),
    varz: (): Record<string, unknown> => ({
      type: def.type,
      version: INGOT_VERSION,
      index: config.index,
      uuid,
      host: `${statusHost}:${status.port}`,
      start: startedAt.toISOString(),
      uptime: formatUptime(Date.now() - startedAt.getTime()),
      cpu: cpuPercent(cpuAtStart),
      mem_bytes: process.memoryUsage().rss,
      draining,
      bus: bus?.stats(),
      config: redact(config),
      ...component?.varz?.(),
    }),
    metrics: () => [...runtimeMetrics(startedAt, bus), ...(component?.metrics?.() ?? [])],
  });
  await status.listen();
  log.info({ status_port: status.port }, 'status server listening');

  bus = await Bus.connect({
    servers: config.nats.servers,
    user: config.nats.user,
    password: config.nats.password,
    token: config.nats.token,
    name: `${def.type}/${config.index}/${uuid}`,
    logger: log,
  });
  log.info({ servers: config.nats.servers }, 'connected to NATS');

  try {
    component = await def.start({ config, bus, log, status, uuid, host, configFile: file });
  } catch (err) {
    await bus.close();
    await status.close();
    throw err;
  }
  const stopAnnouncing = startAnnouncing(bus, () => ({
    type: def.type,
    index: config.index,
    uuid,
    host: `${statusHost}:${status.port}`,
    credentials: status.credentials,
    start: startedAt.toISOString(),
    uptime: formatUptime(Date.now() - startedAt.getTime()),
  }));
  log.info({ uuid }, 'started');

  let stopping: Promise<void> | undefined;
  const running = component;
  const connectedBus = bus;
  return {
    type: def.type,
    uuid,
    status,
    bus: connectedBus,
    log,
    component: running,
    shutdown(opts = {}) {
      stopping ??= (async () => {
        draining = true;
        if (opts.drain && running.drain) {
          log.info({ timeout_s: config.drain_timeout_s }, 'draining');
          const drained = await withTimeout(running.drain(), config.drain_timeout_s * 1000);
          if (!drained) log.warn('drain timed out; stopping anyway');
        }
        stopAnnouncing();
        await running.stop();
        await connectedBus.close();
        await status.close();
        log.info('stopped');
      })();
      return stopping;
    },
  };
}

/**
 * Runs a component as this process: SIGTERM drains then exits, a second SIGTERM or SIGINT
 * stops at once; SIGUSR2 goes to the component when it gives it a meaning.
 */
export async function runComponentProcess(def: ComponentDefinition, configFile: string): Promise<void> {
  const handle = await startComponent(def, configFile);
  let signalled = false;
  const stop = (drain: boolean): void => {
    const wasSignalled = signalled;
    signalled = true;
    if (wasSignalled) {
      handle.log.warn('second signal: stopping without drain');
      process.exit(1);
    }
    handle
      .shutdown({ drain })
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        handle.log.error({ err: (err as Error).message }, 'stopping failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop(true));
  process.on('SIGINT', () => stop(false));
  process.on('SIGUSR2', () => handle.component.onSignal?.('SIGUSR2'));
}

function runtimeMetrics(startedAt: Date, bus: Bus | undefined): Metric[] {
  const stats = bus?.stats();
  const invalid = Object.values(stats?.invalid ?? {}).reduce((a, b) => a + b, 0);
  return [
    gauge('uptime_seconds', 'Seconds since the component started', (Date.now() - startedAt.getTime()) / 1000),
    gauge('memory_rss_bytes', 'Resident memory of the process', process.memoryUsage().rss),
    counter('cpu_seconds_total', 'CPU time used by the process', (process.cpuUsage().user + process.cpuUsage().system) / 1e6),
    gauge('nats_connected', '1 while connected to NATS', stats?.connected ? 1 : 0),
    counter('nats_messages_received_total', 'Messages received from NATS', stats?.received ?? 0),
    counter('nats_messages_published_total', 'Messages published to NATS', stats?.published ?? 0),
    counter('nats_messages_invalid_total', 'Messages dropped because they failed their schema', invalid),
    counter('nats_handler_errors_total', 'Message handlers that threw', stats?.handler_errors ?? 0),
    counter('nats_reconnects_total', 'Reconnects to NATS', stats?.reconnects ?? 0),
  ];
}

function cpuPercent(since: { usage: NodeJS.CpuUsage; at: bigint }): number {
  const used = process.cpuUsage(since.usage);
  const elapsedUs = Number(process.hrtime.bigint() - since.at) / 1000;
  return elapsedUs > 0 ? Math.round(((used.user + used.system) / elapsedUs) * 1000) / 10 : 0;
}

/** The config as /varz shows it: every secret replaced. */
export function redact(value: unknown, key = ''): unknown {
  if (SECRET_KEY.test(key) && value !== undefined) return '[redacted]';
  if (Array.isArray(value)) return value.map((v) => redact(v));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, k)]));
  }
  if (typeof value === 'string') return value.replace(/\/\/[^/@\s]*:[^/@\s]*@/g, '//[redacted]@');
  return value;
}

function localIp(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

async function withTimeout(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

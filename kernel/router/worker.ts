// A proxy worker process of the router (forked by workers.ts). It serves the proxy port from
// its own copy of the table, which the primary feeds; it reports its numbers every second,
// writes the access log, and publishes each request's line on logs.<app_id> (source RTR)
// over its own NATS connection. It lives and dies with the primary: signals are the
// primary's to handle, and a lost IPC channel means the primary is gone.
import cluster from 'node:cluster';
import { Bus, subjects, type Topic } from '../bus/mod.ts';
import { createLogger, type Logger } from '../component/mod.ts';
import { AccessLogWriter, formatAccessLine, type AccessRecord } from './access-log.ts';
import { AppLogLimiter, droppedLinesNotice } from './app-log.ts';
import { proxySettings, type ProxySettings, type RouterConfig } from './config.ts';
import type { Endpoint } from './endpoint-pool.ts';
import { applyRouteOps, type FromWorker, type ToWorker } from './ipc.ts';
import { Proxy } from './proxy.ts';
import { RouteTable } from './route-table.ts';
import { ProxyStats } from './stats.ts';

const STATS_INTERVAL_MS = 1000;
const APP_ID_TOKEN = /^[A-Za-z0-9_-]+$/;

function send(msg: FromWorker): void {
  if (process.connected) process.send!(msg);
}

class RouterWorker {
  private readonly table = new RouteTable();
  private readonly stats = new ProxyStats();
  private proxy: Proxy | undefined;
  private accessLog: AccessLogWriter | undefined;
  private bus: Bus | undefined;
  private log: Logger | undefined;
  private readonly logTopics = new Map<string, Topic | null>();
  private readonly appIndex = new Map<string, number | undefined>();
  private limiter: AppLogLimiter | undefined;
  private settings: ProxySettings | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private stopping = false;

  onMessage(msg: ToWorker): void {
    switch (msg.t) {
      case 'init':
        this.init(msg.config, msg.worker, msg.uuid);
        return;
      case 'routes':
        applyRouteOps(this.table, msg.ops, Date.now());
        return;
      case 'listen':
        this.proxy!.listen().then(
          (port) => send({ t: 'ready', port }),
          (err: NodeJS.ErrnoException) => {
            const c = this.proxy!.settings;
            send({ t: 'listen_failed', message: `Listening on ${c.host}:${c.port}: ${err.code === 'EADDRINUSE' ? 'the address is already in use' : err.message}.` });
          },
        );
        return;
      case 'drain':
        void this.proxy?.drain().then(() => send({ t: 'drained' }));
        return;
      case 'stop':
        void this.stop();
        return;
    }
  }

  private init(config: RouterConfig, worker: number, uuid: string): void {
    const settings = proxySettings(config);
    this.settings = settings;
    this.limiter = new AppLogLimiter(settings.appLogLinesPerS);
    this.log = createLogger('router', config.index, config.logging.level).child({ worker });
    if (settings.logRequests) this.accessLog = new AccessLogWriter(settings.accessLogFile);
    if (settings.appLogLines) void this.connectBus(config, worker, uuid);
    const wantsAccess = settings.logRequests || settings.appLogLines;
    this.proxy = new Proxy({
      settings,
      table: this.table,
      stats: this.stats,
      log: this.log,
      onAccess: wantsAccess ? (record, endpoint) => this.onAccess(record, endpoint) : undefined,
    });
    this.statsTimer = setInterval(() => this.report(), STATS_INTERVAL_MS);
  }

  private async connectBus(config: RouterConfig, worker: number, uuid: string): Promise<void> {
    try {
      this.bus = await Bus.connect({
        servers: config.nats.servers,
        user: config.nats.user,
        password: config.nats.password,
        token: config.nats.token,
        name: `router/${config.index}/${uuid}/worker-${worker}`,
        logger: this.log!,
      });
      if (this.stopping) await this.bus.close();
    } catch (err) {
      this.log?.error({ err: (err as Error).message }, 'no NATS connection for app log lines');
    }
  }

  private onAccess(record: AccessRecord, endpoint: Endpoint | undefined): void {
    const appId = endpoint?.appId;
    const toApp = appId !== undefined && this.bus !== undefined && this.limiter!.admit(appId, record.startedAt);
    if (this.accessLog === undefined && !toApp) return;
    const line = formatAccessLine(record);
    this.accessLog?.write(line);
    if (toApp) this.publishAppLine(appId, endpoint!.index, line, record.startedAt);
  }

  private publishAppLine(appId: string, index: number | undefined, line: string, timestamp: number): void {
    let topic = this.logTopics.get(appId);
    if (topic === undefined) {
      // An app id that cannot be a subject token gets no RTR lines (and never breaks a request).
      topic = APP_ID_TOKEN.test(appId) ? subjects.logs(appId) : null;
      this.logTopics.set(appId, topic);
    }
    if (topic === null || this.bus === undefined) return;
    this.appIndex.set(appId, index);
    this.bus.publish(topic, { app_id: appId, source: 'RTR', index, stream: 'out', timestamp, line });
  }

  private reportDroppedLines(): void {
    const now = Date.now();
    for (const [appId, count] of this.limiter?.takeDropped(now) ?? []) {
      this.publishAppLine(appId, this.appIndex.get(appId), droppedLinesNotice(count, this.settings!.appLogLinesPerS), now);
    }
    if (this.appIndex.size > 10_000) this.appIndex.clear();
  }

  private report(): void {
    const proxy = this.proxy;
    if (!proxy) return;
    this.reportDroppedLines();
    send({
      t: 'stats',
      delta: this.stats.take(),
      mem_bytes: process.memoryUsage.rss(),
      connections: proxy.connectionCount,
      backend_connections: proxy.backends.size,
    });
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.statsTimer);
    this.report();
    await this.proxy?.close();
    await this.accessLog?.close();
    // Lines still queued for NATS get a moment, not a hang when NATS is gone.
    if (this.bus) await Promise.race([this.bus.close().catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
    process.exit(0);
  }
}

if (cluster.isWorker && process.env.INGOT_ROUTER_WORKER !== undefined) {
  const worker = new RouterWorker();
  // The primary owns the lifecycle: it drains and stops workers over IPC.
  process.on('SIGTERM', () => undefined);
  process.on('SIGINT', () => undefined);
  process.on('disconnect', () => void worker.stop());
  process.on('message', (msg: ToWorker) => worker.onMessage(msg));
  send({ t: 'hello' });
}

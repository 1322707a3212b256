// The router component (`ingot component router --config FILE`): the traffic cop in front of
// every app and the cloud controller's API.
//
// This process is the primary: it owns the NATS subscriptions and the authoritative routing
// table, announces itself with router.start (at boot and after every reconnect) and answers
// router.greet, prunes stale endpoints, serves /routes, /varz and /metrics, and runs the
// proxy workers that carry the traffic (workers.ts). On SIGTERM /healthz turns 503 at once
// (the runtime does that), the workers keep serving for drain_wait_s so balancers notice,
// then finish their requests in flight and stop. SIGUSR2 (the job's drain command) does the
// first half ahead of the stop.
import { setTimeout as sleep } from 'node:timers/promises';
import { replies, subjects, type RouterStart } from '../bus/mod.ts';
import { counter, defineComponent, gauge, labelled, type Metric } from '../component/mod.ts';
import { routerConfig, staleThresholdS, workerCount } from './config.ts';
import { RouteRegistry } from './registry.ts';
import { RESPONSE_CLASSES, ROUTER_ERRORS, StatsAggregate } from './stats.ts';
import { WorkerSet } from './workers.ts';

export default defineComponent({
  type: 'router',
  config: routerConfig,
  async start({ config, bus, log, status, uuid, host }) {
    const staleS = staleThresholdS(config);
    const workers: WorkerSet = new WorkerSet({
      count: workerCount(config),
      config,
      uuid,
      log,
      snapshot: () => registry.snapshot(),
      onStats: (s) => aggregate.add(s.delta, Date.now()),
    });
    const registry = new RouteRegistry(staleS * 1000, (ops) => workers.broadcast(ops));
    const aggregate = new StatsAggregate();

    const hello = (): RouterStart => ({
      id: uuid,
      hosts: [host],
      minimum_register_interval_s: config.minimum_register_interval_s,
      prune_threshold_s: staleS,
    });
    // Subscribe before announcing, so the re-registrations router.start provokes are all seen.
    const unsubscribe = [
      bus.subscribe(subjects.routerRegister, (msg) => registry.register(msg, Date.now())),
      bus.subscribe(subjects.routerUnregister, (msg) => registry.unregister(msg)),
      bus.subscribe(subjects.routerGreet, (_msg, inbound) => {
        if (inbound.reply) bus.respond(inbound.reply, replies.routerGreet, hello());
      }),
    ];
    bus.onDisconnected(() => {
      registry.suspendPruning();
      log.warn('NATS unreachable: pruning suspended');
    });
    bus.onReconnected(() => {
      registry.resumePruning(Date.now());
      bus.publish(subjects.routerStart, hello());
      log.info('NATS reachable again: pruning resumed, router.start sent');
    });

    let port: number;
    try {
      port = await workers.start();
    } catch (err) {
      for (const u of unsubscribe) u();
      throw err;
    }
    await bus.flush();
    bus.publish(subjects.routerStart, hello());
    log.info({ port, workers: workerCount(config), minimum_register_interval_s: config.minimum_register_interval_s, prune_stale_after_s: staleS }, 'router listening');

    // Check often enough that an endpoint outlives its threshold by at most a tenth of it.
    const pruneEveryMs = Math.min(5000, Math.max(250, (staleS * 1000) / 10));
    /** Set by SIGUSR2: when the router went out of rotation ahead of its stop. */
    let drainingSince: number | undefined;
    const pruner = setInterval(() => {
      if (!bus.connected) registry.suspendPruning();
      const removed = registry.prune(Date.now());
      if (removed.length > 0) log.info({ pruned: removed.length, example: removed[0]!.uri }, 'pruned stale endpoints');
    }, pruneEveryMs);

    status.route('/routes', async (_req, res) => {
      // Streamed in slices: with 100k routes one JSON.stringify would hold up this process,
      // which also hands new connections to the workers.
      res.writeHead(200, { 'Content-Type': 'application/json' });
      let out = '{';
      let n = 0;
      for (const [route, endpoints] of registry.listing(staleS)) {
        out += `${n === 0 ? '' : ','}${JSON.stringify(route)}:${JSON.stringify(endpoints)}`;
        if (++n % 1000 === 0) {
          res.write(out);
          out = '';
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      res.end(out + '}');
    });

    const invalidMessages = (): number => {
      const invalid = bus.stats().invalid;
      return (invalid[subjects.routerRegister.subject] ?? 0) + (invalid[subjects.routerUnregister.subject] ?? 0);
    };

    return {
      varz() {
        const s = aggregate.summary(Date.now());
        const info = workers.info();
        return {
          port,
          routes: registry.table.routeCount,
          endpoints: registry.table.endpointCount,
          ...s,
          registry: {
            ...registry.counters,
            malformed_messages: invalidMessages(),
            pruning_suspended: registry.pruningSuspended,
            minimum_register_interval_s: config.minimum_register_interval_s,
            prune_stale_after_s: staleS,
          },
          workers: info,
          workers_mem_bytes: info.reduce((a, w) => a + w.mem_bytes, 0),
          connections: info.reduce((a, w) => a + w.connections, 0),
        };
      },
      metrics(): Metric[] {
        const s = aggregate.summary(Date.now());
        const info = workers.info();
        const rates = Object.fromEntries(Object.entries(s.apps).map(([app, r]) => [app, r.requests_per_second]));
        const appTotals = Object.fromEntries(Object.entries(s.apps).map(([app, r]) => [app, r.requests]));
        return [
          counter('requests_total', 'Requests received', s.requests),
          labelled('responses_total', 'Responses by status class', 'counter', 'class', Object.fromEntries(RESPONSE_CLASSES.map((c) => [c, s.responses[c]]))),
          labelled('router_errors_total', 'Responses the router answered itself, by X-Ingot-Router-Error', 'counter', 'error', Object.fromEntries(ROUTER_ERRORS.map((e) => [e, s.router_errors[e]]))),
          counter('bad_gateways_total', 'Requests answered 502', s.bad_gateways),
          counter('retries_total', 'Attempts retried on another endpoint', s.retries),
          counter('client_aborts_total', 'Requests the client abandoned', s.client_aborts),
          gauge('requests_per_second', 'Requests per second over the last 10 s', s.requests_per_second),
          {
            name: 'latency_ms',
            help: `Request latency percentiles over the last ${s.latency_ms.window_s} s`,
            type: 'gauge',
            samples: (['p50', 'p90', 'p99', 'p999'] as const).map((q) => ({ labels: { quantile: q }, value: s.latency_ms[q] })),
          },
          gauge('routes', 'Routes in the table', registry.table.routeCount),
          gauge('endpoints', 'Endpoints in the table', registry.table.endpointCount),
          labelled('app_requests_per_second', 'Requests per second per app over the last 10 s', 'gauge', 'app_id', rates),
          labelled('app_requests_total', 'Requests per app', 'counter', 'app_id', appTotals),
          counter('registers_total', 'router.register messages handled', registry.counters.registers),
          counter('unregisters_total', 'router.unregister messages handled', registry.counters.unregisters),
          counter('malformed_registrations_total', 'router.register/unregister messages dropped as malformed', invalidMessages()),
          counter('invalid_uris_total', 'Registered URIs that are not routes', registry.counters.invalid_uris),
          counter('pruned_total', 'Endpoints pruned as stale', registry.counters.pruned),
          gauge('pruning_suspended', '1 while pruning is suspended (NATS unreachable)', registry.pruningSuspended ? 1 : 0),
          gauge('workers_ready', 'Proxy workers serving', workers.readyCount),
          gauge('connections', 'Open client connections', info.reduce((a, w) => a + w.connections, 0)),
          gauge('workers_memory_rss_bytes', 'Resident memory of the proxy workers', info.reduce((a, w) => a + w.mem_bytes, 0)),
        ];
      },
      healthy: () => drainingSince === undefined && workers.readyCount > 0,
      // SIGUSR2 (the router job's drain command): out of rotation now — /healthz 503 while the
      // workers keep serving — so the stop that follows need not wait for balancers again.
      onSignal(signal) {
        if (signal !== 'SIGUSR2' || drainingSince !== undefined) return;
        drainingSince = Date.now();
        log.info({ drain_wait_s: config.drain_wait_s }, 'draining (SIGUSR2): /healthz 503, still serving');
      },
      async drain() {
        const waited = drainingSince === undefined ? 0 : Date.now() - drainingSince;
        log.info({ drain_wait_s: config.drain_wait_s, already_waited_ms: waited }, 'draining: still serving while balancers notice /healthz');
        await sleep(Math.max(0, config.drain_wait_s * 1000 - waited));
        await workers.drain();
        log.info('drained: no request in flight');
      },
      async stop() {
        clearInterval(pruner);
        for (const u of unsubscribe) u();
        await workers.stop();
      },
    };
  },
});

// The cloud controller ("the King"): the external REST API (CF v3-shaped), users and
// tokens, apps in spaces, packages and the resource cache, staging, and every state
// transition of app instances — which it drives only over NATS (DESIGN.md §3). State lives
// in the database and the blobstore, so a restart loses nothing but recent log lines.
//
// Request flow: http/server.ts (route, authenticate) → api/<resource>.ts (validate, act)
// → db/ (state) and app-runner.ts / staging.ts (NATS).
import { resolve } from 'node:path';
import { ComponentError, counter, defineComponent, gauge } from '../component/mod.ts';
import { subjects } from '../bus/mod.ts';
import { registerApps } from './api/apps.ts';
import { registerAuditEvents } from './api/audit-events.ts';
import { authenticator, registerAuth } from './api/auth.ts';
import { registerBuilds } from './api/builds.ts';
import { registerBulk } from './api/bulk.ts';
import type { Deps } from './api/deps.ts';
import { registerInternal } from './api/internal.ts';
import { registerLogs } from './api/logs.ts';
import { registerOrganizations } from './api/organizations.ts';
import { registerPackages } from './api/packages.ts';
import { registerProcesses } from './api/processes.ts';
import { registerQuotas } from './api/quotas.ts';
import { registerRoot } from './api/root.ts';
import { registerRoutes } from './api/routes.ts';
import { registerServices } from './api/services.ts';
import { registerServiceBindings } from './api/services-bindings.ts';
import { registerServiceInstances } from './api/services-instances.ts';
import { registerUsers } from './api/users.ts';
import { AppRunner } from './app-runner.ts';
import { UrlSigner, urlSigningKey } from './auth/signed-urls.ts';
import { TokenIssuer } from './auth/tokens.ts';
import { openBlobstore } from './blobstore.ts';
import { bootstrap } from './bootstrap.ts';
import { ccConfig } from './config.ts';
import { DbError, openStore } from './db/mod.ts';
import { ApiServer } from './http/server.ts';
import { recordCrash } from './app-events.ts';
import { LogStore } from './logs.ts';
import { Placer } from './placement.ts';
import { RouteRegistrar } from './route-registrar.ts';
import { BrokerRegistry } from './services/brokers.ts';
import { credentialBox } from './services/credential-box.ts';
import { ServiceOperations } from './services/operations.ts';
import { Stager } from './staging.ts';
import { UploadClaims } from './upload-claims.ts';

/** The queue group of controllers sharing a database: one of them handles each HM request and gateway announce. */
const CC_QUEUE = 'cloudcontrollers';

export default defineComponent({
  type: 'cloud-controller',
  config: ccConfig,
  async start({ config, bus, log, host, configFile }) {
    const base = (p: string): string => resolve(configFile, '..', p);
    const dbUrl = config.db.url.startsWith('sqlite://') ? `sqlite://${base(config.db.url.replace(/^sqlite:\/\//, ''))}` : config.db.url;
    // A database that cannot be reached or migrated is the operator's to fix: one sentence, no stack.
    const store = await openStore(dbUrl).catch((err: unknown) => {
      throw err instanceof DbError ? new ComponentError('start_failed', err.message, { cause: err }) : err;
    });
    const blobs = await openBlobstore({ ...config.blobstore, dir: base(config.blobstore.dir) }, config.index);
    if (config.blobstore.url) log.info({ blobstore: config.blobstore.url }, 'blobs live in the blobstore component');
    const boot = await bootstrap(store, config);
    // Uploads this controller's previous process was receiving are dead; another's may be live.
    const uploads = new UploadClaims({ store, index: config.index, heartbeatS: config.upload_heartbeat_s, log });
    const cutOff = await uploads.failDead();
    if (cutOff > 0) log.warn({ packages: cutOff }, 'uploads cut off by a controller stop marked FAILED');
    uploads.start();

    // The API listens before the signer is made: with external_port 0 only the bound port
    // tells the URL DEAs reach. Routes follow at once; a request in between gets a 404.
    let deps: Deps | undefined;
    const server = new ApiServer((mode, req, url) => authenticator(deps!)(mode, req, url), log);
    await server.listen(config.external_host, config.external_port);
    const externalUrl = config.external_url ?? `http://${host}:${server.port}`;

    const signer = new UrlSigner(urlSigningKey(config.jwt.secret), externalUrl);
    const tokens = new TokenIssuer(config.jwt.secret, config.token_ttl_s, config.refresh_token_ttl_s);
    const logs = new LogStore(config.recent_log_lines);
    const placer = new Placer(bus, { discoverTimeoutMs: config.placement.discover_timeout_ms, attempts: config.placement.attempts }, log);
    const box = credentialBox(config.jwt.secret);
    const runner = new AppRunner({ store, bus, placer, signer, config, log, box });
    const brokers = new BrokerRegistry({ store, config, log });
    const operations = new ServiceOperations({ store, config, log, brokers, box });
    const resumed = await operations.resume();
    if (resumed > 0) log.info({ operations: resumed }, 'polling service operations left in progress');
    const stager = new Stager({ store, bus, signer, config, log, apiLog: (a, l, s) => runner.apiLog(a, l, s) });
    const failed = await stager.failInterrupted();
    if (failed > 0) log.warn({ builds: failed }, 'builds interrupted by a restart marked FAILED');

    deps = { config, store, blobs, bus, log, tokens, signer, runner, stager, uploads, logs, domains: boot.domains, defaultSpaceGuid: boot.defaultSpaceGuid, services: { brokers, operations, box } };
    for (const register of [
      registerRoot,
      registerAuth,
      registerUsers,
      registerOrganizations,
      registerApps,
      registerPackages,
      registerBuilds,
      registerProcesses,
      registerRoutes,
      registerQuotas,
      registerAuditEvents,
      registerServices,
      registerServiceInstances,
      registerServiceBindings,
      registerLogs,
      registerBulk,
      registerInternal,
    ]) {
      register(server, deps);
    }

    const unsubscribe = [
      bus.subscribe(subjects.logs, (line) => logs.add(line)),
      bus.subscribe(subjects.hmRequests, (req) => runner.handleHmRequest(req), { queue: CC_QUEUE }),
      bus.subscribe(subjects.dropletExited, (msg) => recordCrash(store, msg)),
      bus.subscribe(subjects.serviceGatewayAnnounce, (msg) => brokers.announced(msg), { queue: CC_QUEUE }),
    ];

    const registrar = new RouteRegistrar(
      bus,
      { host, port: server.port, uris: [`api.${config.system_domain}`], tags: { component: 'CloudController' } },
      config.router_register_interval_s,
      log,
    );
    registrar.start();
    log.info({ api_port: server.port, external_url: externalUrl, system_domain: config.system_domain }, 'api listening');

    return {
      varz: () => ({
        api_port: server.port,
        external_url: externalUrl,
        http: server.stats(),
        staging: { ...stager.counts, active: stager.active },
        runner: runner.counts,
        logs: { received: logs.received, listeners: logs.listenerCount },
        route_registrations: registrar.registrations,
      }),
      metrics: () => [
        counter('http_requests_total', 'API requests served', server.stats().requests ?? 0),
        counter('http_errors_5xx_total', 'API requests answered with a server error', server.stats().errors_5xx ?? 0),
        gauge('staging_active', 'Builds staging now', stager.active),
        counter('builds_staged_total', 'Builds staged', stager.counts.staged),
        counter('builds_failed_total', 'Builds failed', stager.counts.failed),
        counter('instances_placed_total', 'Instances started on a DEA', runner.counts.placed),
        counter('instances_unplaced_total', 'Instances no DEA would take', runner.counts.unplaced),
        counter('hm_requests_agreed_total', 'Health manager requests carried out', runner.counts.hm_agreed),
        counter('hm_requests_refused_total', 'Health manager requests refused as stale', runner.counts.hm_refused),
      ],
      async drain() {
        // Out of the routers' rotation first: new API requests go to the other controllers. The
        // listener stays open meanwhile, since builds this controller sent to stagers come back
        // to it (their droplet uploads) — a roll of the controllers must not fail a push's build.
        registrar.stop();
        await stager.settle();
        await server.drain();
        await runner.settle();
      },
      async stop() {
        for (const u of unsubscribe) u();
        registrar.stop();
        uploads.stop();
        runner.cancelAll();
        await operations.stop();
        await server.close();
        await store.close();
      },
    };
  },
});

// A whole local kernel for end-to-end tests, brought up once per test file: a real
// nats-server, a router (`ingot component router`), a cloud controller, one or more DEAs
// running apps in namespace containers (each its own netns prefix, subnet, host ports and
// uids), optionally health managers, and a loopback npm registry its stagers install from.
// The CLI reaches the API through the router at `http://api.<system_domain>:<router port>` —
// a `*.localhost` name, as on the local platform. Optionally the services (a node and a gateway
// per service, services-deployment.ts): their gateways register with the controller and the
// DEAs' containers may reach the nodes' servers on the host's address. `stop()` ends the DEAs
// with SIGTERM (they remove their containers), then everything else.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { captured } from './captured.ts';
import { eventually, INGOT_BIN, runCli, startComponentProcess, writeConfig, type StartedComponent } from './component-process.ts';
import { BULK, startController, type Controller } from './cc-controller.ts';
import { hostAddress } from './host-address.ts';
import { KERNEL_BLOCKS } from './kernel-blocks.ts';
import { NatsServer } from './nats-server.ts';
import { startNpmRegistry, type NpmRegistry } from './npm-registry.ts';
import { freePort } from './ports.ts';
import { send, startRouter, type Reply, type RouterUnderTest } from './router-process.ts';
import { brokersRegistered, planServices, servicesControllerConfig, startServices, type RunningServices, type ServiceLabel } from './services-deployment.ts';
import { runPrefix, scratchDir } from './tmp.ts';

const DEA_STATUS_PASSWORD = 'dea-e2e-secret';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunningCli {
  proc: ChildProcess;
  output(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export interface Platform {
  nats: NatsServer;
  registry: NpmRegistry;
  router: RouterUnderTest;
  cc: Controller;
  /** The first DEA (the one of a one-DEA platform). */
  dea: StartedComponent;
  /** Every DEA, by index; a slot is replaced when its DEA is restarted. */
  deas: StartedComponent[];
  /** Each DEA's prefix (its netns, nft table and cgroups carry it), by index. */
  deaPrefixes: string[];
  /** Health managers, by index (none unless asked for). */
  hms: StartedComponent[];
  /** The services asked for (none unless asked for). */
  services: RunningServices;
  /** Starts DEA `index` again with its config (after a kill): it adopts or cleans up what its predecessor left. */
  restartDea(index: number): Promise<StartedComponent>;
  /** Starts health manager `index` again with its config (after a stop). */
  restartHealthManager(index: number): Promise<StartedComponent>;
  systemDomain: string;
  appsDomain: string;
  apiUrl: string;
  /** INGOT_HOME of every CLI run. */
  home: string;
  /** Runs the CLI to its end; `home` is another user's INGOT_HOME (its own target and tokens). */
  cli(args: string[], timeoutMs?: number, o?: { home?: string }): Promise<CliResult>;
  /** Starts the CLI for a command that does not end by itself (`logs NAME`). */
  spawnCli(args: string[]): RunningCli;
  /** GET through the router with the app's host. */
  get(host: string, path?: string, timeoutMs?: number): Promise<Reply>;
  appHost(name: string): string;
  restartController(): Promise<void>;
  stop(): Promise<void>;
}

/** Container addresses and host ports come from the e2e block (test/helpers/kernel-blocks.ts). */
export interface PlatformOptions {
  label?: string;
  /** DEAs (default 1); each stages and runs apps. */
  deas?: number;
  /** Health managers (default none); they share one set of timings, quick ones for tests. */
  healthManagers?: number;
  /** DEA heartbeat interval (default 1 s). */
  deaHeartbeatS?: number;
  /** Services to run (default none): per label a node and a gateway, registered with the controller as a broker. */
  services?: ServiceLabel[];
  /** Each service node's capacity (default 10 instances). */
  serviceCapacity?: Partial<Record<ServiceLabel, number>>;
}

/** The health managers' timings: a missing instance is noticed within ~4 s of its last heartbeat. */
export const E2E_HM_TIMINGS = {
  analysis_interval_s: 0.25,
  resync_interval_s: 10,
  heartbeat_timeout_s: 4,
  quiet_period_s: 1,
  unknown_app_grace_s: 5,
  crash_backoff: { immediate_restarts: 3, base_delay_s: 4, max_delay_s: 16, reset_after_s: 120 },
  rate_limit: { requests_per_s: 50, burst: 50 },
  election: { interval_ms: 300 },
} as const;

export async function startPlatform(opts: PlatformOptions = {}): Promise<Platform> {
  const label = opts.label ?? 'e2e';
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async (): Promise<void> => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  };
  try {
    const nats = await NatsServer.start();
    cleanups.push(() => nats.stop());
    // On the host's address: buildpacks run in containers, whose 127.0.0.1 is their own.
    const registry = await startNpmRegistry({ host: hostAddress() });
    cleanups.push(() => registry.close());
    const router = await startRouter(`${label}-router`, { workers: 1, minimum_register_interval_s: 5, log_requests: false }, nats);
    cleanups.push(() => router.stop());

    const tag = randomBytes(2).toString('hex');
    const systemDomain = `${label}-${tag}.localhost`;
    const appsDomain = `apps.${systemDomain}`;
    const cc = await startController(nats, {
      system_domain: systemDomain,
      apps_domain: appsDomain,
      placement: { discover_timeout_ms: 1500, attempts: 3, find_window_ms: 700 },
      rolling_instance_timeout_s: 60,
      router_register_interval_s: 5,
      drain_timeout_s: 5,
      ...(opts.services?.length ? servicesControllerConfig(opts.services) : {}),
    });
    cleanups.push(() => cc.kill());
    // The nodes' ports first: the DEAs' containers may reach exactly those on the host.
    const plannedServices = await planServices(opts.services ?? [], hostAddress(), opts.serviceCapacity);
    const serviceAllow = plannedServices.map((s) => ({ cidr: `${hostAddress()}/32`, ports: s.appPorts }));

    // Each DEA takes a /26 of the file's octet, 20 host ports and 50 uids of its own.
    const octet = KERNEL_BLOCKS.e2e.subnetOctet();
    const portBase = KERNEL_BLOCKS.e2e.portBase();
    const prefix = runPrefix();
    const deaConfigs = Array.from({ length: opts.deas ?? 1 }, (_, i) =>
      writeConfig(`${label}-dea${i}`, {
        nats: nats.componentConfig,
        index: i,
        local_ip: hostAddress(),
        status: { host: '127.0.0.1', port: 0, user: 'ingot', password: DEA_STATUS_PASSWORD },
        base_dir: scratchDir(`${label}-dea${i}-base`),
        prefix: `${prefix}${i}`,
        isolation: 'namespaces',
        memory_mb: 4096,
        network: {
          subnet: `10.254.${octet}.${i * 64}/26`,
          host_ports: { start: portBase + i * 20, count: 20 },
          allow: [{ cidr: `${registry.host}/32`, ports: [registry.port] }, ...serviceAllow],
        },
        uid_range: { start: 23_000 + i * 100, count: 50 },
        heartbeat_interval_s: opts.deaHeartbeatS ?? 1,
        advertise_interval_s: 1,
        stop_grace_s: 3,
        health_check_timeout_s: 60,
        drain_timeout_s: 25,
        evacuation_timeout_s: 30,
        staging: { timeout_s: 240, npm_registry: registry.url },
      }),
    );
    const deas: StartedComponent[] = [];
    const startDea = async (i: number): Promise<StartedComponent> => {
      const dea = await startComponentProcess('dea', deaConfigs[i]!, { statusPassword: DEA_STATUS_PASSWORD, readyTimeoutMs: 60_000 });
      deas[i] = dea;
      return dea;
    };
    let services: RunningServices | undefined;
    // The services start meanwhile (a first PostgreSQL, MariaDB or RabbitMQ start takes a while).
    const servicesStarted = startServices(nats, plannedServices).then((s) => {
      services = s;
      return s;
    });
    cleanups.push(async () => {
      await servicesStarted.catch(() => undefined); // a failed start has stopped what it started
      await services?.stop();
    });
    const deasStarted = await Promise.allSettled(deaConfigs.map((_, i) => startDea(i)));
    cleanups.push(async () => {
      // Whichever DEA process holds each slot now; a killed one is started again so that it
      // cleans up what it left behind.
      for (let i = 0; i < deas.length; i++) {
        const held = deas[i];
        if (!held) continue; // it never started
        let dea = held;
        if (dea.proc.exitCode !== null || dea.proc.signalCode !== null) dea = await startDea(i).catch(() => held);
        if (dea.proc.exitCode === null && dea.proc.signalCode === null) {
          // SIGTERM: the DEA stops every instance and removes its containers before it exits.
          dea.proc.kill('SIGTERM');
          await Promise.race([dea.exited, new Promise((r) => setTimeout(r, 30_000))]);
          await dea.kill('SIGKILL');
        }
      }
    });
    for (const r of deasStarted) if (r.status === 'rejected') throw r.reason;
    const runningServices = await servicesStarted;

    const hmConfigs = Array.from({ length: opts.healthManagers ?? 0 }, (_, i) =>
      writeConfig(`${label}-hm${i}`, {
        nats: nats.componentConfig,
        index: i,
        local_ip: '127.0.0.1',
        status: { host: '127.0.0.1', port: 0, user: 'ingot', password: DEA_STATUS_PASSWORD },
        drain_timeout_s: 2,
        bulk_api: { url: cc.url, user: BULK.user, password: BULK.password, timeout_s: 3, retry_interval_s: 0.5 },
        ...E2E_HM_TIMINGS,
      }),
    );
    const hms: StartedComponent[] = [];
    const startHm = async (i: number): Promise<StartedComponent> => {
      const hm = await startComponentProcess('health-manager', hmConfigs[i]!, { statusPassword: DEA_STATUS_PASSWORD });
      hms[i] = hm;
      return hm;
    };
    // One after the other: the first started leads.
    for (let i = 0; i < hmConfigs.length; i++) await startHm(i);
    cleanups.push(async () => {
      for (const hm of hms) await hm.kill('SIGTERM');
    });

    const home = scratchDir(`${label}-home`);
    const env: NodeJS.ProcessEnv = { ...process.env, INGOT_HOME: home, INGOT_STARTUP_TIMEOUT: '120', INGOT_STAGING_TIMEOUT: '240' };
    delete env.INGOT_USERNAME;
    delete env.INGOT_PASSWORD;
    // runCli passes this process's environment on to the CLI.
    Object.assign(process.env, { INGOT_HOME: home, INGOT_STARTUP_TIMEOUT: '120', INGOT_STAGING_TIMEOUT: '240' });

    const apiUrl = `http://api.${systemDomain}:${router.port}`;
    // Ready when the API answers through the router (the controller registered its route).
    await eventually(async () => (await send({ port: router.port, host: `api.${systemDomain}`, path: '/v3/info' })).status === 200, 30_000, 'the API through the router');
    const brokerNames = Object.values(runningServices.byLabel).map((s) => s.brokerName);
    await brokersRegistered(async () => ((await cc.admin.get('/v3/service_brokers')).body.resources as Array<{ name: string }>).map((b) => b.name), brokerNames);

    const platform: Platform = {
      nats,
      registry,
      router,
      cc,
      get dea() {
        return deas[0]!;
      },
      deas,
      deaPrefixes: deaConfigs.map((_, i) => `${prefix}${i}`),
      hms,
      services: runningServices,
      restartDea: startDea,
      restartHealthManager: startHm,
      systemDomain,
      appsDomain,
      apiUrl,
      home,
      async cli(args, timeoutMs = 60_000, o = {}) {
        const started = Date.now();
        const r = await runCli(args, { timeoutMs, ...(o.home ? { env: { ...env, INGOT_HOME: o.home } } : {}) });
        return { ...r, ms: Date.now() - started };
      },
      spawnCli(args) {
        const proc = spawn(process.execPath, [INGOT_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
        const { output, exited } = captured(proc);
        return {
          proc,
          output,
          waitFor: (pattern, timeoutMs = 30_000) => eventually(() => (pattern.test(output()) ? output() : undefined), timeoutMs, `CLI output matching ${pattern}`),
          async stop() {
            if (proc.exitCode === null && proc.signalCode === null) {
              proc.kill('SIGINT');
              await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
              if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
            }
            await exited;
          },
        };
      },
      get: (host, path = '/', timeoutMs = 10_000) => send({ port: router.port, host, path, timeoutMs }),
      appHost: (name) => `${name}.${appsDomain}`,
      async restartController() {
        await cc.restart();
        await eventually(async () => (await send({ port: router.port, host: `api.${systemDomain}`, path: '/v3/info' })).status === 200, 30_000, 'the API through the router after a restart');
      },
      stop: stopAll,
    };
    return platform;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

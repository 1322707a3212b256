// A whole local kernel for end-to-end tests, brought up once per test file: a real
// nats-server, a router (`ingot component router`), a cloud controller, a DEA running apps in
// namespace containers (its own netns prefix, subnet and host ports) and a loopback npm
// registry its stagers install from. The CLI reaches the API through the router at
// `http://api.<system_domain>:<router port>` — a `*.localhost` name, as on the local platform.
// `stop()` ends the DEA with SIGTERM (it removes its containers), then everything else.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { eventually, INGOT_BIN, runCli, startComponentProcess, writeConfig, type StartedComponent } from './component-process.ts';
import { startController, type Controller } from './cc-controller.ts';
import { hostAddress } from './host-address.ts';
import { KERNEL_BLOCKS } from './kernel-blocks.ts';
import { NatsServer } from './nats-server.ts';
import { startNpmRegistry, type NpmRegistry } from './npm-registry.ts';
import { freePort } from './ports.ts';
import { send, startRouter, type Reply, type RouterUnderTest } from './router-process.ts';
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
  dea: StartedComponent;
  systemDomain: string;
  appsDomain: string;
  apiUrl: string;
  /** INGOT_HOME of every CLI run. */
  home: string;
  /** Runs the CLI to its end. */
  cli(args: string[], timeoutMs?: number): Promise<CliResult>;
  /** Starts the CLI for a command that does not end by itself (`logs NAME`). */
  spawnCli(args: string[]): RunningCli;
  /** GET through the router with the app's host. */
  get(host: string, path?: string, timeoutMs?: number): Promise<Reply>;
  appHost(name: string): string;
  restartController(): Promise<void>;
  stop(): Promise<void>;
}

/** Container addresses and host ports come from the e2e block (test/helpers/kernel-blocks.ts). */
export async function startPlatform(opts: { label?: string } = {}): Promise<Platform> {
  const label = opts.label ?? 'e2e';
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async (): Promise<void> => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  };
  try {
    const nats = await NatsServer.start();
    cleanups.push(() => nats.stop());
    const registry = await startNpmRegistry();
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
    });
    cleanups.push(() => cc.kill());

    const subnet = `10.254.${KERNEL_BLOCKS.e2e.subnetOctet()}.0/26`;
    const portBase = KERNEL_BLOCKS.e2e.portBase();
    const deaConfig = writeConfig(`${label}-dea`, {
      nats: nats.componentConfig,
      index: 0,
      local_ip: hostAddress(),
      status: { host: '127.0.0.1', port: await freePort(), user: 'ingot', password: DEA_STATUS_PASSWORD },
      base_dir: scratchDir(`${label}-dea-base`),
      prefix: runPrefix(),
      isolation: 'namespaces',
      memory_mb: 4096,
      network: { subnet, host_ports: { start: portBase, count: 20 } },
      heartbeat_interval_s: 2,
      advertise_interval_s: 1,
      stop_grace_s: 3,
      health_check_timeout_s: 60,
      drain_timeout_s: 25,
      staging: { timeout_s: 240, npm_registry: registry.url },
    });
    const dea = await startComponentProcess('dea', deaConfig, { statusPassword: DEA_STATUS_PASSWORD, readyTimeoutMs: 60_000 });
    cleanups.push(async () => {
      if (dea.proc.exitCode === null && dea.proc.signalCode === null) {
        // SIGTERM: the DEA stops every instance and removes its containers before it exits.
        dea.proc.kill('SIGTERM');
        await Promise.race([dea.exited, new Promise((r) => setTimeout(r, 30_000))]);
        await dea.kill('SIGKILL');
      }
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

    const platform: Platform = {
      nats,
      registry,
      router,
      cc,
      dea,
      systemDomain,
      appsDomain,
      apiUrl,
      home,
      async cli(args, timeoutMs = 60_000) {
        const started = Date.now();
        const r = await runCli(args, { timeoutMs });
        return { ...r, ms: Date.now() - started };
      },
      spawnCli(args) {
        const proc = spawn(process.execPath, [INGOT_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
        let out = '';
        proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
        proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
        const exited = new Promise<void>((r) => proc.once('exit', () => r()));
        return {
          proc,
          output: () => out,
          waitFor: (pattern, timeoutMs = 30_000) => eventually(() => (pattern.test(out) ? out : undefined), timeoutMs, `CLI output matching ${pattern}`),
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

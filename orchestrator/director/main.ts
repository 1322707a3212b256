// The director as a process: config → store → blobstore → mbus → tasks → API. startDirector
// is what `ingot director-server --config FILE` calls; SIGTERM (and SIGINT) stop it cleanly:
// the API stops accepting, running tasks are asked to stop, nats-server is stopped, the
// database is closed. A director killed outright loses nothing (see store.ts, task-runner.ts).
import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TokenIssuer } from '../../kernel/cloud-controller/auth/tokens.ts';
import { ApiServer } from '../../kernel/cloud-controller/http/server.ts';
import { createLogger, type Logger } from '../../kernel/component/logger.ts';
import { loadConfigFile } from '../cpi/external.ts';
import { cpiNames, cpiRegistry } from '../cpi/registry.ts';
import type { Cpi } from '../cpi/types.ts';
import { registerSshRoute } from './ssh-route.ts';
import { readRelease, ReleaseError } from '../release/mod.ts';
import { agentBlobstoreUrl, directorAuthenticator, registerRoutes } from './api.ts';
import { Blobstore } from './blobstore.ts';
import { CatalogRemoval } from './catalog-removal.ts';
import { loadDirectorConfig, type DirectorConfig } from './config.ts';
import { deleteDeploymentHandler } from './delete-deployment.ts';
import { installDeployEngine } from './deploy/mod.ts';
import { installHealthMonitor } from '../health-monitor/mod.ts';
import { Mbus, type MbusCredential } from './mbus.ts';
import { minimalReleaseCheck } from './release-tarball.ts';
import { DirectorStore } from './store.ts';
import { TaskRunner } from './task-runner.ts';
import type { ReleaseDescription, ValidateRelease } from './types.ts';
import { ReleaseInvalidError } from './errors.ts';

export interface DirectorOptions {
  /** How an uploaded release is checked: the minimal release.MF check by default (the deploy
   *  reads the release fully); `readReleaseDescription` is orchestrator/release's whole check. */
  validateRelease?: ValidateRelease;
  /** The CPI (tests); otherwise the one the config's `cpi` and `cpi_config` name. */
  cpi?: Cpi;
  /** Install SIGTERM/SIGINT handlers that stop the director (default true). */
  handleSignals?: boolean;
  /** Runs before the API listens: register task types and routes (the deploy code, tests). */
  setup?: (director: Director) => void | Promise<void>;
}

/** What the director's parts hand to code that extends it. */
export interface Director {
  config: DirectorConfig;
  store: DirectorStore;
  blobs: Blobstore;
  mbus: Mbus;
  tasks: TaskRunner;
  api: ApiServer;
  log: Logger;
  /** An agent's mbus credential, and its blobstore URL with that credential in it. */
  registerAgent(agentId: string): Promise<MbusCredential & { blobstore_url: string }>;
  unregisterAgent(agentId: string): Promise<void>;
}

export interface DirectorHandle {
  url: string;
  director: Director;
  stop(): Promise<void>;
}

export async function startDirector(configFile: string, opts: DirectorOptions = {}): Promise<DirectorHandle> {
  const config = await loadDirectorConfig(configFile);
  const log = createLogger('director', 0, config.logging.level);
  await mkdir(config.data_dir, { recursive: true });
  const tmpDir = join(config.data_dir, 'tmp');
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });

  const store = await DirectorStore.open(join(config.data_dir, 'director.sqlite'));
  const cleanups: Array<() => Promise<void>> = [() => store.close()];
  const unwind = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch((err) => log.error({ err: (err as Error).message }, 'stopping the director'));
  };
  try {
    const uuid = (await store.setting('director_uuid')) ?? randomUUID();
    await store.setSetting('director_uuid', uuid);
    const blobs = new Blobstore(join(config.data_dir, 'blobs'));
    await blobs.init();

    const mbus = new Mbus(config.mbus, config.data_dir, store, log);
    await mbus.start();
    cleanups.push(() => mbus.stop());

    const tasks = new TaskRunner(store, log, config.tasks.max_concurrent);
    const failed = await tasks.recover();
    if (failed.length) log.warn({ tasks: failed }, 'tasks left running by a previous director were failed');
    cleanups.push(() => tasks.stop());

    const cpi = opts.cpi ?? (await loadCpi(config));

    const tokens = new TokenIssuer(config.token.secret, config.token.ttl_s, config.token.ttl_s);
    const api = new ApiServer(directorAuthenticator(tokens), log);
    const blobBase = config.blobstore.url ?? `http://${config.listen.host}:${config.listen.port}`;
    const director: Director = {
      config,
      store,
      blobs,
      mbus,
      tasks,
      api,
      log,
      registerAgent: async (agentId) => {
        const cred = await mbus.registerAgent(agentId);
        return { ...cred, blobstore_url: agentBlobstoreUrl(blobBase, cred) };
      },
      unregisterAgent: (agentId) => mbus.unregisterAgent(agentId),
    };
    const catalog = new CatalogRemoval({ store, blobs, tasks, ...(cpi ? { deleteStemcell: (cid: string) => cpi.delete_stemcell(cid) } : {}) });
    registerRoutes(api, {
      catalog,
      config,
      uuid,
      store,
      blobs,
      mbus,
      tasks,
      tokens,
      validateRelease: opts.validateRelease ?? minimalReleaseCheck,
      ...(cpi ? { createStemcell: (path: string, props: Record<string, unknown>) => cpi.create_stemcell(path, props) } : {}),
      tmpDir,
    });
    registerSshRoute(api, { store, cpi, cpiName: config.cpi });
    tasks.register('delete_deployment', deleteDeploymentHandler({ store, mbus, ...(cpi ? { cpi } : {}) }));
    tasks.register('cleanup', catalog.cleanupHandler());
    const stopDeploy = installDeployEngine(director, cpi, { uuid, tmpDir, pingTimeoutMs: config.deploy.agent_ping_timeout_ms, watchPollMs: config.deploy.watch_poll_ms });
    cleanups.push(stopDeploy);
    const healthMonitor = installHealthMonitor(director, cpi, { uuid, tmpDir, pingTimeoutMs: config.deploy.agent_ping_timeout_ms, watchPollMs: config.deploy.watch_poll_ms });
    cleanups.push(healthMonitor.stop);
    await opts.setup?.(director);

    await api.listen(config.listen.host, config.listen.port);
    cleanups.push(async () => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([api.drain(), new Promise((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
      await api.close();
    });
    await healthMonitor.start();
    const url = `http://${config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host}:${api.port}`;

    let stopping: Promise<void> | undefined;
    const onSignal = (signal: NodeJS.Signals): void => {
      log.info({ signal }, 'director stopping');
      void stop().then(() => process.exit(0));
    };
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        if (opts.handleSignals !== false) {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
        }
        await unwind();
        log.info('director stopped');
      })();
      return stopping;
    };
    if (opts.handleSignals !== false) {
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    }
    // Logged last: whoever waits for this line may signal the process at once.
    log.info({ url, mbus: mbus.url, data_dir: config.data_dir }, 'director started');
    return { url, director, stop };
  } catch (err) {
    await unwind();
    throw err;
  }
}

/** The CPI the config names, built from its cpi_config file; none without one. */
async function loadCpi(config: DirectorConfig): Promise<Cpi | undefined> {
  if (config.cpi_config === undefined) return undefined;
  const load = cpiRegistry[config.cpi];
  if (!load) throw new Error(`Loading the CPI: cpi "${config.cpi}" is unknown (known: ${cpiNames().join(', ')})`);
  try {
    return (await load())(await loadConfigFile(config.cpi_config), config.cpi_config);
  } catch (err) {
    throw new Error(`Loading the ${config.cpi} CPI from ${config.cpi_config}: ${(err as Error).message}`, { cause: err });
  }
}

/** orchestrator/release's reader as the director's release check: every problem, or the description. */
export async function readReleaseDescription(tarball: Buffer): Promise<ReleaseDescription> {
  let archive;
  try {
    archive = await readRelease(tarball);
  } catch (err) {
    if (err instanceof ReleaseError) throw new ReleaseInvalidError(err.problems.join('; '));
    throw err;
  }
  return {
    name: archive.manifest.name,
    version: archive.manifest.version,
    jobs: archive.jobs.map((j) => ({ name: j.name, version: j.version, fingerprint: j.fingerprint })),
    packages: archive.packages.map((p) => ({ name: p.name, version: p.version, fingerprint: p.fingerprint, dependencies: p.dependencies })),
  };
}

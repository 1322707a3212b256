// The director's mbus: its own nats-server, with the director's user (every subject), the
// health monitor's (heartbeats and alerts, read-only) and one user per agent confined to its
// own subjects (orchestrator/agent/permissions.ts). Adding or removing an agent rewrites the
// config and sends SIGHUP: nats-server reloads its users without dropping other clients.
//
// nats-server outlives a director killed with SIGKILL (agents keep heartbeating to the health
// monitor meanwhile); the next director adopts it through its pid file and reloads it.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'nats';
import type { Logger } from 'pino';
import { AgentId } from '../agent/protocol.ts';
import { renderAuthorization, type MbusAuthorizationInput, type MbusUser } from '../agent/permissions.ts';
import type { DirectorConfig } from './config.ts';
import { MbusError } from './errors.ts';
import type { DirectorStore } from './store.ts';

export interface MbusCredential {
  user: string;
  password: string;
  url: string;
}

/** The whole nats-server config file. Pure. */
export function renderMbusConfig(input: MbusAuthorizationInput & { host: string; port: number; logFile: string; pidFile: string }): string {
  return (
    [
      '# Written by the Ingot director; rewritten whenever an agent comes or goes.',
      `listen: ${JSON.stringify(`${input.host}:${input.port}`)}`,
      `log_file: ${JSON.stringify(input.logFile)}`,
      `pid_file: ${JSON.stringify(input.pidFile)}`,
      'max_payload: 1048576',
      // An agent whose VM vanished is noticed within seconds, not minutes.
      'ping_interval: "5s"',
    ].join('\n') +
    '\n' +
    renderAuthorization({ director: input.director, ...(input.healthMonitor ? { healthMonitor: input.healthMonitor } : {}), agents: input.agents })
  );
}

const RELOADED = 'Reloaded server configuration';
const RELOAD_FAILED = /Failed to reload server configuration: ?(.*)/;

export class Mbus {
  private director!: MbusUser;
  private healthMonitor!: MbusUser;
  private pid: number | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  readonly dir: string;

  constructor(
    private readonly config: DirectorConfig['mbus'],
    dataDir: string,
    private readonly store: DirectorStore,
    private readonly log: Logger,
  ) {
    this.dir = join(dataDir, 'mbus');
  }

  get configFile(): string {
    return join(this.dir, 'nats.conf');
  }
  get logFile(): string {
    return join(this.dir, 'nats.log');
  }
  get pidFile(): string {
    return join(this.dir, 'nats.pid');
  }

  /** The URL agents dial. */
  get url(): string {
    return `nats://${this.config.advertise_host ?? this.config.host}:${this.config.port}`;
  }

  get directorCredential(): MbusCredential {
    return { ...this.director, url: `nats://${this.config.host}:${this.config.port}` };
  }

  get healthMonitorCredential(): MbusCredential {
    return { ...this.healthMonitor, url: this.url };
  }

  get serverPid(): number | undefined {
    return this.pid;
  }

  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.director = { user: 'director', password: this.config.director_password ?? (await this.secret('mbus_director_password')) };
    this.healthMonitor = { user: 'health-monitor', password: await this.secret('mbus_health_monitor_password') };
    await this.writeConfig();
    const adopted = this.runningServer();
    if (adopted !== undefined) {
      this.pid = adopted;
      this.log.info({ pid: adopted }, 'mbus: adopting the nats-server a previous director left running');
      await this.reload();
    } else {
      const proc = spawn(this.config.nats_server, ['-c', this.configFile], { stdio: 'ignore', detached: true });
      await new Promise<void>((resolve, reject) => {
        proc.once('spawn', resolve);
        proc.once('error', (err) => reject(new MbusError('start_failed', `Starting the mbus (${this.config.nats_server}): ${err.message}`, { cause: err })));
      });
      proc.unref();
      this.pid = proc.pid;
      this.log.info({ pid: proc.pid, port: this.config.port }, 'mbus: nats-server started');
    }
    await this.waitReady();
  }

  /** Stops nats-server (SIGTERM, then SIGKILL after 5 s). */
  async stop(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined || !alive(pid)) return;
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 5000;
    while (alive(pid) && Date.now() < deadline) await sleep(50);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    this.pid = undefined;
  }

  /** A credential for one agent, confined to its own subjects; the same one if it has one. */
  async registerAgent(agentId: string): Promise<MbusCredential> {
    const parsed = AgentId.safeParse(agentId);
    if (!parsed.success) throw new MbusError('unknown_agent', `Registering agent ${JSON.stringify(agentId)}: ${parsed.error.issues[0]?.message ?? 'invalid id'}`);
    return this.serialized(async () => {
      const existing = (await this.store.mbusAgents()).find((a) => a.agent_id === agentId);
      if (existing) return { user: existing.user, password: existing.password, url: this.url };
      const cred = { agent_id: agentId, user: `agent-${agentId}`, password: randomBytes(18).toString('hex') };
      await this.store.putMbusAgent(cred);
      await this.writeConfig();
      await this.reload();
      this.log.info({ agent_id: agentId }, 'mbus: agent registered');
      return { user: cred.user, password: cred.password, url: this.url };
    });
  }

  async unregisterAgent(agentId: string): Promise<void> {
    await this.serialized(async () => {
      if (!(await this.store.deleteMbusAgent(agentId))) return;
      await this.writeConfig();
      await this.reload();
      this.log.info({ agent_id: agentId }, 'mbus: agent unregistered');
    });
  }

  /** True when user/password is a registered agent's credential (the blobstore's agent check). */
  async isAgent(user: string, password: string): Promise<boolean> {
    return (await this.store.mbusAgents()).some((a) => a.user === user && a.password === password);
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async secret(key: string): Promise<string> {
    const existing = await this.store.setting(key);
    if (existing) return existing;
    const made = randomBytes(24).toString('hex');
    await this.store.setSetting(key, made);
    return made;
  }

  private async writeConfig(): Promise<void> {
    const agents = await this.store.mbusAgents();
    const text = renderMbusConfig({
      host: this.config.host,
      port: this.config.port,
      logFile: this.logFile,
      pidFile: this.pidFile,
      director: this.director,
      healthMonitor: this.healthMonitor,
      agents,
    });
    const tmp = `${this.configFile}.tmp`;
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, this.configFile);
  }

  /** SIGHUP, then waits for nats-server to say it reloaded (or why it could not). */
  private async reload(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined || !alive(pid)) throw new MbusError('reload_failed', 'Reloading the mbus: nats-server is not running');
    const before = await this.countReloads();
    process.kill(pid, 'SIGHUP');
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const text = await readFile(this.logFile, 'utf8').catch(() => '');
      const failed = text.split('\n').slice(before.lines).map((l) => RELOAD_FAILED.exec(l)).find((m) => m);
      if (failed) throw new MbusError('reload_failed', `Reloading the mbus: ${failed[1]}`);
      if (count(text, RELOADED) > before.reloads) return;
      await sleep(20);
    }
    throw new MbusError('reload_failed', `Reloading the mbus: nats-server did not confirm within 5 s (see ${this.logFile})`);
  }

  private async countReloads(): Promise<{ reloads: number; lines: number }> {
    const text = await readFile(this.logFile, 'utf8').catch(() => '');
    return { reloads: count(text, RELOADED), lines: text.split('\n').length - 1 };
  }

  /** The pid of a nats-server still running on our config file, if any. */
  private runningServer(): number | undefined {
    if (!existsSync(this.pidFile)) return undefined;
    const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return cmdline.includes(this.configFile) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + this.config.ready_timeout_ms;
    let last: unknown;
    while (Date.now() < deadline) {
      if (this.pid !== undefined && !alive(this.pid)) {
        const tail = (await readFile(this.logFile, 'utf8').catch(() => '')).split('\n').slice(-5).join('\n');
        throw new MbusError('start_failed', `Starting the mbus: nats-server exited at once:\n${tail}`);
      }
      try {
        const nc = await connect({ servers: [this.directorCredential.url], user: this.director.user, pass: this.director.password, reconnect: false, timeout: 1000 });
        await nc.close();
        return;
      } catch (err) {
        last = err;
        await sleep(50);
      }
    }
    throw new MbusError('start_failed', `Starting the mbus: nats-server did not accept the director within ${this.config.ready_timeout_ms} ms (${(last as Error)?.message})`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by its parent) is not alive.
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

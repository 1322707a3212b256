// A real director for tests: a config in a scratch dir with free ports, the director run as a
// child process (this file is also its entry, adding a dummy `sleep` task type and a route to
// queue it), a small API client, and a cleanup that kills the director and its nats-server.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import * as tar from 'tar';
import { stringify } from 'yaml';
import { z } from 'zod';
import { freePort } from './ports.ts';
import { scratchDir } from './tmp.ts';

const SELF = fileURLToPath(import.meta.url);

export interface DirectorFixture {
  file: string;
  dataDir: string;
  admin: { user: string; password: string };
  config: Record<string, unknown>;
}

export async function directorConfig(overrides: Record<string, unknown> = {}): Promise<DirectorFixture> {
  const dir = scratchDir('director');
  const dataDir = join(dir, 'data');
  const admin = { user: 'admin', password: randomBytes(8).toString('hex') };
  const config = {
    data_dir: dataDir,
    listen: { host: '127.0.0.1', port: await freePort() },
    admin,
    token: { secret: randomBytes(24).toString('hex'), ttl_s: 600 },
    mbus: { port: await freePort() },
    tasks: { max_concurrent: 2 },
    logging: { level: 'info' },
    ...overrides,
  };
  const file = join(dir, 'director.yml');
  writeFileSync(file, stringify(config));
  return { file, dataDir, admin, config };
}

/** A gzipped tarball of `files` (path → contents): stemcells and releases for upload tests. */
export async function tarball(files: Record<string, string | Buffer>): Promise<Buffer> {
  const dir = scratchDir('tarball');
  const src = join(dir, 'src');
  for (const [path, body] of Object.entries(files)) {
    mkdirSync(join(src, path, '..'), { recursive: true });
    writeFileSync(join(src, path), body);
  }
  const out = join(dir, 'out.tgz');
  await tar.c({ gzip: true, cwd: src, file: out, portable: true }, Object.keys(files));
  return readFileSync(out);
}

export class DirectorProcess {
  private constructor(
    readonly fixture: DirectorFixture,
    readonly proc: ChildProcess,
    readonly url: string,
    readonly logs: Array<Record<string, unknown>>,
    readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
  ) {}

  static async start(fixture: DirectorFixture, timeoutMs = 20_000): Promise<DirectorProcess> {
    const proc = spawn(process.execPath, ['--import', 'tsx', SELF, '--config', fixture.file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const logs: Array<Record<string, unknown>> = [];
    let stderr = '';
    let buffered = '';
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the director did not start within ${timeoutMs} ms:\n${stderr}`)), timeoutMs);
      proc.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          let json: Record<string, unknown>;
          try {
            json = JSON.parse(line) as Record<string, unknown>;
          } catch {
            json = { raw: line };
          }
          logs.push(json);
          if (json.msg === 'director started') {
            clearTimeout(timer);
            resolve(String(json.url));
          }
        }
      });
      proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`the director exited (${code ?? signal}) before it started:\n${stderr}`));
      });
    });
    return new DirectorProcess(fixture, proc, url, logs, exited);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }

  /** The nats-server pid the director runs (from its pid file). */
  get natsPid(): number | undefined {
    const f = join(this.fixture.dataDir, 'mbus', 'nats.pid');
    return existsSync(f) ? Number(readFileSync(f, 'utf8').trim()) : undefined;
  }

  /** Kills the director and whatever nats-server it left. */
  async cleanup(): Promise<void> {
    await this.kill('SIGKILL');
    killNats(this.fixture);
  }

  client(): DirectorClient {
    return new DirectorClient(this.url, this.fixture.admin);
  }
}

export function killNats(fixture: DirectorFixture): void {
  const f = join(fixture.dataDir, 'mbus', 'nats.pid');
  if (!existsSync(f)) return;
  const pid = Number(readFileSync(f, 'utf8').trim());
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmd.includes(join(fixture.dataDir, 'mbus'))) process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export class DirectorClient {
  private token: string | undefined;

  constructor(
    readonly url: string,
    private readonly admin: { user: string; password: string },
  ) {}

  async login(): Promise<string> {
    const res = await fetch(`${this.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: this.admin.user, password: this.admin.password }) });
    if (!res.ok) throw new Error(`login: HTTP ${res.status} ${await res.text()}`);
    this.token = ((await res.json()) as { access_token: string }).access_token;
    return this.token;
  }

  async request(method: string, path: string, body?: unknown, opts: { raw?: Buffer; token?: string | null } = {}): Promise<{ status: number; body: any; text: string }> {
    const token = opts.token === undefined ? (this.token ?? (await this.login())) : opts.token;
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    let payload: string | Buffer | undefined;
    if (opts.raw) {
      headers['content-type'] = 'application/gzip';
      payload = opts.raw;
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const res = await fetch(`${this.url}${path}`, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, body: json, text };
  }

  async waitForTask(id: number, states: string[], timeoutMs = 15_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.request('GET', `/tasks/${id}`);
      if (states.includes(r.body?.state)) return r.body;
      if (Date.now() > deadline) throw new Error(`task ${id} is ${r.body?.state}, not ${states.join('|')}, after ${timeoutMs} ms`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }
}

// ---- the entry: a director with a dummy task type ------------------------------------------------

const SleepBody = z.object({ deployment: z.string().min(1), steps: z.number().int().positive().default(3), step_ms: z.number().int().min(0).default(100) }).strict();

async function main(): Promise<void> {
  const i = process.argv.indexOf('--config');
  const configFile = process.argv[i + 1];
  if (i < 0 || !configFile) throw new Error('usage: director.ts --config FILE');
  const { startDirector } = await import('../../orchestrator/director/main.ts');
  const { enqueueOrConflict, deploymentLock, presentTask } = await import('../../orchestrator/director/api.ts');
  const { readJson } = await import('../../kernel/cloud-controller/http/body.ts');
  await startDirector(configFile, {
    setup: (d) => {
      d.tasks.register('sleep', async ({ task, events, signal, log }) => {
        const steps = Number(task.params.steps);
        for (let n = 1; n <= steps; n++) {
          events.emit({ stage: 'Sleeping', task: `step ${n}`, index: n, total: steps, state: 'started', progress: 0 });
          log(`step ${n} of ${steps}`);
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(resolve, Number(task.params.step_ms));
            signal.addEventListener('abort', () => {
              clearTimeout(timer);
              reject(signal.reason as Error);
            }, { once: true });
          });
          events.emit({ stage: 'Sleeping', task: `step ${n}`, index: n, total: steps, state: 'finished', progress: 100 });
        }
        return `slept ${steps} steps`;
      });
      d.api.route('POST', '/test/sleep', 'user', async (ctx) => {
        const body = await readJson(ctx.req, SleepBody);
        const task = await enqueueOrConflict(d.tasks, {
          type: 'sleep',
          description: `sleep for ${body.deployment}`,
          deployment: body.deployment,
          username: 'admin',
          locks: [deploymentLock(body.deployment)],
          params: { steps: body.steps, step_ms: body.step_ms },
        });
        return { status: 202, body: presentTask(task) };
      });
      d.api.route('POST', '/test/agents/:id', 'user', async (ctx) => ({ status: 201, body: await d.registerAgent(ctx.params.id!) }));
      d.api.route('DELETE', '/test/agents/:id', 'user', async (ctx) => {
        await d.unregisterAgent(ctx.params.id!);
        return { status: 204 };
      });
      d.api.route('POST', '/test/deployments/:name', 'user', async (ctx) => {
        await d.store.saveDeployment(ctx.params.name!, `name: ${ctx.params.name}\nstemcells: [{alias: default, os: debian-12, version: "1"}]\n`, null);
        return { status: 201 };
      });
    },
  });
}

if (process.argv[1] === SELF) {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}

// Runs the agent as a real process (`node --import tsx orchestrator/agent/main.ts --settings
// FILE`) in its own process group, so the test can kill it and every job process it started;
// and a director-side client that talks to it over the mbus with per-agent reply subjects.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from 'nats';
import * as tar from 'tar';
import { createHash } from 'node:crypto';
import { subjects, type AgentReply } from '../../orchestrator/agent/protocol.ts';
import { scratchDir } from './tmp.ts';
import { captured } from './captured.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const AGENT_MAIN = join(ROOT, 'orchestrator/agent/main.ts');

export interface StartedAgent {
  proc: ChildProcess;
  root: string;
  output(): string;
  /** SIGTERM (the agent stops its jobs), then SIGKILL to the whole group after a grace. */
  kill(): Promise<void>;
}

/** `root` reuses an earlier agent's root (an agent restart on the same VM). */
export function startAgentProcess(settings: Record<string, unknown>, opts: { root?: string } = {}): StartedAgent {
  const dir = scratchDir('agent');
  const root = opts.root ?? join(dir, 'vcap');
  mkdirSync(root, { recursive: true });
  const file = join(dir, 'settings.json');
  const agentBlock = (settings.agent ?? {}) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify({ ...settings, agent: { ...agentBlock, root } }, null, 2));
  const proc = spawn(process.execPath, ['--import', 'tsx', AGENT_MAIN, '--settings', file], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const { output, exited } = captured(proc);
  return {
    proc,
    root,
    output,
    kill: async () => {
      const pgid = proc.pid!;
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => killGroup(pgid), 5000);
        await exited;
        clearTimeout(timer);
      }
      killGroup(pgid);
    },
  };
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // the group is gone already
  }
}

/** The director's side: requests with `reply_to: director.<id>.<agent_id>.<uuid>`. */
export class DirectorClient {
  readonly directorId = 'd' + randomUUID().slice(0, 8);
  private constructor(readonly nc: NatsConnection) {}

  static async connect(url: string, user: string, password: string): Promise<DirectorClient> {
    return new DirectorClient(await connect({ servers: [url], user, pass: password }));
  }

  async request(agentId: string, body: unknown, timeoutMs = 5000): Promise<AgentReply> {
    const replyTo = subjects.directorReply(this.directorId, agentId, randomUUID());
    const sub = this.nc.subscribe(replyTo, { max: 1, timeout: timeoutMs });
    const payload = typeof body === 'string' ? body : JSON.stringify({ ...(body as object), reply_to: replyTo });
    this.nc.publish(subjects.agent(agentId), new TextEncoder().encode(payload));
    for await (const m of sub) return JSON.parse(new TextDecoder().decode(m.data)) as AgentReply;
    throw new Error(`no reply from agent ${agentId}`);
  }

  async call(agentId: string, method: string, args: unknown[] = []): Promise<unknown> {
    const r = await this.request(agentId, { method, arguments: args });
    if ('exception' in r) throw new Error(r.exception.message);
    return r.value;
  }

  /** A long call: start it, then poll get_task until it is done. */
  async task(agentId: string, method: string, args: unknown[] = [], timeoutMs = 20_000): Promise<AgentReply> {
    const first = await this.request(agentId, { method, arguments: args });
    if ('exception' in first) return first;
    const { agent_task_id } = first.value as { agent_task_id: string };
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.request(agentId, { method: 'get_task', arguments: [agent_task_id] });
      const v = 'value' in r ? (r.value as { state?: string; agent_task_id?: string } | null) : null;
      if (!(v && v.agent_task_id === agent_task_id && v.state === 'running')) return r;
      if (Date.now() > deadline) throw new Error(`task ${method} still running after ${timeoutMs} ms`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}

/** Polls `probe` until it returns a truthy value (no fixed sleeps in tests). */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A tar.gz of files (path → content; executable when the path starts with bin/). */
export async function tarball(files: Record<string, string>): Promise<{ body: Buffer; sha256: string }> {
  const dir = scratchDir('agent-blob');
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content, { mode: path.startsWith('bin/') ? 0o755 : 0o644 });
  }
  const chunks: Buffer[] = [];
  for await (const c of tar.c({ gzip: true, cwd: dir, portable: true }, Object.keys(files)) as AsyncIterable<Buffer>) chunks.push(c);
  const body = Buffer.concat(chunks);
  return { body, sha256: createHash('sha256').update(body).digest('hex') };
}

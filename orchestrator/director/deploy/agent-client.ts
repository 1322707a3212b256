// The director's side of the agent protocol (orchestrator/agent/protocol.ts) over its mbus:
// a request to `agent.<id>` carrying a `reply_to` of `director.<director id>.<agent id>.<uuid>`
// (the only reply subjects an agent may publish to), a timeout per request, long methods
// (apply, stop, drain, fetch_logs, …) polled with get_task until they end, and every failure an
// AgentCallError naming the agent and the method.
import { randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';
import { AgentReply, AgentState, subjects, TaskRunning, type ApplySpec } from '../../agent/protocol.ts';
import type { MbusCredential } from '../mbus.ts';

export class AgentCallError extends Error {
  override name = 'AgentCallError';
  constructor(
    readonly code: 'timeout' | 'exception' | 'bad_reply' | 'cancelled',
    readonly agentId: string,
    readonly method: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface AgentClientOptions {
  /** One request's reply (default 10 s). */
  requestTimeoutMs?: number;
  /** Between get_task polls (default 250 ms). */
  pollMs?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class AgentClient {
  private constructor(
    private readonly nc: NatsConnection,
    readonly directorId: string,
    private readonly opts: Required<AgentClientOptions>,
  ) {}

  static async connect(cred: MbusCredential, directorId: string, opts: AgentClientOptions = {}): Promise<AgentClient> {
    const nc = await connect({ servers: [cred.url], user: cred.user, pass: cred.password, name: `director/${directorId}`, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
    return new AgentClient(nc, directorId.replace(/[^A-Za-z0-9_-]/g, ''), { requestTimeoutMs: opts.requestTimeoutMs ?? 10_000, pollMs: opts.pollMs ?? 250 });
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.close();
  }

  /** One request, one reply: the reply's value, or AgentCallError. */
  async request(agentId: string, method: string, args: unknown[] = [], timeoutMs = this.opts.requestTimeoutMs): Promise<unknown> {
    const replyTo = subjects.directorReply(this.directorId, agentId, randomUUID());
    const sub = this.nc.subscribe(replyTo, { max: 1, timeout: timeoutMs });
    this.nc.publish(subjects.agent(agentId), encoder.encode(JSON.stringify({ method, arguments: args, reply_to: replyTo })));
    let raw: unknown;
    try {
      for await (const m of sub) {
        raw = JSON.parse(decoder.decode(m.data));
        break;
      }
    } catch (err) {
      throw new AgentCallError('timeout', agentId, method, `Calling ${method} on agent ${agentId}: no reply within ${timeoutMs} ms`, { cause: err });
    }
    if (raw === undefined) throw new AgentCallError('timeout', agentId, method, `Calling ${method} on agent ${agentId}: no reply within ${timeoutMs} ms`);
    const reply = AgentReply.safeParse(raw);
    if (!reply.success) throw new AgentCallError('bad_reply', agentId, method, `Calling ${method} on agent ${agentId}: the reply is not {value} or {exception}`);
    if ('exception' in reply.data) throw new AgentCallError('exception', agentId, method, `Calling ${method} on agent ${agentId}: ${reply.data.exception.message}`);
    return reply.data.value;
  }

  /** A long method: started, then polled with get_task until it ends or `timeoutMs` passes. */
  async task(agentId: string, method: string, args: unknown[], timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    const first = await this.request(agentId, method, args);
    const running = TaskRunning.safeParse(first);
    if (!running.success) return first; // answered at once
    const id = running.data.agent_task_id;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (signal?.aborted) {
        await this.request(agentId, 'cancel_task', [id]).catch(() => undefined);
        throw new AgentCallError('cancelled', agentId, method, `Calling ${method} on agent ${agentId}: cancelled`);
      }
      await sleep(this.opts.pollMs);
      const v = await this.request(agentId, 'get_task', [id]);
      const still = TaskRunning.safeParse(v);
      if (!still.success || still.data.agent_task_id !== id) return v;
      if (Date.now() > deadline) throw new AgentCallError('timeout', agentId, method, `Calling ${method} on agent ${agentId}: still running after ${timeoutMs} ms`);
    }
  }

  /** Waits until the agent answers ping (a new VM's agent takes a moment to subscribe). */
  async waitForPing(agentId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      signal?.throwIfAborted();
      try {
        if ((await this.request(agentId, 'ping', [], Math.min(2000, Math.max(100, deadline - Date.now())))) === 'pong') return;
      } catch (err) {
        last = err;
      }
      await sleep(200);
    }
    throw new AgentCallError('timeout', agentId, 'ping', `Waiting for agent ${agentId}: it did not answer ping within ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ''}`);
  }

  async state(agentId: string, timeoutMs?: number): Promise<AgentState> {
    const v = await this.request(agentId, 'get_state', [], timeoutMs);
    const parsed = AgentState.safeParse(v);
    if (!parsed.success) throw new AgentCallError('bad_reply', agentId, 'get_state', `Calling get_state on agent ${agentId}: the reply is not an agent state`);
    return parsed.data;
  }

  /** Each agent's state (or why it did not say), asked in parallel: one silent agent is never an error. */
  async states(agentIds: string[], timeoutMs?: number): Promise<Map<string, AgentState | Error>> {
    const states = new Map<string, AgentState | Error>();
    await Promise.all(agentIds.map(async (id) => states.set(id, await this.state(id, timeoutMs).catch((err: Error) => err))));
    return states;
  }

  apply(agentId: string, spec: ApplySpec, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    return this.task(agentId, 'apply', [spec], timeoutMs, signal);
  }
}

/** One AgentClient made on first use and shared; a failed connect is tried again on the next use. */
export function lazyAgentClient(cred: MbusCredential, directorId: string): { agents: () => Promise<AgentClient>; close: () => Promise<void> } {
  let client: Promise<AgentClient> | undefined;
  const agents = (): Promise<AgentClient> => {
    client ??= AgentClient.connect(cred, directorId).catch((err: Error) => {
      client = undefined;
      throw new Error(`Connecting to the mbus: ${err.message}`, { cause: err });
    });
    return client;
  };
  const close = async (): Promise<void> => {
    const c = await client?.catch(() => undefined);
    await c?.close().catch(() => undefined);
  };
  return { agents, close };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

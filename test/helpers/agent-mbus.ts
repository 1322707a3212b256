// A real nats-server as the orchestrator's mbus for agent tests: its authorization block is
// the one rendered by orchestrator/agent/permissions.ts (director + one user per agent).
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { renderAuthorization } from '../../orchestrator/agent/permissions.ts';
import { freePort } from './ports.ts';
import { scratchDir } from './tmp.ts';

const NATS_SERVER = process.env.NATS_SERVER ?? '/usr/sbin/nats-server';

export interface MbusCredential {
  user: string;
  password: string;
}

export class AgentMbus {
  private constructor(
    readonly port: number,
    readonly director: MbusCredential,
    readonly agents: Map<string, MbusCredential>,
    private readonly proc: ChildProcess,
  ) {}

  static async start(agentIds: string[]): Promise<AgentMbus> {
    const dir = scratchDir('agent-mbus');
    const port = await freePort();
    const director = { user: 'director', password: randomBytes(12).toString('hex') };
    const agents = new Map(agentIds.map((id) => [id, { user: `agent-${id}`, password: randomBytes(12).toString('hex') }]));
    const conf = join(dir, 'nats.conf');
    writeFileSync(
      conf,
      `listen: 127.0.0.1:${port}\nmax_payload: 1048576\n` +
        renderAuthorization({ director, agents: [...agents].map(([agent_id, c]) => ({ agent_id, ...c })) }),
    );
    const proc = spawn(NATS_SERVER, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server did not start within 10 s:\n${output}`)), 10_000);
      const onData = (c: Buffer): void => {
        output += c.toString();
        if (output.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code}:\n${output}`));
      });
    });
    proc.stdout!.resume();
    proc.stderr!.resume();
    return new AgentMbus(port, director, agents, proc);
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  agent(id: string): MbusCredential {
    const c = this.agents.get(id);
    if (!c) throw new Error(`no mbus credential for agent ${id}`);
    return c;
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGKILL');
    await exited;
  }
}

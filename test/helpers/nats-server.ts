// A real nats-server for a test file: its own port, credentials required, stoppable and
// restartable on the same port (to test reconnects), always killed at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort } from './ports.ts';
import { scratchDir } from './tmp.ts';

const NATS_SERVER = process.env.NATS_SERVER ?? '/usr/sbin/nats-server';

export class NatsServer {
  private proc: ChildProcess | undefined;
  private output = '';

  private constructor(
    readonly port: number,
    readonly user: string,
    readonly password: string,
    private readonly configFile: string,
  ) {}

  static async start(): Promise<NatsServer> {
    const dir = scratchDir('nats');
    const port = await freePort();
    const user = 'kernel';
    const password = randomBytes(12).toString('hex');
    const configFile = join(dir, 'nats.conf');
    writeFileSync(
      configFile,
      [
        `listen: 127.0.0.1:${port}`,
        `authorization { user: "${user}", password: "${password}" }`,
        `max_payload: 1048576`,
        `ping_interval: "2s"`,
      ].join('\n') + '\n',
    );
    const server = new NatsServer(port, user, password, configFile);
    await server.launch();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** The nats block of a component config. */
  get componentConfig(): { servers: string[]; user: string; password: string } {
    return { servers: [this.url], user: this.user, password: this.password };
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.running) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  private async launch(): Promise<void> {
    this.output = '';
    const proc = spawn(NATS_SERVER, ['-c', this.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server did not start within 10 s:\n${this.output}`)), 10_000);
      const onData = (chunk: Buffer): void => {
        this.output += chunk.toString();
        if (this.output.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code}:\n${this.output}`));
      });
    });
    // Keep draining its output so a chatty server never blocks on a full pipe.
    proc.stdout!.resume();
    proc.stderr!.resume();
  }
}

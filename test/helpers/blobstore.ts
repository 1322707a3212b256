// A blobstore component for a test file: started as a real process (`ingot component
// blobstore --config`) against the file's nats-server, on its own port and directory;
// restartable on the same port and directory, always killed by the caller's after.always.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startComponentProcess, writeConfig, type StartedComponent } from './component-process.ts';
import type { NatsServer } from './nats-server.ts';
import { freePort } from './ports.ts';
import { scratchDir } from './tmp.ts';

export interface BlobstoreProcess {
  proc: StartedComponent;
  url: string;
  port: number;
  dir: string;
  user: string;
  password: string;
  /** `authorization` header of the blob API. */
  auth: string;
  /** The `blobstore` block of a controller using it, with `dir` the controller's scratch. */
  ccConfig(scratch: string): { dir: string; url: string; user: string; password: string; timeout_s: number };
  /** SIGKILL (as a crash would), then start again on the same port and directory. */
  restart(): Promise<void>;
  kill(): Promise<void>;
}

export async function startBlobstore(nats: NatsServer, overrides: Record<string, unknown> = {}): Promise<BlobstoreProcess> {
  const dir = join(scratchDir('blobstore'), 'store');
  const port = await freePort();
  const user = 'blobstore';
  const password = randomBytes(16).toString('hex');
  const status = { user: 'status', password: randomBytes(8).toString('hex') };
  const configFile = writeConfig('blobstore', {
    nats: nats.componentConfig,
    status: { host: '127.0.0.1', port: 0, ...status },
    local_ip: '127.0.0.1',
    drain_timeout_s: 5,
    dir,
    host: '127.0.0.1',
    port,
    user,
    password,
    ...overrides,
  });
  const url = `http://127.0.0.1:${port}`;
  const b: BlobstoreProcess = {
    proc: await startComponentProcess('blobstore', configFile, { statusUser: status.user, statusPassword: status.password }),
    url,
    port,
    dir,
    user,
    password,
    auth: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
    ccConfig: (scratch) => ({ dir: scratch, url, user, password, timeout_s: 10 }),
    async restart() {
      await b.proc.kill('SIGKILL');
      b.proc = await startComponentProcess('blobstore', configFile, { statusUser: status.user, statusPassword: status.password });
    },
    kill: () => b.proc.kill('SIGKILL'),
  };
  return b;
}

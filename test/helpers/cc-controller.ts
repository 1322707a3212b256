// A cloud controller for a test file: started as a real process (`ingot component
// cloud-controller --config`) against the file's nats-server, with its own ports, database
// and blobstore; restartable on the same port and state; and a small typed HTTP client.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import yazl from 'yazl';
import { freePort } from './ports.ts';
import { scratchDir } from './tmp.ts';
import { startComponentProcess, writeConfig, type StartedComponent } from './component-process.ts';
import type { NatsServer } from './nats-server.ts';

export const ADMIN = { user: 'admin', password: 'admin-secret-pw' };
export const BULK = { user: 'hm', password: 'bulk-secret-pw' };
export const SYSTEM_DOMAIN = 'sys.ingot.test';
export const APPS_DOMAIN = 'apps.ingot.test';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export class ApiClient {
  constructor(
    public baseUrl: string,
    public token?: string,
  ) {}

  withToken(token: string | undefined): ApiClient {
    return new ApiClient(this.baseUrl, token);
  }

  async request<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    const init: RequestInit & { duplex?: 'half' } = { method, headers: { ...(this.token ? { authorization: `bearer ${this.token}` } : {}), ...headers } };
    if (body !== undefined) {
      if (Buffer.isBuffer(body) || typeof body === 'string') init.body = body;
      else {
        init.body = JSON.stringify(body);
        (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
      }
    }
    const res = await fetch(path.startsWith('http') ? path : `${this.baseUrl}${path}`, init);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  get<T = any>(path: string): Promise<ApiResponse<T>> {
    return this.request('GET', path);
  }
  post<T = any>(path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse<T>> {
    return this.request('POST', path, body ?? {}, headers);
  }
  patch<T = any>(path: string, body: unknown): Promise<ApiResponse<T>> {
    return this.request('PATCH', path, body);
  }
  del<T = any>(path: string): Promise<ApiResponse<T>> {
    return this.request('DELETE', path);
  }

  async login(user: string, password: string): Promise<string> {
    const res = await this.request('POST', '/oauth/token', new URLSearchParams({ grant_type: 'password', username: user, password }).toString(), {
      'content-type': 'application/x-www-form-urlencoded',
    });
    if (res.status !== 200) throw new Error(`login as ${user}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.access_token as string;
  }
}

export interface Controller {
  proc: StartedComponent;
  url: string;
  port: number;
  dir: string;
  configFile: string;
  jwtSecret: string;
  /** An admin client (logged in at start and after every restart). */
  admin: ApiClient;
  anonymous: ApiClient;
  /** SIGTERM, wait, and start again on the same port and state. */
  restart(): Promise<void>;
  /** Starts it again after a kill, on the same port and state. */
  start(): Promise<void>;
  kill(): Promise<void>;
}

/** How a controller suite (cc-*-suite.ts) is run: on which database. */
export interface CcSuiteOptions {
  /** The controller's `db.url`: an empty database, made when the suite starts. */
  dbUrl: () => Promise<string>;
  /**
   * Starts a blobstore process for the suite (test/helpers/blobstore.ts startBlobstore) that its
   * controllers keep their blobs in, instead of the default local directory.
   */
  blobstore?: (nats: NatsServer) => Promise<SuiteBlobstore>;
}

/** What holds a suite's blobs outside its controllers; killed after the suite. */
export interface SuiteBlobstore {
  /** The controller's `blobstore` block, given its own scratch directory. */
  ccConfig(scratch: string): Record<string, unknown>;
  kill(): Promise<void>;
}

/** A `db.url` of a new SQLite file: the database of a single controller. */
export async function sqliteDbUrl(): Promise<string> {
  return `sqlite://${join(scratchDir('cc-db'), 'cc.db')}`;
}

export async function startController(nats: NatsServer, overrides: Record<string, unknown> = {}): Promise<Controller> {
  const dir = scratchDir('cc');
  const port = await freePort();
  const jwtSecret = randomBytes(24).toString('hex');
  const config = {
    nats: nats.componentConfig,
    status: { host: '127.0.0.1', port: 0 },
    logging: { level: 'info' },
    local_ip: '127.0.0.1',
    external_host: '127.0.0.1',
    external_port: port,
    system_domain: SYSTEM_DOMAIN,
    apps_domain: APPS_DOMAIN,
    db: { url: `sqlite://${join(dir, 'cc.db')}` },
    blobstore: { dir: join(dir, 'blobs') },
    jwt: { secret: jwtSecret },
    admin: ADMIN,
    bulk_api: BULK,
    placement: { discover_timeout_ms: 500, attempts: 2, find_window_ms: 400 },
    drain_timeout_s: 5,
    ...overrides,
  };
  const configFile = writeConfig('cc', config);
  const url = `http://127.0.0.1:${port}`;
  const anonymous = new ApiClient(url);
  const c: Controller = {
    proc: await startComponentProcess('cloud-controller', configFile),
    url,
    port,
    dir,
    configFile,
    jwtSecret,
    admin: anonymous,
    anonymous,
    async restart() {
      await c.proc.kill('SIGTERM');
      await c.start();
    },
    async start() {
      c.proc = await startComponentProcess('cloud-controller', configFile);
      c.admin = anonymous.withToken(await anonymous.login(ADMIN.user, ADMIN.password));
    },
    async kill() {
      await c.proc.kill('SIGKILL');
    },
  };
  c.admin = anonymous.withToken(await anonymous.login(ADMIN.user, ADMIN.password));
  return c;
}

export type ZipFileSpec = string | Buffer | { content: string | Buffer; mode?: number } | { symlink: string };

/** A zip of the given files (paths → contents), as a client would upload it. */
export async function zipOf(files: Record<string, ZipFileSpec>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [path, spec] of Object.entries(files)) {
    if (typeof spec === 'string' || Buffer.isBuffer(spec)) zip.addBuffer(Buffer.from(spec), path, { mode: 0o100644 });
    else if ('symlink' in spec) zip.addBuffer(Buffer.from(spec.symlink), path, { mode: 0o120777, compress: false });
    else zip.addBuffer(Buffer.from(spec.content), path, { mode: 0o100000 | (spec.mode ?? 0o644) });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Renames every occurrence of `from` to `to` (same length) in a zip's headers: entries yazl would refuse. */
export function renameInZip(zip: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('names must have the same length');
  return Buffer.from(zip.toString('latin1').split(from).join(to), 'latin1');
}

/** A multipart/form-data body with text fields and an optional file part. */
export function multipart(fields: Record<string, string>, file?: { field: string; filename: string; content: Buffer }): { body: Buffer; contentType: string } {
  const boundary = `----ingot${randomBytes(8).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  if (file) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${file.field}"; filename="${file.filename}"\r\nContent-Type: application/zip\r\n\r\n`));
    parts.push(file.content, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

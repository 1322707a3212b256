// The cloud controller's config: the common component keys plus its own, validated once at
// start into one typed, defaulted object. Nothing downstream re-checks a key.
import { z } from 'zod';
import { componentConfig } from '../component/mod.ts';

const domainName = z
  .string()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, 'expected a lower-case DNS name such as example.com');
const credential = z.object({ user: z.string().min(1), password: z.string().min(8, 'expected at least 8 characters') }).strict();
const mb = z.number().int().positive();
const brokerCredential = z.object({ username: z.string().min(1), password: z.string().min(1) }).strict();

const DB_URL_FORMS = 'sqlite:///absolute/path.db, sqlite::memory: or postgres://user:password@host:port/database';

function checkDbUrl(url: string, ctx: z.RefinementCtx): void {
  const problem = dbUrlProblem(url);
  if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${problem}; expected ${DB_URL_FORMS}` });
}

/** What is wrong with a db.url, or null. The message never repeats the url: it may hold a password. */
function dbUrlProblem(url: string): string | null {
  if (url === 'sqlite::memory:') return null;
  if (url.startsWith('sqlite://')) return url.startsWith('sqlite:///') && url.length > 'sqlite:///'.length ? null : 'the SQLite path must be absolute';
  if (!/^postgres(ql)?:\/\//.test(url)) return `the scheme ${/^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? '(none)'} is not supported`;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a valid postgres:// url (for a unix socket: postgres://user@localhost/database?host=/socket/dir)';
  }
  const socket = u.searchParams.get('host');
  if (!u.username) return 'the postgres url names no user';
  if (socket !== null && !socket.startsWith('/')) return '?host= must be an absolute socket directory';
  if (u.pathname.length <= 1 || u.pathname.slice(1).includes('/')) return 'the postgres url names no database';
  return null;
}

/** With a url, the blobstore's credential too (and never inside the url, which is logged); without one, neither. */
function checkBlobstore(b: { url?: string | undefined; user?: string | undefined; password?: string | undefined }, ctx: z.RefinementCtx): void {
  if (b.url === undefined) {
    for (const key of ['user', 'password'] as const) {
      if (b[key] !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [key], message: 'only with url (the blobstore component); a local directory has no credential' });
    }
    return;
  }
  let u: URL;
  try {
    u = new URL(b.url);
  } catch {
    return; // reported by the url's own check
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['url'], message: `expected an http:// or https:// url, not ${u.protocol}` });
  if (u.username || u.password) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['url'], message: 'must not hold a credential: set user and password' });
  for (const key of ['user', 'password'] as const) {
    if (b[key] === undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [key], message: 'required with url' });
  }
}

export const ccConfig = componentConfig({
  /** Address and port the REST API listens on (0 picks a free port; the port is logged as `api_port`). */
  external_host: z.string().default('0.0.0.0'),
  external_port: z.number().int().min(0).max(65535).default(9022),
  /**
   * How DEAs and stagers reach this controller's signed package and droplet URLs, e.g.
   * http://10.244.0.5:9022. Defaults to http://<local_ip>:<port>.
   */
  external_url: z.string().url().optional(),
  /** The platform's own domain: the API answers at api.<system_domain>. */
  system_domain: domainName,
  /** The default shared domain for app routes; defaults to the system domain. */
  apps_domain: domainName.optional(),
  /** Hosts of the system domain no route may take (the API's own among them). */
  reserved_system_hosts: z.array(z.string().min(1)).default(['api', 'login', 'uaa']),
  /**
   * Where the state lives: sqlite:///absolute/path.db (or sqlite::memory:) for one controller;
   * postgres://user:password@host:port/database for several controllers sharing it (with
   * ?host=/socket/dir the unix socket in that directory is used instead of host).
   */
  db: z.object({ url: z.string().superRefine(checkDbUrl) }).strict(),
  /**
   * Where packages, droplets and the resource cache live: `{dir}`, a local directory; or with
   * `url` (and `user`, `password`) the blobstore component several controllers share, `dir`
   * then being only this controller's scratch (temporary files, a cache of resource files).
   */
  blobstore: z
    .object({
      dir: z.string().min(1),
      /** The blobstore component's base URL, e.g. http://10.244.0.8:9025. */
      url: z.string().url().optional(),
      user: z.string().min(1).optional(),
      password: z.string().min(16, 'expected at least 16 characters').optional(),
      /** Bound on waiting for the blobstore's answer, and on silence during a transfer. */
      timeout_s: z.number().positive().default(30),
      /** With url: the bound on the local cache of resource files (least recently used go first). */
      cache_mb: z.number().positive().default(1024),
    })
    .strict()
    .superRefine(checkBlobstore),
  jwt: z.object({ secret: z.string().min(32, 'expected at least 32 characters') }).strict(),
  /** Lifetime of access tokens, and of refresh tokens. */
  token_ttl_s: z.number().int().positive().default(3600),
  refresh_token_ttl_s: z.number().int().positive().default(30 * 24 * 3600),
  /** The admin user, created (or its password reset) at every start. */
  admin: credential,
  /** The health managers' credential for the bulk API (HTTP Basic). */
  bulk_api: credential,
  /** Largest package upload and droplet upload accepted. */
  max_upload_mb: mb.default(1024),
  max_droplet_mb: mb.default(2048),
  /** Largest total uncompressed size of a package (a guard against zip bombs). */
  max_package_unzipped_mb: mb.default(4096),
  /** How long a signed package/droplet URL handed to a DEA stays valid. */
  signed_url_ttl_s: z.number().int().positive().default(3600),
  default_stack: z.string().min(1).default('bookworm'),
  default_organization: z.string().min(1).default('default'),
  default_space: z.string().min(1).default('default'),
  app_defaults: z
    .object({
      memory_mb: mb.default(256),
      disk_mb: mb.default(1024),
      instances: z.number().int().min(0).default(1),
    })
    .strict()
    .default({}),
  staging: z
    .object({
      /** How long a stager may take before the build is marked FAILED. */
      timeout_s: z.number().positive().default(900),
      memory_mb: mb.default(1024),
      disk_mb: mb.default(4096),
    })
    .strict()
    .default({}),
  placement: z
    .object({
      /** How long to wait for the first dea.discover reply (DEAs delay by their taint, capped at a few hundred ms). */
      discover_timeout_ms: z.number().int().positive().default(1500),
      /** Discover attempts before an instance is reported as unplaced (the HM asks again later). */
      attempts: z.number().int().positive().default(3),
      /** How long to gather dea.find.droplet replies (stats, rolling restarts, hm STOP checks). */
      find_window_ms: z.number().int().positive().default(1000),
    })
    .strict()
    .default({}),
  /**
   * How often a controller receiving a package upload says it is still at it; an upload not
   * heard of for 3 × this is dead, and any controller marks it FAILED (upload-claims.ts).
   */
  upload_heartbeat_s: z.number().positive().default(10),
  /** A rolling restart waits this long for each new instance to run before giving up. */
  rolling_instance_timeout_s: z.number().positive().default(180),
  /** Re-registration interval with the routers until one announces its own on router.start. */
  router_register_interval_s: z.number().positive().default(20),
  /** Recent log lines kept per app, in memory. */
  recent_log_lines: z.number().int().positive().default(1000),
  /**
   * Service brokers. A gateway announces only `{name, label, url}` on services.gateway.announce
   * (never a secret): its Basic credential is `credentials.<name>`, else `credentials.<label>`,
   * else `default_credentials`; an announced gateway with none is logged and ignored.
   */
  service_brokers: z
    .object({
      credentials: z.record(z.string().min(1), brokerCredential).default({}),
      default_credentials: brokerCredential.optional(),
      /** An announced broker's catalog is fetched again when the last fetch is older than this. */
      catalog_refresh_s: z.number().positive().default(60),
      /** How often an asynchronous operation's last_operation is polled. */
      poll_interval_s: z.number().positive().default(2),
      /** An asynchronous operation still in progress after this long is marked failed. */
      operation_timeout_s: z.number().positive().default(3600),
      /** Bound on one request to a broker. */
      request_timeout_s: z.number().positive().default(60),
    })
    .strict()
    .default({}),
});

export type CcConfig = z.output<typeof ccConfig>;

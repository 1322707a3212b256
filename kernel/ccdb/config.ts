// The ccdb's config: the common component keys plus the cluster's directory, address and
// the databases the cloud controllers use, validated once at start with every problem named.
import { z } from 'zod';
import { componentConfig } from '../component/mod.ts';

/** The cluster's superuser: no configured database may use it as its owner. */
export const SUPERUSER = 'postgres';

/** PostgreSQL keeps 63 bytes of an identifier (NAMEDATALEN - 1) and silently cuts the rest. */
const MAX_IDENT_BYTES = 63;

const identifier = z
  .string()
  .min(1)
  .refine((s) => Buffer.byteLength(s) <= MAX_IDENT_BYTES, `at most ${MAX_IDENT_BYTES} bytes (PostgreSQL would cut it)`)
  .refine((s) => !s.includes('\0'), 'must not contain NUL');

export const databaseEntry = z
  .object({
    /** The database, owned by `user`. */
    name: identifier,
    /** A LOGIN role; created, or its password set anew, at every start. */
    user: identifier.refine((u) => u !== SUPERUSER, `${SUPERUSER} is the cluster's superuser; name another role`),
    password: z.string().min(1).refine((s) => !s.includes('\0'), 'must not contain NUL'),
  })
  .strict();

export type DatabaseEntry = z.output<typeof databaseEntry>;

/** A server setting (`-c name=value`): a GUC name and a plain value. */
const settingName = z.string().regex(/^[a-z_][a-z0-9_.]*$/, 'a setting name is lower-case letters, digits, "_" and "."');

export const ccdbConfig = componentConfig({
  /** The cluster's home, on the persistent disk: data/, the superuser's secret, the socket. */
  dir: z.string().regex(/^\//, 'expected an absolute path'),
  /** The address PostgreSQL listens on (listen_addresses). */
  host: z.string().min(1).default('0.0.0.0'),
  port: z.number().int().min(1).max(65535).default(5432),
  postgres: z
    .object({
      /** Where initdb and postgres are (Debian's postgresql 15). */
      bin_dir: z.string().regex(/^\//, 'expected an absolute path').default('/usr/lib/postgresql/15/bin'),
      /** The OS user the cluster runs as when the component is root (PostgreSQL refuses root). */
      run_as: z.string().min(1).refine((u) => u !== 'root', 'must not be root (PostgreSQL refuses it); name an unprivileged user').default('postgres'),
      /** How long a starting server may take to accept connections (crash recovery included). */
      start_timeout_s: z.number().positive().default(60),
      /** Further server settings, passed as `-c name=value` (shared_buffers, max_connections, …). */
      settings: z.record(settingName, z.union([z.string(), z.number(), z.boolean()])).default({}),
    })
    .strict()
    .default({}),
  /** How often the component checks that the server accepts connections (and reads /varz's numbers). */
  probe_interval_s: z.number().positive().default(2),
  databases: z.array(databaseEntry).min(1, 'expected at least one database'),
}).superRefine((c, ctx) => {
  const names = new Map<string, number>();
  const passwords = new Map<string, string>();
  c.databases.forEach((d, i) => {
    if (names.has(d.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['databases', i, 'name'], message: `${d.name} is also databases[${names.get(d.name)}]` });
    names.set(d.name, i);
    const other = passwords.get(d.user);
    if (other !== undefined && other !== d.password) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['databases', i, 'password'], message: `role ${d.user} is given another password by an earlier entry; a role has one password` });
    }
    passwords.set(d.user, d.password);
  });
  for (const key of ['listen_addresses', 'port', 'unix_socket_directories', 'hba_file', 'data_directory']) {
    if (key in c.postgres.settings) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['postgres', 'settings', key], message: 'set by the component itself (host, port, dir)' });
  }
});

export type CcdbConfig = z.output<typeof ccdbConfig>;

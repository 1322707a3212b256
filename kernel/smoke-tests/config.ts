// The smoke-tests errand's config (rendered by kernel/jobs/smoke-tests from its links): where
// the platform's parts are and the admin's credentials.
import { z } from 'zod';

const hostPort = z.string().regex(/^[^\s:/]+:\d{1,5}$/, 'HOST:PORT');

export const smokeTestConfig = z
  .object({
    nats: z.object({ servers: z.array(z.string().url()).min(1), user: z.string().optional(), password: z.string().optional() }).strict(),
    cloud_controller: z.object({ url: z.string().url(), admin: z.object({ user: z.string().min(1), password: z.string().min(1) }).strict() }).strict(),
    /** Each router's proxy (HOST:PORT) and status port. */
    routers: z.array(z.object({ proxy: hostPort, status_port: z.number().int().min(1).max(65535) }).strict()).min(1),
    /** How many DEAs must advertise themselves. */
    min_deas: z.number().int().nonnegative().default(1),
    /** The bound on each check, in seconds. */
    timeout_s: z.number().positive().max(600).default(20),
  })
  .strict();
export type SmokeTestConfig = z.output<typeof smokeTestConfig>;

// A service gateway's config: the common component keys plus the broker's own — where it
// listens, its Basic credentials, and the catalog it serves (the service and its plans) —
// validated once at start into one typed, defaulted object.
import { z } from 'zod';
import { componentConfig } from '../../component/mod.ts';

const token = z.string().regex(/^[A-Za-z0-9_-]+$/, 'expected letters, digits, - or _ (it is a NATS subject token)');
const osbId = z.string().min(1).max(255);

const plan = z
  .object({
    id: osbId,
    /** The node's plan of this name makes the instance (`default`). */
    name: token,
    description: z.string().min(1),
    free: z.boolean().default(true),
    /** Provisioned in the background: OSB clients must send accepts_incomplete=true and poll last_operation. */
    async: z.boolean().default(false),
    /** Shown in the catalog's plan metadata (e.g. memory_mb, max_clients, as the nodes enforce them). */
    limits: z.record(z.union([z.number(), z.string()])).default({}),
  })
  .strict();
export type GatewayPlan = z.output<typeof plan>;

export const gatewayConfig = componentConfig({
  /** The service's label: the gateway talks to the nodes on `services.<label>.*`. */
  label: token.refine((l) => l !== 'gateway', '"gateway" is reserved (services.gateway.announce)'),
  /** The broker's name, announced on services.gateway.announce; the label when absent. */
  name: z.string().min(1).optional(),
  /** Where the gateway keeps `gateway.json` (which node holds each instance, async operations). */
  base_dir: z.string().min(1),
  broker: z
    .object({
      host: z.string().default('0.0.0.0'),
      port: z.number().int().min(0).max(65535).default(0),
      user: z.string().min(1),
      password: z.string().min(1),
      /** The URL announced to controllers; http://<local_ip>:<port> when absent. */
      url: z.string().url().optional(),
    })
    .strict(),
  announce_interval_s: z.number().positive().default(10),
  /** A node that does not answer a request within this is reported as failing the request. */
  node_timeout_s: z.number().positive().default(30),
  /** How long `find` waits for the node holding an instance this gateway has not seen. */
  find_window_ms: z.number().int().min(10).max(10_000).default(500),
  service: z
    .object({
      id: osbId,
      /** The catalog name; the label when absent. */
      name: z.string().min(1).optional(),
      description: z.string().min(1),
      bindable: z.boolean().default(true),
      /** Instances may change plan (OSB PATCH): where the nodes apply a plan change (all four backends do). */
      plan_updateable: z.boolean().default(false),
      tags: z.array(z.string()).default([]),
      metadata: z.record(z.unknown()).default({}),
    })
    .strict(),
  plans: z.array(plan).min(1, 'expected at least one plan'),
}).superRefine((c, ctx) => {
  const seen = { id: new Set<string>(), name: new Set<string>() };
  c.plans.forEach((p, i) => {
    for (const key of ['id', 'name'] as const) {
      if (seen[key].has(p[key])) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['plans', i, key], message: `duplicate plan ${key} "${p[key]}"` });
      seen[key].add(p[key]);
    }
  });
});

export type GatewayConfig = z.output<typeof gatewayConfig>;

/** The OSB catalog the gateway serves (GET /v2/catalog). */
export function catalogOf(c: GatewayConfig): Record<string, unknown> {
  return {
    services: [
      {
        id: c.service.id,
        name: c.service.name ?? c.label,
        description: c.service.description,
        bindable: c.service.bindable,
        plan_updateable: c.service.plan_updateable,
        instances_retrievable: false,
        bindings_retrievable: false,
        tags: c.service.tags,
        metadata: c.service.metadata,
        plans: c.plans.map((p) => ({
          id: p.id,
          name: p.name,
          description: p.description,
          free: p.free,
          bindable: c.service.bindable,
          metadata: { limits: p.limits, asynchronous_provisioning: p.async },
        })),
      },
    ],
  };
}

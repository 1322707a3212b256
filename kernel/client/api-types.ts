// The cloud controller's answers as the CLI reads them (kernel/cloud-controller/API.md):
// one zod schema per resource, holding the fields the CLI uses and letting the rest pass.
// Answers are parsed once, where they arrive; the commands work on these types.
import { z } from 'zod';

const rel = z.object({ data: z.object({ guid: z.string() }).nullable() });
const link = z.object({ href: z.string() });

export const info = z.object({
  name: z.string(),
  build: z.string().optional(),
  custom: z.object({ system_domain: z.string(), apps_domain: z.string(), default_stack: z.string().optional(), max_upload_mb: z.number().optional() }).passthrough(),
}).passthrough();
export type Info = z.infer<typeof info>;

export const token = z.object({ access_token: z.string(), refresh_token: z.string(), expires_in: z.number(), token_type: z.string().optional() }).passthrough();
export type Token = z.infer<typeof token>;

export const errorEnvelope = z.object({ errors: z.array(z.object({ code: z.number().optional(), title: z.string(), detail: z.string() }).passthrough()).min(1) }).passthrough();

export const user = z.object({ guid: z.string(), username: z.string(), admin: z.boolean().optional() }).passthrough();
export type User = z.infer<typeof user>;

export const organization = z.object({ guid: z.string(), name: z.string() }).passthrough();
export type Organization = z.infer<typeof organization>;

export const space = z.object({ guid: z.string(), name: z.string(), relationships: z.object({ organization: rel }).passthrough() }).passthrough();
export type Space = z.infer<typeof space>;

export const role = z
  .object({
    guid: z.string(),
    type: z.string(),
    relationships: z.object({ user: rel, organization: rel.optional(), space: rel.optional() }).passthrough(),
  })
  .passthrough();
export type Role = z.infer<typeof role>;
/** A page of roles with `include=user`: the users come in `included.users`. */
export const rolesPage = z.object({
  pagination: z.object({ next: link.nullable() }).passthrough(),
  resources: z.array(role),
  included: z.object({ users: z.array(user) }).passthrough().optional(),
});

export const app = z
  .object({
    guid: z.string(),
    name: z.string(),
    state: z.enum(['STARTED', 'STOPPED']),
    created_at: z.string(),
    updated_at: z.string(),
    lifecycle: z.object({ type: z.string(), data: z.object({ buildpacks: z.array(z.string()).optional(), stack: z.string().nullable().optional() }).passthrough() }).passthrough(),
    relationships: z.object({ space: rel }).passthrough(),
  })
  .passthrough();
export type App = z.infer<typeof app>;

export const process = z
  .object({
    guid: z.string(),
    type: z.string(),
    instances: z.number(),
    memory_in_mb: z.number(),
    disk_in_mb: z.number(),
    command: z.string().nullable(),
    health_check: z.object({ type: z.string(), data: z.object({ timeout: z.number().nullable().optional(), endpoint: z.string().nullable().optional() }).passthrough() }).passthrough(),
    relationships: z.object({ app: rel }).passthrough().optional(),
  })
  .passthrough();
export type Process = z.infer<typeof process>;

export const instanceStats = z
  .object({
    index: z.number(),
    state: z.string(),
    uptime: z.number().optional(),
    host: z.string().nullable().optional(),
    port: z.number().nullable().optional(),
    mem_quota: z.number().nullable().optional(),
    disk_quota: z.number().nullable().optional(),
    usage: z.object({ cpu: z.number().optional(), mem: z.number().optional(), disk: z.number().optional(), time: z.string().optional() }).passthrough().optional(),
    details: z.string().nullable().optional(),
    version: z.string().optional(),
    instance_id: z.string().optional(),
  })
  .passthrough();
export type InstanceStats = z.infer<typeof instanceStats>;
export const statsList = z.object({ resources: z.array(instanceStats) }).passthrough();

export const pkg = z.object({ guid: z.string(), state: z.string(), data: z.object({ error: z.string().nullable().optional() }).passthrough().optional() }).passthrough();
export type Package = z.infer<typeof pkg>;

export const build = z
  .object({
    guid: z.string(),
    state: z.enum(['STAGING', 'STAGED', 'FAILED']),
    error: z.string().nullable(),
    droplet: z.object({ guid: z.string() }).passthrough().nullable(),
    package: z.object({ guid: z.string() }).passthrough(),
  })
  .passthrough();
export type Build = z.infer<typeof build>;

export const droplet = z
  .object({
    guid: z.string(),
    state: z.string(),
    buildpacks: z.array(z.object({ name: z.string().nullable().optional() }).passthrough()).optional(),
    process_types: z.record(z.string()).optional(),
    stack: z.string().nullable().optional(),
    created_at: z.string(),
    links: z.object({ package: link.optional() }).passthrough(),
  })
  .passthrough();
export type Droplet = z.infer<typeof droplet>;

/** `relationships.organization` names the org of a private domain; null for a shared one. */
export const domain = z
  .object({ guid: z.string(), name: z.string(), internal: z.boolean().optional(), relationships: z.object({ organization: rel }).passthrough().optional() })
  .passthrough();
export type Domain = z.infer<typeof domain>;

export const destination = z.object({ guid: z.string(), app: z.object({ guid: z.string() }).passthrough() }).passthrough();
export const route = z
  .object({
    guid: z.string(),
    host: z.string(),
    path: z.string(),
    url: z.string(),
    destinations: z.array(destination),
    relationships: z.object({ domain: rel, space: rel }).passthrough(),
  })
  .passthrough();
export type Route = z.infer<typeof route>;

export const envVars = z.object({ var: z.record(z.string()) }).passthrough();

export const appEnv = z
  .object({
    environment_variables: z.record(z.string()),
    staging_env_json: z.record(z.unknown()).optional(),
    running_env_json: z.record(z.unknown()).optional(),
    system_env_json: z.record(z.unknown()).optional(),
    application_env_json: z.record(z.unknown()).optional(),
  })
  .passthrough();
export type AppEnv = z.infer<typeof appEnv>;

export const logLine = z
  .object({
    app_id: z.string(),
    source: z.string(),
    index: z.number().optional(),
    stream: z.enum(['out', 'err']),
    timestamp: z.number(),
    line: z.string(),
  })
  .passthrough();
export type LogLine = z.infer<typeof logLine>;
export const recentLogs = z.object({ resources: z.array(logLine) }).passthrough();

const auditParty = z.object({ guid: z.string(), type: z.string(), name: z.string() }).passthrough();
export const auditEvent = z
  .object({
    guid: z.string(),
    type: z.string(),
    created_at: z.string(),
    actor: auditParty.optional(),
    target: auditParty.optional(),
    data: z
      .object({ index: z.number().optional(), version: z.string().optional(), reason: z.string().optional(), exit_status: z.number().nullable().optional(), exit_description: z.string().nullable().optional() })
      .passthrough(),
  })
  .passthrough();
export type AuditEvent = z.infer<typeof auditEvent>;

const limit = z.number().nullable().optional();
const quotaFields = {
  guid: z.string(),
  name: z.string(),
  apps: z.object({ total_memory_in_mb: limit, total_instances: limit }).passthrough(),
  routes: z.object({ total_routes: limit }).passthrough(),
  services: z.object({ total_service_instances: limit }).passthrough(),
};
const toMany = z.object({ data: z.array(z.object({ guid: z.string() }).passthrough()) }).passthrough();
export const organizationQuota = z.object({ ...quotaFields, relationships: z.object({ organizations: toMany }).passthrough() }).passthrough();
export type OrganizationQuota = z.infer<typeof organizationQuota>;
export const spaceQuota = z.object({ ...quotaFields, relationships: z.object({ organization: rel, spaces: toMany }).passthrough() }).passthrough();
export type SpaceQuota = z.infer<typeof spaceQuota>;
/** The limits a quota is created with; undefined leaves one unlimited. */
export interface QuotaLimits {
  total_memory_in_mb?: number;
  total_instances?: number;
  total_routes?: number;
  total_service_instances?: number;
}

export const resourceMatch = z.object({
  resources: z.array(z.object({ checksum: z.object({ value: z.string() }).passthrough(), size_in_bytes: z.number(), path: z.string().optional(), mode: z.string().optional() }).passthrough()),
});

export function list<T extends z.ZodTypeAny>(item: T) {
  return z.object({
    pagination: z.object({ total_results: z.number(), total_pages: z.number(), next: link.nullable() }).passthrough(),
    resources: z.array(item),
  });
}

// ---- services ---------------------------------------------------------------------------

const lastOperation = z.object({ type: z.string(), state: z.string(), description: z.string().nullable().optional() }).passthrough();

export const serviceBroker = z.object({ guid: z.string(), name: z.string(), url: z.string(), source: z.string().optional() }).passthrough();
export type ServiceBroker = z.infer<typeof serviceBroker>;

export const serviceOffering = z
  .object({
    guid: z.string(),
    name: z.string(),
    description: z.string(),
    tags: z.array(z.string()).default([]),
    service_broker_name: z.string().nullable().optional(),
    broker_catalog: z.object({ features: z.object({ bindable: z.boolean() }).passthrough() }).passthrough(),
    relationships: z.object({ service_broker: rel }).passthrough(),
  })
  .passthrough();
export type ServiceOffering = z.infer<typeof serviceOffering>;

export const servicePlan = z
  .object({ guid: z.string(), name: z.string(), description: z.string(), free: z.boolean(), relationships: z.object({ service_offering: rel }).passthrough() })
  .passthrough();
export type ServicePlan = z.infer<typeof servicePlan>;

export const serviceInstance = z
  .object({
    guid: z.string(),
    name: z.string(),
    type: z.enum(['managed', 'user-provided']),
    tags: z.array(z.string()).default([]),
    last_operation: lastOperation,
    dashboard_url: z.string().nullable().optional(),
    relationships: z.object({ space: rel, service_plan: rel.optional() }).passthrough(),
  })
  .passthrough();
export type ServiceInstance = z.infer<typeof serviceInstance>;

export const serviceBinding = z
  .object({
    guid: z.string(),
    type: z.enum(['app', 'key']),
    name: z.string().nullable(),
    last_operation: lastOperation.optional(),
    relationships: z.object({ service_instance: rel, app: rel.optional() }).passthrough(),
  })
  .passthrough();
export type ServiceBinding = z.infer<typeof serviceBinding>;

export const bindingDetails = z.object({ credentials: z.record(z.unknown()) }).passthrough();

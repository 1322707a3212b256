// Quotas, as pure functions: what a space and an org use (CF counts only STARTED apps toward
// memory and instances: memory × instances of each process; every route and every service
// instance, managed or user-provided, counts), and whether
// a proposed change fits the space's quota and its org's. A change is checked only on what
// it adds: scaling down or stopping is always allowed, even past a limit lowered meanwhile.
// The refusal names the quota and both numbers, and carries Cloud Foundry's error name.
import type { QuotaLimits } from './db/mod.ts';

export interface Usage {
  memory_in_mb: number;
  instances: number;
  routes: number;
  /** Service instances; absent where a change or a count does not concern them. */
  service_instances?: number;
}

export const NO_USAGE: Usage = { memory_in_mb: 0, instances: 0, routes: 0 };

/** A process as usage counts it. */
export interface CountedProcess {
  started: boolean;
  instances: number;
  memory_in_mb: number;
}

export function usageOf(processes: readonly CountedProcess[], routes: number, serviceInstances?: number): Usage {
  const started = processes.filter((p) => p.started);
  return {
    memory_in_mb: started.reduce((sum, p) => sum + p.memory_in_mb * p.instances, 0),
    instances: started.reduce((sum, p) => sum + p.instances, 0),
    routes,
    ...(serviceInstances !== undefined ? { service_instances: serviceInstances } : {}),
  };
}

/** What a process contributes (nothing when its app is not started). */
export function contribution(p: CountedProcess): Usage {
  return usageOf([p], 0);
}

/** `after - before`: what a change adds (negative where it frees). */
export function delta(before: Usage, after: Usage): Usage {
  return { memory_in_mb: after.memory_in_mb - before.memory_in_mb, instances: after.instances - before.instances, routes: after.routes - before.routes };
}

export type QuotaScope = 'space' | 'organization';

/** A quota as it applies at one scope, and what that scope uses now. */
export interface AppliedQuota {
  scope: QuotaScope;
  name: string;
  limits: QuotaLimits;
  usage: Usage;
}

export interface QuotaRefusal {
  /** Cloud Foundry's name for the error (`SpaceQuotaMemoryLimitExceeded`). */
  cfName: string;
  /** `memory quota exceeded: space quota 'small' allows 1024 MB, the space would use 1536 MB` */
  message: string;
}

type Resource = keyof Usage;

/** What a change adds of one resource (0 when it does not name it). */
export const adds = (u: Usage, r: Resource): number => u[r] ?? 0;

const RESOURCES: ReadonlyArray<{ resource: Resource; limit: keyof QuotaLimits; label: string; unit: (n: number) => string; cf: Record<QuotaScope, string> }> = [
  { resource: 'memory_in_mb', limit: 'total_memory_in_mb', label: 'memory', unit: (n) => `${n} MB`, cf: { space: 'SpaceQuotaMemoryLimitExceeded', organization: 'AppMemoryQuotaExceeded' } },
  {
    resource: 'instances',
    limit: 'total_instances',
    label: 'instance',
    unit: (n) => `${n} instance${n === 1 ? '' : 's'}`,
    cf: { space: 'SpaceQuotaInstanceLimitExceeded', organization: 'QuotaInstanceLimitExceeded' },
  },
  { resource: 'routes', limit: 'total_routes', label: 'route', unit: (n) => `${n} route${n === 1 ? '' : 's'}`, cf: { space: 'SpaceQuotaTotalRoutesExceeded', organization: 'OrgQuotaTotalRoutesExceeded' } },
  {
    resource: 'service_instances',
    limit: 'total_service_instances',
    label: 'service instance',
    unit: (n) => `${n} service instance${n === 1 ? '' : 's'}`,
    cf: { space: 'ServiceInstanceSpaceQuotaExceeded', organization: 'ServiceInstanceQuotaExceeded' },
  },
];

/**
 * Whether adding `change` to each scope's usage keeps it within its quota: undefined when it
 * does, else the first refusal — the space's quota before the org's, memory before instances
 * before routes before service instances. A resource the change does not increase is never refused.
 */
export function checkQuotas(quotas: readonly AppliedQuota[], change: Usage): QuotaRefusal | undefined {
  const ordered = [...quotas].sort((a, b) => (a.scope === b.scope ? 0 : a.scope === 'space' ? -1 : 1));
  for (const q of ordered) {
    for (const r of RESOURCES) {
      const limit = q.limits[r.limit];
      if (limit === null || adds(change, r.resource) <= 0) continue;
      const would = adds(q.usage, r.resource) + adds(change, r.resource);
      if (would > limit) {
        return {
          cfName: r.cf[q.scope],
          message: `${r.label} quota exceeded: ${q.scope} quota '${q.name}' allows ${r.unit(limit)}, the ${q.scope} would use ${r.unit(would)}`,
        };
      }
    }
  }
  return undefined;
}

// Records as the v3 API shows them: Cloud Foundry's resource shapes, links absolute to the
// URL the client reached the API at. Pure.
import type {
  AppRecord,
  AuditEventRecord,
  BuildRecord,
  DomainRecord,
  DropletRecord,
  OrganizationQuotaRecord,
  OrganizationRecord,
  PackageRecord,
  ProcessRecord,
  RoleRecord,
  RouteMappingRecord,
  RouteRecord,
  SpaceQuotaRecord,
  SpaceRecord,
  UserRecord,
} from './db/mod.ts';

/** CF prints seconds: `2024-05-01T10:00:00Z`. */
export function time(iso: string): string {
  return iso.replace(/\.\d{3}Z$/, 'Z');
}

const href = (base: string, path: string): { href: string } => ({ href: `${base}${path}` });
const rel = (guid: string | null) => ({ data: guid ? { guid } : null });
const meta = (labels: Record<string, string> = {}, annotations: Record<string, string> = {}) => ({ labels, annotations });

export function presentUser(u: UserRecord, base: string) {
  return {
    guid: u.guid,
    username: u.username,
    presentation_name: u.username,
    origin: 'ingot',
    admin: u.admin,
    created_at: time(u.created_at),
    updated_at: time(u.updated_at),
    metadata: meta(),
    links: { self: href(base, `/v3/users/${u.guid}`) },
  };
}

export function presentOrganization(o: OrganizationRecord, base: string) {
  return {
    guid: o.guid,
    name: o.name,
    suspended: false,
    created_at: time(o.created_at),
    updated_at: time(o.updated_at),
    relationships: { quota: rel(o.quota_guid ?? null) },
    metadata: meta(),
    links: { self: href(base, `/v3/organizations/${o.guid}`), spaces: href(base, `/v3/spaces?organization_guids=${o.guid}`) },
  };
}

export function presentSpace(s: SpaceRecord, base: string) {
  return {
    guid: s.guid,
    name: s.name,
    created_at: time(s.created_at),
    updated_at: time(s.updated_at),
    relationships: { organization: rel(s.organization_guid), quota: rel(s.quota_guid ?? null) },
    metadata: meta(),
    links: { self: href(base, `/v3/spaces/${s.guid}`), organization: href(base, `/v3/organizations/${s.organization_guid}`) },
  };
}

export function presentRole(r: RoleRecord, base: string) {
  return {
    guid: r.guid,
    type: r.type,
    created_at: time(r.created_at),
    updated_at: time(r.updated_at),
    relationships: { user: rel(r.user_guid), organization: rel(r.organization_guid), space: rel(r.space_guid) },
    links: {
      self: href(base, `/v3/roles/${r.guid}`),
      user: href(base, `/v3/users/${r.user_guid}`),
      ...(r.space_guid ? { space: href(base, `/v3/spaces/${r.space_guid}`) } : { organization: href(base, `/v3/organizations/${r.organization_guid}`) }),
    },
  };
}

export function presentApp(a: AppRecord, base: string) {
  const self = `/v3/apps/${a.guid}`;
  return {
    guid: a.guid,
    name: a.name,
    state: a.state,
    created_at: time(a.created_at),
    updated_at: time(a.updated_at),
    lifecycle: { type: 'buildpack', data: { buildpacks: a.buildpacks, stack: a.stack } },
    relationships: { space: rel(a.space_guid) },
    metadata: meta(a.labels, a.annotations),
    links: {
      self: href(base, self),
      space: href(base, `/v3/spaces/${a.space_guid}`),
      processes: href(base, `${self}/processes`),
      packages: href(base, `${self}/packages`),
      environment_variables: href(base, `${self}/environment_variables`),
      current_droplet: href(base, `${self}/droplets/current`),
      droplets: href(base, `${self}/droplets`),
      routes: href(base, `${self}/routes`),
      builds: href(base, `${self}/builds`),
      start: { ...href(base, `${self}/actions/start`), method: 'POST' },
      stop: { ...href(base, `${self}/actions/stop`), method: 'POST' },
      restart: { ...href(base, `${self}/actions/restart`), method: 'POST' },
      logs_recent: href(base, `${self}/logs/recent`),
      logs_stream: href(base, `${self}/logs/stream`),
    },
  };
}

export function presentProcess(p: ProcessRecord, base: string) {
  const self = `/v3/processes/${p.guid}`;
  return {
    guid: p.guid,
    type: p.type,
    command: p.command,
    instances: p.instances,
    memory_in_mb: p.memory_in_mb,
    disk_in_mb: p.disk_in_mb,
    health_check: {
      type: p.health_check_type,
      data: { timeout: p.health_check_timeout, invocation_timeout: null, endpoint: p.health_check_endpoint },
    },
    relationships: { app: rel(p.app_guid), revision: rel(null) },
    metadata: meta(),
    created_at: time(p.created_at),
    updated_at: time(p.updated_at),
    links: {
      self: href(base, self),
      scale: { ...href(base, `${self}/actions/scale`), method: 'POST' },
      app: href(base, `/v3/apps/${p.app_guid}`),
      stats: href(base, `${self}/stats`),
    },
  };
}

export function presentPackage(p: PackageRecord, base: string) {
  const self = `/v3/packages/${p.guid}`;
  return {
    guid: p.guid,
    type: p.type,
    data: {
      checksum: p.sha256 ? { type: 'sha256', value: p.sha256 } : { type: 'sha256', value: null },
      error: p.error,
      size_in_bytes: p.size,
    },
    state: p.state,
    created_at: time(p.created_at),
    updated_at: time(p.updated_at),
    relationships: { app: rel(p.app_guid) },
    metadata: meta(),
    links: {
      self: href(base, self),
      upload: { ...href(base, `${self}/upload`), method: 'POST' },
      download: { ...href(base, `${self}/download`), method: 'GET' },
      app: href(base, `/v3/apps/${p.app_guid}`),
    },
  };
}

export function presentBuild(b: BuildRecord, base: string) {
  return {
    guid: b.guid,
    state: b.state,
    error: b.error,
    staging_memory_in_mb: b.staging_memory_in_mb,
    staging_disk_in_mb: b.staging_disk_in_mb,
    lifecycle: { type: 'buildpack', data: { buildpacks: b.buildpacks, stack: b.stack } },
    package: { guid: b.package_guid },
    droplet: b.state === 'STAGED' ? { guid: b.droplet_guid, href: `${base}/v3/droplets/${b.droplet_guid}` } : null,
    created_by: { guid: b.created_by },
    relationships: { app: rel(b.app_guid) },
    metadata: meta(),
    created_at: time(b.created_at),
    updated_at: time(b.updated_at),
    links: {
      self: href(base, `/v3/builds/${b.guid}`),
      app: href(base, `/v3/apps/${b.app_guid}`),
      ...(b.state === 'STAGED' ? { droplet: href(base, `/v3/droplets/${b.droplet_guid}`) } : {}),
    },
  };
}

export function presentDroplet(d: DropletRecord, base: string) {
  return {
    guid: d.guid,
    state: d.state,
    error: d.error,
    lifecycle: { type: 'buildpack', data: {} },
    execution_metadata: '',
    process_types: d.process_types,
    checksum: d.sha256 ? { type: 'sha256', value: d.sha256 } : null,
    size_in_bytes: d.size,
    buildpacks: d.buildpack ? [{ name: d.buildpack, detect_output: d.buildpack, buildpack_name: d.buildpack, version: null }] : [],
    stack: d.stack,
    image: null,
    relationships: { app: rel(d.app_guid) },
    metadata: meta(),
    created_at: time(d.created_at),
    updated_at: time(d.updated_at),
    links: {
      self: href(base, `/v3/droplets/${d.guid}`),
      package: href(base, `/v3/packages/${d.package_guid}`),
      app: href(base, `/v3/apps/${d.app_guid}`),
      assign_current_droplet: { ...href(base, `/v3/apps/${d.app_guid}/relationships/current_droplet`), method: 'PATCH' },
    },
  };
}

export function presentDomain(d: DomainRecord, base: string) {
  return {
    guid: d.guid,
    name: d.name,
    internal: d.internal,
    router_group: null,
    supported_protocols: ['http'],
    created_at: time(d.created_at),
    updated_at: time(d.updated_at),
    relationships: { organization: rel(d.organization_guid), shared_organizations: { data: [] } },
    metadata: meta(),
    links: { self: href(base, `/v3/domains/${d.guid}`), route_reservations: href(base, `/v3/domains/${d.guid}/route_reservations`) },
  };
}

export function presentDestination(m: RouteMappingRecord) {
  return { guid: m.guid, app: { guid: m.app_guid, process: { type: m.process_type } }, weight: null, port: 8080, protocol: 'http1' };
}

export function presentRoute(r: RouteRecord, domain: DomainRecord | undefined, mappings: RouteMappingRecord[], base: string) {
  const domainName = domain?.name ?? '';
  return {
    guid: r.guid,
    protocol: 'http',
    host: r.host,
    path: r.path,
    port: null,
    url: `${r.host ? `${r.host}.` : ''}${domainName}${r.path}`,
    destinations: mappings.map(presentDestination),
    created_at: time(r.created_at),
    updated_at: time(r.updated_at),
    relationships: { space: rel(r.space_guid), domain: rel(r.domain_guid) },
    metadata: meta(),
    links: {
      self: href(base, `/v3/routes/${r.guid}`),
      space: href(base, `/v3/spaces/${r.space_guid}`),
      domain: href(base, `/v3/domains/${r.domain_guid}`),
      destinations: href(base, `/v3/routes/${r.guid}/destinations`),
    },
  };
}

/** CF's audit_event: `space` and `organization` are `{guid}` or null. */
export function presentAuditEvent(e: AuditEventRecord, base: string) {
  return {
    guid: e.guid,
    created_at: time(e.created_at),
    updated_at: time(e.updated_at),
    type: e.type,
    actor: { guid: e.actor_guid, type: e.actor_type, name: e.actor_name },
    target: { guid: e.target_guid, type: e.target_type, name: e.target_name },
    data: e.data,
    space: e.space_guid ? { guid: e.space_guid } : null,
    organization: e.organization_guid ? { guid: e.organization_guid } : null,
    links: { self: href(base, `/v3/audit_events/${e.guid}`) },
  };
}

/** What both kinds of quota show: name, times and the limits, grouped as CF groups them. */
const quotaFields = (q: OrganizationQuotaRecord) => ({
  guid: q.guid,
  created_at: time(q.created_at),
  updated_at: time(q.updated_at),
  name: q.name,
  apps: { total_memory_in_mb: q.total_memory_in_mb, total_instances: q.total_instances },
  services: { total_service_instances: q.total_service_instances },
  routes: { total_routes: q.total_routes },
});

/** CF's organization_quota, with the limits Ingot has (null: unlimited) and the visible orgs it applies to. */
export function presentOrganizationQuota(q: OrganizationQuotaRecord, orgGuids: string[], base: string) {
  return {
    ...quotaFields(q),
    relationships: { organizations: { data: orgGuids.map((guid) => ({ guid })) } },
    links: { self: href(base, `/v3/organization_quotas/${q.guid}`) },
  };
}

/** CF's space_quota: its org, and the visible spaces it applies to. */
export function presentSpaceQuota(q: SpaceQuotaRecord, spaceGuids: string[], base: string) {
  return {
    ...quotaFields(q),
    relationships: { organization: rel(q.organization_guid), spaces: { data: spaceGuids.map((guid) => ({ guid })) } },
    links: { self: href(base, `/v3/space_quotas/${q.guid}`), organization: href(base, `/v3/organizations/${q.organization_guid}`) },
  };
}

// The controller's state as plain records, one per table row; field names are the columns'.
// JSON columns and booleans appear here already decoded.
import type { RoleType } from '../access.ts';

export interface Timestamps {
  created_at: string;
  updated_at: string;
}

export interface UserRecord extends Timestamps {
  guid: string;
  username: string;
  password_hash: string;
  admin: boolean;
}

export interface OrganizationRecord extends Timestamps {
  guid: string;
  name: string;
  /** Its organization quota; absent or null: unlimited. */
  quota_guid?: string | null;
}

export interface SpaceRecord extends Timestamps {
  guid: string;
  name: string;
  organization_guid: string;
  /** Its space quota (one of its org's); absent or null: unlimited. */
  quota_guid?: string | null;
}

/** A quota's limits; null is unlimited. */
export interface QuotaLimits {
  total_memory_in_mb: number | null;
  total_instances: number | null;
  total_routes: number | null;
  total_service_instances: number | null;
}

export interface OrganizationQuotaRecord extends Timestamps, QuotaLimits {
  guid: string;
  name: string;
}

/** A space quota belongs to an org and applies to spaces of that org. */
export interface SpaceQuotaRecord extends OrganizationQuotaRecord {
  organization_guid: string;
}

/** A user's role in an org (space_guid null) or in a space (organization_guid null). */
export interface RoleRecord extends Timestamps {
  guid: string;
  type: RoleType;
  user_guid: string;
  organization_guid: string | null;
  space_guid: string | null;
}

export type AppState = 'STARTED' | 'STOPPED';

export interface AppRecord extends Timestamps {
  guid: string;
  name: string;
  space_guid: string;
  state: AppState;
  /** A new uuid at every start: instances of another version are stale. */
  version: string;
  /** The droplet instances run (CF's "current droplet"). */
  droplet_guid: string | null;
  environment_variables: Record<string, string>;
  buildpacks: string[];
  stack: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export type HealthCheckType = 'port' | 'http' | 'process';

export interface ProcessRecord extends Timestamps {
  guid: string;
  app_guid: string;
  type: string;
  instances: number;
  memory_in_mb: number;
  disk_in_mb: number;
  command: string | null;
  health_check_type: HealthCheckType;
  health_check_endpoint: string | null;
  health_check_timeout: number | null;
}

export type PackageState = 'AWAITING_UPLOAD' | 'PROCESSING_UPLOAD' | 'READY' | 'FAILED';

export interface PackageRecord extends Timestamps {
  guid: string;
  app_guid: string;
  type: 'bits';
  state: PackageState;
  sha256: string | null;
  size: number | null;
  error: string | null;
  /** While PROCESSING_UPLOAD: the `index` of the controller receiving the bits (upload-claims.ts). */
  upload_controller_index: number | null;
  /** While PROCESSING_UPLOAD: the token of that upload; only its holder moves the package on. */
  upload_claim: string | null;
}

export type BuildState = 'STAGING' | 'STAGED' | 'FAILED';

export interface BuildRecord extends Timestamps {
  guid: string;
  app_guid: string;
  package_guid: string;
  droplet_guid: string;
  state: BuildState;
  error: string | null;
  buildpacks: string[];
  stack: string;
  staging_memory_in_mb: number;
  staging_disk_in_mb: number;
  created_by: string;
  /** The controller (its config `index`) waiting for the stager's reply. */
  controller_index: number;
}

export type DropletState = 'STAGING' | 'STAGED' | 'FAILED';

export interface DropletRecord extends Timestamps {
  guid: string;
  app_guid: string;
  package_guid: string;
  build_guid: string;
  state: DropletState;
  error: string | null;
  sha256: string | null;
  size: number | null;
  buildpack: string | null;
  process_types: Record<string, string>;
  stack: string;
}

export interface DomainRecord extends Timestamps {
  guid: string;
  name: string;
  internal: boolean;
  /** The org a private domain belongs to; null for a shared domain. */
  organization_guid: string | null;
}

export interface RouteRecord extends Timestamps {
  guid: string;
  host: string;
  path: string;
  domain_guid: string;
  space_guid: string;
}

export interface RouteMappingRecord extends Timestamps {
  guid: string;
  route_guid: string;
  app_guid: string;
  process_type: string;
}

export type ActorType = 'user' | 'system' | 'health_manager' | 'dea';

/** Who did what (type) to which resource (target), when; space and org where it happened. */
export interface AuditEventRecord extends Timestamps {
  guid: string;
  type: string;
  actor_guid: string;
  actor_type: ActorType;
  actor_name: string;
  target_guid: string;
  target_type: string;
  target_name: string;
  space_guid: string | null;
  organization_guid: string | null;
  data: Record<string, unknown>;
}

/** An OSB broker: registered through the API (`api`) or announced by a gateway (`announce`). */
export interface ServiceBrokerRecord extends Timestamps {
  guid: string;
  name: string;
  url: string;
  /** Its Basic credential: never shown, never logged. */
  username: string;
  password: string;
  source: 'api' | 'announce';
  /** The service label a gateway announced. */
  label: string | null;
  /** When the catalog was last fetched successfully. */
  catalog_fetched_at: string | null;
  /** Why the last fetch failed (null after a success). */
  catalog_error: string | null;
}

export interface ServiceOfferingRecord extends Timestamps {
  guid: string;
  broker_guid: string;
  /** The id in the broker's catalog. */
  broker_id: string;
  name: string;
  description: string;
  bindable: boolean;
  plan_updateable: boolean;
  tags: string[];
  requires: string[];
  metadata: Record<string, unknown>;
}

export interface ServicePlanRecord extends Timestamps {
  guid: string;
  offering_guid: string;
  broker_guid: string;
  broker_id: string;
  name: string;
  description: string;
  free: boolean;
  bindable: boolean;
  metadata: Record<string, unknown>;
}

export type ServiceInstanceType = 'managed' | 'user-provided';
export type OperationType = 'create' | 'update' | 'delete';
export type OperationState = 'in progress' | 'succeeded' | 'failed';

export interface ServiceInstanceRecord extends Timestamps {
  guid: string;
  name: string;
  type: ServiceInstanceType;
  space_guid: string;
  /** Null for user-provided instances. */
  plan_guid: string | null;
  tags: string[];
  /** A user-provided instance's credentials, sealed (services/credential-box.ts). */
  credentials: string | null;
  syslog_drain_url: string | null;
  route_service_url: string | null;
  dashboard_url: string | null;
  operation_type: OperationType;
  operation_state: OperationState;
  operation_description: string | null;
  /** The broker's operation id of an asynchronous operation in progress. */
  broker_operation: string | null;
  /** The plan an asynchronous update in progress moves it to (its plan once the update succeeds). */
  pending_plan_guid: string | null;
}

export type ServiceBindingType = 'app' | 'key';

/** A credential binding: to an app (type app) or a service key (type key, named). */
export interface ServiceBindingRecord extends Timestamps {
  guid: string;
  type: ServiceBindingType;
  name: string | null;
  instance_guid: string;
  app_guid: string | null;
  /** The instance's space, kept for scoping lists. */
  space_guid: string;
  /** Sealed (services/credential-box.ts). */
  credentials: string;
  syslog_drain_url: string | null;
  /** create or delete; `in progress` while an asynchronous broker works on it (credentials then `{}`). */
  operation_type: Exclude<OperationType, 'update'>;
  operation_state: OperationState;
  operation_description: string | null;
  /** The broker's operation id of an asynchronous operation in progress. */
  broker_operation: string | null;
}

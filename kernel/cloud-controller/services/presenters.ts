// Service resources as the v3 API shows them (Cloud Foundry's shapes). A broker's credential
// and any binding's credentials never appear here: credentials are shown only by the
// `…/details` and `…/credentials` endpoints. Pure.
import type { ServiceBindingRecord, ServiceBrokerRecord, ServiceInstanceRecord, ServiceOfferingRecord, ServicePlanRecord } from '../db/mod.ts';
import { time } from '../presenters.ts';

const href = (base: string, path: string): { href: string } => ({ href: `${base}${path}` });
const META = { labels: {}, annotations: {} };

export function presentBroker(b: ServiceBrokerRecord, base: string) {
  return {
    guid: b.guid,
    name: b.name,
    url: b.url,
    created_at: time(b.created_at),
    updated_at: time(b.updated_at),
    /** Ingot: how it came (`api` or a gateway's `announce`) and its last catalog fetch. */
    source: b.source,
    catalog: { fetched_at: b.catalog_fetched_at ? time(b.catalog_fetched_at) : null, error: b.catalog_error },
    relationships: {},
    metadata: META,
    links: { self: href(base, `/v3/service_brokers/${b.guid}`), service_offerings: href(base, `/v3/service_offerings?service_broker_guids=${b.guid}`) },
  };
}

export function presentOffering(o: ServiceOfferingRecord, broker: ServiceBrokerRecord | undefined, base: string) {
  return {
    guid: o.guid,
    name: o.name,
    description: o.description,
    available: true,
    tags: o.tags,
    requires: o.requires,
    shareable: false,
    documentation_url: null,
    created_at: time(o.created_at),
    updated_at: time(o.updated_at),
    broker_catalog: {
      id: o.broker_id,
      metadata: o.metadata,
      features: { plan_updateable: o.plan_updateable, bindable: o.bindable, instances_retrievable: false, bindings_retrievable: false, allow_context_updates: false },
    },
    relationships: { service_broker: { data: { guid: o.broker_guid } } },
    /** Ingot: the broker's name, so a marketplace needs no second request. */
    service_broker_name: broker?.name ?? null,
    metadata: META,
    links: {
      self: href(base, `/v3/service_offerings/${o.guid}`),
      service_plans: href(base, `/v3/service_plans?service_offering_guids=${o.guid}`),
      service_broker: href(base, `/v3/service_brokers/${o.broker_guid}`),
    },
  };
}

export function presentPlan(p: ServicePlanRecord, base: string) {
  return {
    guid: p.guid,
    name: p.name,
    description: p.description,
    visibility_type: 'public',
    available: true,
    free: p.free,
    costs: [],
    maintenance_info: {},
    created_at: time(p.created_at),
    updated_at: time(p.updated_at),
    broker_catalog: { id: p.broker_id, metadata: p.metadata, maximum_polling_duration: null, features: { bindable: p.bindable, plan_updateable: false } },
    schemas: { service_instance: { create: { parameters: {} }, update: { parameters: {} } }, service_binding: { create: { parameters: {} } } },
    relationships: { service_offering: { data: { guid: p.offering_guid } } },
    metadata: META,
    links: { self: href(base, `/v3/service_plans/${p.guid}`), service_offering: href(base, `/v3/service_offerings/${p.offering_guid}`) },
  };
}

const lastOperation = (r: { operation_type: string; operation_state: string; operation_description: string | null; created_at: string; updated_at: string }) => ({
  type: r.operation_type,
  state: r.operation_state,
  description: r.operation_description ?? '',
  created_at: time(r.created_at),
  updated_at: time(r.updated_at),
});

export function presentInstance(i: ServiceInstanceRecord, base: string) {
  const self = `/v3/service_instances/${i.guid}`;
  const managed = i.type === 'managed';
  return {
    guid: i.guid,
    name: i.name,
    type: i.type,
    tags: i.tags,
    created_at: time(i.created_at),
    updated_at: time(i.updated_at),
    last_operation: lastOperation(i),
    ...(managed
      ? { dashboard_url: i.dashboard_url, upgrade_available: false, maintenance_info: {} }
      : { syslog_drain_url: i.syslog_drain_url, route_service_url: i.route_service_url }),
    relationships: { space: { data: { guid: i.space_guid } }, ...(managed && i.plan_guid ? { service_plan: { data: { guid: i.plan_guid } } } : {}) },
    metadata: META,
    links: {
      self: href(base, self),
      space: href(base, `/v3/spaces/${i.space_guid}`),
      service_credential_bindings: href(base, `/v3/service_credential_bindings?service_instance_guids=${i.guid}`),
      ...(managed && i.plan_guid ? { service_plan: href(base, `/v3/service_plans/${i.plan_guid}`) } : { credentials: href(base, `${self}/credentials`) }),
    },
  };
}

export function presentBinding(b: ServiceBindingRecord, base: string) {
  const self = `/v3/service_credential_bindings/${b.guid}`;
  return {
    guid: b.guid,
    type: b.type,
    name: b.name,
    created_at: time(b.created_at),
    updated_at: time(b.updated_at),
    last_operation: { type: b.operation_type, state: b.operation_state, description: b.operation_description ?? '', created_at: time(b.created_at), updated_at: time(b.updated_at) },
    relationships: { service_instance: { data: { guid: b.instance_guid } }, ...(b.app_guid ? { app: { data: { guid: b.app_guid } } } : {}) },
    metadata: META,
    links: {
      self: href(base, self),
      details: href(base, `${self}/details`),
      service_instance: href(base, `/v3/service_instances/${b.instance_guid}`),
      ...(b.app_guid ? { app: href(base, `/v3/apps/${b.app_guid}`) } : {}),
    },
  };
}

// VCAP_SERVICES from the `services` of dea.<id>.start: label → [entry], each entry CF's fields
// (name, label, tags, plan, credentials, instance_guid, instance_name, binding_guid,
// binding_name, syslog_drain_url, volume_mounts) as the controller sent them — a user-provided
// instance has no plan. The DEA puts it in the app's environment; the controller shows the same
// in GET /v3/apps/:guid/env, so what an app reads and what its developer sees never differ.
import type { ServiceCredentials } from './subjects.ts';

export function vcapServices(services: readonly ServiceCredentials[]): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const s of services) (out[s.label] ??= []).push({ ...s, tags: s.tags ?? [] });
  return out;
}

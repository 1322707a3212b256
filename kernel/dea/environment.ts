// The environment an instance starts with, shaped the way Cloud Foundry sets it so that
// libraries such as `cfenv` read it unchanged: PORT, VCAP_APP_*, VCAP_APPLICATION,
// VCAP_SERVICES, MEMORY_LIMIT, HOME, TMPDIR, and the app's own variables. The platform's
// names win over the app's: an app that set PORT itself would be unreachable by its routes.
import { vcapServices, type DeaStart } from '../bus/mod.ts';

export interface InstancePlacement {
  instanceId: string;
  /** Address routers reach the instance at, and its mapped port there. */
  host: string;
  hostPort: number;
  /** The port the app listens on inside its container. */
  containerPort: number;
  startedAt: Date;
  /** HOME (the app directory) and TMPDIR as the instance sees them. */
  home: string;
  tmp: string;
}

export function instanceEnvironment(start: DeaStart, at: InstancePlacement): Record<string, string> {
  const startedAt = at.startedAt.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' +0000');
  const application = {
    application_id: start.app_id,
    application_name: start.name,
    application_uris: start.uris,
    application_version: start.version,
    version: start.version,
    name: start.name,
    uris: start.uris,
    instance_id: at.instanceId,
    instance_index: start.index,
    host: '0.0.0.0',
    port: at.containerPort,
    limits: { mem: start.limits.memory_mb, disk: start.limits.disk_mb, fds: 16384 },
    started_at: startedAt,
    started_at_timestamp: Math.floor(at.startedAt.getTime() / 1000),
    start: startedAt,
    state_timestamp: Math.floor(at.startedAt.getTime() / 1000),
  };
  return {
    ...start.env,
    HOME: at.home,
    TMPDIR: at.tmp,
    PORT: String(at.containerPort),
    VCAP_APP_PORT: String(at.containerPort),
    VCAP_APP_HOST: '0.0.0.0',
    VCAP_APPLICATION: JSON.stringify(application),
    VCAP_SERVICES: JSON.stringify(vcapServices(start.services)),
    MEMORY_LIMIT: `${start.limits.memory_mb}m`,
    CF_INSTANCE_INDEX: String(start.index),
    CF_INSTANCE_GUID: at.instanceId,
    CF_INSTANCE_IP: at.host,
    CF_INSTANCE_PORT: String(at.hostPort),
    CF_INSTANCE_ADDR: `${at.host}:${at.hostPort}`,
    INSTANCE_INDEX: String(start.index),
  };
}


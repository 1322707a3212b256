// Placing an instance (DESIGN.md §3): ask `dea.discover`, take the first DEA that answers
// (DEAs delay their reply by their taint, so the first is the best fit), retry a few times if
// none does, then send `dea.<id>.start`. Nothing is precomputed: scaling up and HM restarts
// repeat exactly these steps. The start message itself is built by a pure function.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { replies, subjects, type Bus, type DeaDiscover, type DeaStart, type ServiceCredentials } from '../bus/mod.ts';
import type { AppRecord, DropletRecord, ProcessRecord } from './db/mod.ts';

/** Everything a DEA needs to run an app's web process. */
export interface Runnable {
  app: AppRecord;
  process: ProcessRecord;
  droplet: DropletRecord & { sha256: string };
  /** host.domain/path of every mapped route. */
  uris: string[];
  /** The app's bindings as of this start (services/vcap.ts). */
  services: ServiceCredentials[];
}

export function discoverMessage(r: Runnable): DeaDiscover {
  return {
    app_id: r.app.guid,
    droplet_sha: r.droplet.sha256,
    memory_mb: r.process.memory_in_mb,
    disk_mb: r.process.disk_in_mb,
    stack: r.droplet.stack,
  };
}

export function startMessage(r: Runnable, at: { index: number; version: string; instanceId: string; dropletUri: string }): DeaStart {
  const command = r.process.command ?? r.droplet.process_types.web;
  return {
    app_id: r.app.guid,
    name: r.app.name,
    index: at.index,
    version: at.version,
    instance_id: at.instanceId,
    droplet_uri: at.dropletUri,
    droplet_sha256: r.droplet.sha256,
    uris: r.uris,
    limits: { memory_mb: r.process.memory_in_mb, disk_mb: r.process.disk_in_mb },
    env: { ...r.app.environment_variables },
    services: r.services,
    health_check: {
      type: r.process.health_check_type,
      ...(r.process.health_check_endpoint ? { endpoint: r.process.health_check_endpoint } : {}),
      ...(r.process.health_check_timeout ? { timeout_s: r.process.health_check_timeout } : {}),
    },
    ...(command ? { start_command: command } : {}),
    stack: r.droplet.stack,
  };
}

export interface Placed {
  dea_id: string;
  instance_id: string;
}

export class Placer {
  constructor(
    private readonly bus: Bus,
    private readonly opts: { discoverTimeoutMs: number; attempts: number },
    private readonly log: Logger,
  ) {}

  /**
   * Finds a DEA and starts one instance on it. `stillWanted` is asked right before the start
   * is sent, so a placement overtaken by a stop or a restart sends nothing.
   */
  async place(
    r: Runnable,
    at: { index: number; version: string; dropletUri: string },
    stillWanted: () => Promise<boolean> = async () => true,
  ): Promise<Placed | 'no_dea' | 'overtaken'> {
    for (let attempt = 1; attempt <= this.opts.attempts; attempt++) {
      const [dea] = await this.bus.requestMany(subjects.deaDiscover, discoverMessage(r), replies.deaDiscover, {
        windowMs: this.opts.discoverTimeoutMs,
        max: 1,
      });
      if (!dea) {
        this.log.warn({ app_id: r.app.guid, index: at.index, attempt }, 'no DEA answered dea.discover');
        continue;
      }
      if (!(await stillWanted())) return 'overtaken';
      const instanceId = randomUUID();
      try {
        this.bus.publish(subjects.deaStart(dea.dea_id), startMessage(r, { ...at, instanceId }));
      } catch (err) {
        this.log.warn({ app_id: r.app.guid, dea_id: dea.dea_id, err: (err as Error).message }, 'sending dea.start failed');
        continue;
      }
      this.log.info({ app_id: r.app.guid, index: at.index, version: at.version, dea_id: dea.dea_id, instance_id: instanceId }, 'instance placed');
      return { dea_id: dea.dea_id, instance_id: instanceId };
    }
    return 'no_dea';
  }
}

// One supervised redis-server per unit (node/supervised-server.ts: setpriv to an unprivileged
// user with a parent-death signal, restarts with back-off, a stale server of an earlier node
// stopped first), probed with PING over the node's own admin connection.
import type { Logger } from '../../../component/mod.ts';
import { SupervisedServer } from '../../node/supervised-server.ts';
import { RespClient } from './resp.ts';

export interface RedisProcessOptions {
  instanceId: string;
  serverPath: string;
  confPath: string;
  pidPath: string;
  logPath: string;
  /** User to run as (only when the node is root). */
  runAs: string | undefined;
  host: string;
  port: number;
  adminPassword: string;
  startTimeoutMs: number;
  log: Logger;
  /** Rewrites the unit's files before every start (the ACL file follows the bindings). */
  prepare(): Promise<void>;
}

export class RedisProcess extends SupervisedServer {
  constructor(private readonly redis: RedisProcessOptions) {
    super({
      name: `redis-server for ${redis.instanceId} on port ${redis.port}`,
      // Its command line names the unit's config, under the node's base_dir (scripts/sweep.sh).
      command: [redis.serverPath, redis.confPath],
      runAs: redis.runAs,
      stopSignal: 'SIGTERM', // redis-server saves and closes its AOF on SIGTERM
      pidFile: redis.pidPath,
      marker: redis.confPath,
      logFile: redis.logPath,
      startTimeoutMs: redis.startTimeoutMs,
      log: redis.log,
      prepare: () => redis.prepare(),
      probe: async () => {
        const c = await this.admin();
        try {
          const pong = await c.command('PING');
          if (pong !== 'PONG') throw new Error(`PING answered ${String(pong)}`);
        } finally {
          c.close();
        }
      },
    });
  }

  /** An admin connection (the `default` user, whose password only the node knows). */
  admin(): Promise<RespClient> {
    return RespClient.connect({ host: this.redis.host, port: this.redis.port, password: this.redis.adminPassword, timeoutMs: 2000 });
  }
}

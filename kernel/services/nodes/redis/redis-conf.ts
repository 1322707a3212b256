// What a Redis unit's files say, as functions of data: its redis.conf (port, bind address,
// limits from the plan, persistence in its own directory) and its ACL file (the node's admin
// user `default` plus one user per binding). The node renders both before every start of the
// server, from its own state, so a restarted server knows exactly the current bindings.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { PlanLimits } from '../../node/config.ts';

export interface RedisUnitFiles {
  dir: string;
  host: string;
  port: number;
  plan: PlanLimits;
}

export function unitPaths(dir: string): { conf: string; acl: string; log: string; pid: string } {
  return { conf: join(dir, 'redis.conf'), acl: join(dir, 'users.acl'), log: join(dir, 'redis.log'), pid: join(dir, 'redis.pid') };
}

export function renderRedisConf(u: RedisUnitFiles): string {
  const paths = unitPaths(u.dir);
  return [
    '# Rendered by the Ingot service node; rewritten at every start.',
    `bind ${u.host}`,
    `port ${u.port}`,
    // Auth is always on (the ACL file below has no passwordless user), so the server may
    // accept connections from other hosts: that is what apps do.
    'protected-mode no',
    'daemonize no',
    // Keep the command line (it names this file): the node and scripts/sweep.sh find servers by it.
    'set-proc-title no',
    `dir ${u.dir}`,
    `pidfile ${paths.pid}`,
    `logfile ${paths.log}`,
    `aclfile ${paths.acl}`,
    'appendonly yes',
    'appendfsync everysec',
    'dbfilename dump.rdb',
    // The plan's memory limit is felt as an OOM error on write, never as silent eviction.
    `maxmemory ${u.plan.memory_mb}mb`,
    'maxmemory-policy noeviction',
    `maxclients ${u.plan.max_clients}`,
    // Apps must not reconfigure or replicate the unit; the node's admin keeps these via ACL.
    'enable-debug-command no',
    'enable-module-command no',
    '',
  ].join('\n');
}

/** The plan's limits as Redis settings, name then value: redis.conf at start, CONFIG SET at a plan change. */
export function planSettings(plan: PlanLimits): string[] {
  return ['maxmemory', `${plan.memory_mb}mb`, 'maxclients', String(plan.max_clients)];
}

/** Redis ACL rules of a binding's user: every key and command except administration. */
export const BINDING_RULES = ['on', '~*', '&*', '+@all', '-@admin'];

export function renderAclFile(adminPassword: string, bindings: Array<{ username: string; password: string }>): string {
  const lines = [`user default on #${sha256(adminPassword)} ~* &* +@all`];
  for (const b of bindings) lines.push(`user ${b.username} ${BINDING_RULES.join(' ')} #${sha256(b.password)}`);
  return lines.join('\n') + '\n';
}

export function redisUri(c: { host: string; port: number; username: string; password: string }): string {
  return `redis://${encodeURIComponent(c.username)}:${encodeURIComponent(c.password)}@${c.host}:${c.port}`;
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

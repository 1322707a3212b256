// What the router's primary process and its proxy workers say to each other over the cluster
// IPC channel, and how a worker applies route changes to its own table. The primary owns the
// authoritative table (fed from NATS); workers receive every change as compact ops, batched
// per event-loop turn, and a full snapshot when they start.
import type { RouterConfig } from './config.ts';
import type { Endpoint } from './endpoint-pool.ts';
import { parseRouteUri, type RouteTable } from './route-table.ts';
import type { StatsDelta } from './stats.ts';

/** Add or update: [op, route, host, port, app_id, instance_id, private_instance_id, index]. */
export type AddOp = ['+', string, string, number, string | null, string | null, string | null, number | null];
/** Remove: [op, route, address]. */
export type RemoveOp = ['-', string, string];
export type ClearOp = ['clear'];
export type RouteOp = AddOp | RemoveOp | ClearOp;

export type ToWorker =
  | { t: 'init'; config: RouterConfig; worker: number; uuid: string }
  | { t: 'routes'; ops: RouteOp[] }
  | { t: 'listen' }
  | { t: 'drain' }
  | { t: 'stop' };

export interface WorkerStats {
  delta: StatsDelta;
  mem_bytes: number;
  connections: number;
  backend_connections: number;
}

export type FromWorker =
  | { t: 'hello' }
  | { t: 'ready'; port: number }
  | { t: 'listen_failed'; message: string }
  | ({ t: 'stats' } & WorkerStats)
  | { t: 'drained' };

export function addOp(route: string, e: Endpoint): AddOp {
  return ['+', route, e.host, e.port, e.appId ?? null, e.instanceId ?? null, e.privateInstanceId ?? null, e.index ?? null];
}

export function removeOp(route: string, e: Endpoint): RemoveOp {
  return ['-', route, e.address];
}

/** Applies ops to a worker's table. Ops are idempotent, so a snapshot may overlap a batch. */
export function applyRouteOps(table: RouteTable, ops: RouteOp[], now: number): void {
  for (const op of ops) {
    if (op[0] === 'clear') {
      table.clear();
      continue;
    }
    const key = parseRouteUri(op[1]);
    if (!key) continue;
    if (op[0] === '+') {
      table.register(op[1], { host: op[2], port: op[3], appId: op[4] ?? undefined, instanceId: op[5] ?? undefined, privateInstanceId: op[6] ?? undefined, index: op[7] ?? undefined }, now);
    } else {
      table.remove(key, op[2]);
    }
  }
}

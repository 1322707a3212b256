// The primary's routing state: the authoritative table built from router.register and
// router.unregister, pruning of endpoints whose registrants went quiet, and the stream of
// changes the proxy workers apply to their own copies.
//
// Pruning stops while NATS is unreachable: registrants cannot refresh through an outage, and
// an outage of NATS must never empty the table. When NATS is back every endpoint counts as
// refreshed then, so registrants get a whole threshold to re-register.
import type { RouterRegister } from '../bus/mod.ts';
import { makeEndpoint, type Endpoint } from './endpoint-pool.ts';
import { addOp, removeOp, type RouteOp } from './ipc.ts';
import { parseRouteUri, RouteTable } from './route-table.ts';

const SNAPSHOT_BATCH = 2000;

export interface RegistryCounters {
  registers: number;
  unregisters: number;
  /** URIs in otherwise valid messages that are not routes (`a b`, `x.com?q`). */
  invalid_uris: number;
  pruned: number;
}

export interface RouteListing {
  address: string;
  app_id?: string | undefined;
  instance_id?: string | undefined;
  private_instance_id?: string | undefined;
  index?: number | undefined;
  tags?: Record<string, string> | undefined;
  updated_at: string;
  stale_after_s: number;
}

export class RouteRegistry {
  readonly table = new RouteTable();
  readonly counters: RegistryCounters = { registers: 0, unregisters: 0, invalid_uris: 0, pruned: 0 };
  private pending: RouteOp[] = [];
  private flushScheduled = false;
  private suspended = false;

  constructor(
    private readonly staleMs: number,
    /** Receives every change, in order, batched per event-loop turn. */
    private readonly publish: (ops: RouteOp[]) => void,
  ) {}

  get pruningSuspended(): boolean {
    return this.suspended;
  }

  register(msg: RouterRegister, now: number): void {
    this.counters.registers++;
    const fields = {
      host: msg.host,
      port: msg.port,
      appId: msg.app_id,
      instanceId: msg.instance_id,
      privateInstanceId: msg.private_instance_id,
      index: msg.index,
      tags: msg.tags,
      staleAfterMs: msg.stale_threshold_in_seconds === undefined ? undefined : msg.stale_threshold_in_seconds * 1000,
    };
    for (const uri of msg.uris) {
      const key = parseRouteUri(uri);
      if (key === undefined) {
        this.counters.invalid_uris++;
        continue;
      }
      const endpoint = makeEndpoint(fields, now);
      if (this.table.put(key, endpoint) !== 'refreshed') this.emit(addOp(key.key, endpoint));
    }
  }

  unregister(msg: RouterRegister): void {
    this.counters.unregisters++;
    const address = `${msg.host}:${msg.port}`;
    const stickyId = msg.private_instance_id ?? msg.instance_id;
    for (const uri of msg.uris) {
      const key = parseRouteUri(uri);
      const removed = key && this.table.remove(key, address, stickyId);
      if (key && removed) this.emit(removeOp(key.key, removed));
    }
  }

  /** Drops stale endpoints, unless pruning is suspended. */
  prune(now: number): Array<{ uri: string; endpoint: Endpoint }> {
    if (this.suspended) return [];
    const removed = this.table.prune(now, this.staleMs);
    this.counters.pruned += removed.length;
    for (const { uri, endpoint } of removed) this.emit(removeOp(uri, endpoint));
    return removed;
  }

  /** NATS is unreachable: stop the stale clock. */
  suspendPruning(): void {
    this.suspended = true;
  }

  /** NATS is back: everything counts as refreshed now. */
  resumePruning(now: number): void {
    this.table.freshen(now);
    this.suspended = false;
  }

  /** The whole table as ops, in batches, for a worker that starts. */
  snapshot(): RouteOp[][] {
    const batches: RouteOp[][] = [[['clear']]];
    let batch: RouteOp[] = [];
    for (const [key, pool] of this.table.pools()) {
      for (const e of pool.endpoints) {
        batch.push(addOp(key.key, e));
        if (batch.length >= SNAPSHOT_BATCH) {
          batches.push(batch);
          batch = [];
        }
      }
    }
    if (batch.length > 0) batches.push(batch);
    return batches;
  }

  /** The table for /routes, route by route: [route, its endpoints]. */
  *listing(defaultStaleS: number): Generator<[string, RouteListing[]]> {
    for (const [key, pool] of this.table.pools()) {
      yield [
        key.key,
        pool.endpoints.map((e) => ({
          address: e.address,
          app_id: e.appId,
          instance_id: e.instanceId,
          private_instance_id: e.privateInstanceId,
          index: e.index,
          tags: e.tags,
          updated_at: new Date(e.updatedAt).toISOString(),
          stale_after_s: e.staleAfterMs === undefined ? defaultStaleS : e.staleAfterMs / 1000,
        })),
      ];
    }
  }

  /** Sends what is pending now (tests, and before a snapshot is taken). */
  flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    const ops = this.pending;
    this.pending = [];
    this.publish(ops);
  }

  private emit(op: RouteOp): void {
    this.pending.push(op);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // One batch per event-loop turn: a burst of registrations becomes one IPC message.
      setImmediate(() => this.flush());
    }
  }
}

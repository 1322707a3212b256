// Which health manager sends. Every HM watches and analyses, but only one — the leader —
// asks the controllers, so two HMs deciding in the same instant can never both START an
// index. Each HM says it is alive on `healthmanager.presence` every interval; the peers
// heard within the last few intervals are alive; the leader is the alive HM that has watched
// longest without a gap (oldest `started_at`, then the smaller id): a fresh HM, or one back
// from a NATS outage, never takes over from one whose view of the world is warm.
//
// Pure: the peers heard and the clock in, the verdict out (test/unit/hm-election.test.ts).
import type { HealthmanagerPresence } from '../bus/mod.ts';

/** A peer silent for this many intervals is gone; its leadership passes on. */
export const PEER_TTL_INTERVALS = 3;
/** A starting HM listens this many intervals (to hear who is there) before it may lead. */
export const LISTEN_INTERVALS = 2;

export interface ElectionPolicy {
  interval_ms: number;
}

/** This HM: its id, and since when (its clock, ms) it has watched without a gap. */
export interface Self {
  id: string;
  started_at: number;
}

export interface Peer {
  id: string;
  /** Since when the peer has watched without a gap (ms). */
  started_at: number;
  /** Whether the peer said, in its last presence, that it leads. */
  leader: boolean;
  /** When this HM last heard the peer (its clock, ms). */
  heard_at: number;
}

export interface Verdict {
  leader: boolean;
  /** Why: still listening after a start; another HM is senior; the senior waits for the old leader to step down; or leads. */
  why: 'listening' | 'junior' | 'handover' | 'senior';
  /** The HM believed to lead now, if any is known. */
  leader_id: string | undefined;
  /** The alive peers, most senior first. */
  peers: Peer[];
}

/** Senior first: the one watching longest, then the smaller id, so every HM orders alike. */
export function bySeniority(a: { id: string; started_at: number }, b: { id: string; started_at: number }): number {
  return a.started_at - b.started_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export function elect(self: Self, peers: Iterable<Peer>, now: number, policy: ElectionPolicy): Verdict {
  const alive = [...peers].filter((p) => p.id !== self.id && now - p.heard_at < PEER_TTL_INTERVALS * policy.interval_ms).sort(bySeniority);
  const claimant = alive.find((p) => p.leader);
  if (now - self.started_at < LISTEN_INTERVALS * policy.interval_ms) {
    return { leader: false, why: 'listening', leader_id: claimant?.id, peers: alive };
  }
  const senior = alive[0];
  if (senior && bySeniority(senior, self) < 0) return { leader: false, why: 'junior', leader_id: claimant?.id ?? senior.id, peers: alive };
  // A junior that led (it had not heard this HM yet) steps down within an interval of
  // hearing it; until its presence says so, taking over could make two senders.
  if (claimant) return { leader: false, why: 'handover', leader_id: claimant.id, peers: alive };
  return { leader: true, why: 'senior', leader_id: self.id, peers: alive };
}

/** The peers heard on `healthmanager.presence`, each as last heard. */
export class PeerTable {
  private readonly peers = new Map<string, Peer>();

  constructor(private readonly selfId: string) {}

  hear(msg: HealthmanagerPresence, now: number): void {
    if (msg.id === this.selfId) return; // its own presence, heard back
    this.peers.set(msg.id, { id: msg.id, started_at: msg.started_at * 1000, leader: msg.leader, heard_at: now });
  }

  /** Forgets peers silent far longer than any verdict looks back. */
  prune(now: number, policy: ElectionPolicy): void {
    for (const [id, p] of this.peers) if (now - p.heard_at >= 10 * PEER_TTL_INTERVALS * policy.interval_ms) this.peers.delete(id);
  }

  values(): Peer[] {
    return [...this.peers.values()];
  }
}

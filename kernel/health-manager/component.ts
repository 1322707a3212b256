// The health manager ("the court jester"): it watches the world, finds where what runs
// drifts from what the controller wants, and tells the controllers so. It has no power to
// change anything itself (DESIGN.md §3): it only asks, on `cloudcontrollers.hm.requests`,
// and a controller acts only while it still agrees (kernel/cloud-controller/hm-requests.ts).
//
// Intended state: intended-state.ts (bulk API at start, every resync, and per
// droplet.updated). Real state: real-state.ts (dea.heartbeat, droplet.exited). Judgement:
// analysis.ts, a pure function run every analysis interval; its requests go out highest
// priority first within a token bucket (rate-limit.ts).
//
// Several health managers may run; exactly one of them sends. They elect a leader over
// `healthmanager.presence` (election.ts: the HM watching longest without a gap leads; a
// silent one is gone after 3 intervals). Every HM keeps watching — intended state, real
// state, and every request the leader sends (asked.ts, a plain subscription beside the
// controllers' queue group) — and analyses every round, so a follower that takes over
// knows at once what is wrong and what has already been asked. A follower sends nothing
// and tells no app log; it only counts what it would have asked (`requests_withheld`).
// A START is therefore never sent twice by two HMs deciding in the same instant. The
// controller's agreement check still keeps a stale request (a takeover, a lost message)
// harmless. `healthmanager.status` and `.health` are answered by any one HM of the queue
// group: every HM holds the same analysis.
import { subjects, replies, type HmRequest } from '../bus/mod.ts';
import { counter, defineComponent, gauge, labelled, type Metric } from '../component/mod.ts';
import { analyze } from './analysis.ts';
import { healthReply, statusReply, type Round } from './answers.ts';
import { AskedMemory } from './asked.ts';
import { restartDelayMs } from './backoff.ts';
import { analysisPolicy, hmConfig } from './config.ts';
import { elect, PeerTable, type Verdict } from './election.ts';
import { BulkClient, IntendedState } from './intended-state.ts';
import { TokenBucket } from './rate-limit.ts';
import { RealState } from './real-state.ts';
import { crashKey, REQUEST_REASONS, type Analysis, type PlannedRequest, type RequestReason } from './types.ts';

const STATUS_QUEUE = 'healthmanagers';

export default defineComponent({
  type: 'health-manager',
  config: hmConfig,
  async start({ config, bus, log, uuid }) {
    const policy = analysisPolicy(config);
    const timeoutMs = policy.heartbeat_timeout_ms;
    const clock = Date.now;
    const real = new RealState(clock(), policy.backoff);
    const asked = new AskedMemory();
    const bucket = new TokenBucket(config.rate_limit.requests_per_s, config.rate_limit.burst, clock());
    const intended = new IntendedState(
      new BulkClient({
        urls: config.bulk_api.urls,
        user: config.bulk_api.user,
        password: config.bulk_api.password,
        batchSize: config.bulk_api.batch_size,
        timeoutMs: config.bulk_api.timeout_s * 1000,
      }),
      clock,
    );
    const sent = Object.fromEntries(REQUEST_REASONS.map((r) => [r, 0])) as Record<RequestReason, number>;
    const totals = { rounds: 0, deferred: 0, instances: 0, withheld: 0 };
    /** The last round: when it ran (this clock, ms) and how long it took. */
    const lastAnalysis = { at: undefined as number | undefined, ms: 0 };
    /** Unknown apps looked up at the controller, and when: at most once per grace period each. */
    const lookedUp = new Map<string, number>();
    /** Back-offs already told to the app's log, so each is told once. */
    const toldBackoff = new Set<string>();
    let last: Round | undefined;
    let stopped = false;

    // ---- the election --------------------------------------------------------------------
    const electionPolicy = { interval_ms: config.election.interval_ms };
    /** Since when this HM has watched without a gap: its start, or its last reconnect. */
    const self = { id: uuid, started_at: clock() };
    const peers = new PeerTable(uuid);
    let verdict: Verdict = { leader: false, why: 'listening', leader_id: undefined, peers: [] };
    const campaign = (): void => {
      const now = clock();
      peers.prune(now, electionPolicy);
      // Cut off from NATS, an HM cannot know who else sends: it must not.
      const next: Verdict = bus.connected ? elect(self, peers.values(), now, electionPolicy) : { ...verdict, leader: false, why: 'listening' };
      if (next.leader !== verdict.leader || next.leader_id !== verdict.leader_id) {
        log.info({ leader: next.leader, why: next.why, leader_id: next.leader_id ?? null, peers: next.peers.length }, next.leader ? 'leading: this health manager sends requests' : 'following: another health manager sends requests');
      }
      verdict = next;
      if (!bus.connected) return;
      try {
        bus.publish(subjects.healthmanagerPresence, { id: self.id, started_at: self.started_at / 1000, leader: verdict.leader });
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'publishing presence failed');
      }
    };

    // ---- intended state ------------------------------------------------------------------
    let loading: Promise<void> | undefined;
    let retry: NodeJS.Timeout | undefined;
    const loadAll = (): Promise<void> =>
      (loading ??= intended
        .loadAll()
        .then(() => log.info({ apps: intended.size }, 'desired state loaded'))
        .catch((err: unknown) => {
          log.warn({ err: (err as Error).message, retry_s: config.bulk_api.retry_interval_s }, 'loading the desired state failed');
          if (!stopped) {
            clearTimeout(retry);
            retry = setTimeout(() => void loadAll(), config.bulk_api.retry_interval_s * 1000);
          }
        })
        .finally(() => (loading = undefined)));
    const refresh = (appId: string, why: string): void => {
      intended.refresh(appId).catch((err: unknown) => log.warn({ app_id: appId, why, err: (err as Error).message }, 'reading an app from the controller failed'));
    };

    // ---- the bus -------------------------------------------------------------------------
    const unsubscribe = [
      bus.subscribe(subjects.deaHeartbeat, (hb) => {
        const now = clock();
        for (const appId of real.onHeartbeat(hb, now)) {
          // An app the HM does not know may have started since the last load: ask before judging.
          if (!intended.loaded || intended.has(appId)) continue;
          if (now - (lookedUp.get(appId) ?? -Infinity) < policy.unknown_app_grace_ms) continue;
          lookedUp.set(appId, now);
          refresh(appId, 'unknown app heard in a heartbeat');
        }
      }),
      bus.subscribe(subjects.dropletExited, (msg) => real.onExited(msg, clock())),
      bus.subscribe(subjects.dropletUpdated, (msg) => {
        intended.changed(msg.app_id).catch((err: unknown) => log.warn({ app_id: msg.app_id, err: (err as Error).message }, 'reading a changed app failed'));
      }),
      // Every HM's requests, its own included: no queue group, so each HM hears them all.
      bus.subscribe(subjects.hmRequests, (req) => asked.record(req, clock())),
      bus.subscribe(subjects.healthmanagerPresence, (msg) => peers.hear(msg, clock())),
      bus.subscribe(subjects.healthmanagerStatus, (req, ctx) => {
        if (ctx.reply) bus.respond(ctx.reply, replies.healthmanagerStatus, statusReply(req, last));
      }, { queue: STATUS_QUEUE }),
      bus.subscribe(subjects.healthmanagerHealth, (req, ctx) => {
        if (ctx.reply) bus.respond(ctx.reply, replies.healthmanagerHealth, healthReply(req, last));
      }, { queue: STATUS_QUEUE }),
    ];
    bus.onReconnected(() => {
      // Heartbeats and droplet.updated were lost meanwhile: listen a whole timeout before
      // calling anything missing, and read the desired state again.
      real.relisten(clock());
      // The requests sent meanwhile were lost too: this HM's view has a gap, so it stands
      // again as a newcomer and leaves the lead to any HM that watched throughout.
      self.started_at = clock();
      verdict = { ...verdict, leader: false, why: 'listening' };
      void loadAll();
    });

    // ---- the rounds ----------------------------------------------------------------------
    const round = (): void => {
      if (!bus.connected) return; // silence while cut off proves nothing
      const now = clock();
      const began = performance.now();
      const desired = intended.snapshot();
      real.prune(now, 3 * timeoutMs, (appId, version) => {
        if (!intended.loaded) return true;
        const app = desired.apps.get(appId);
        return app !== undefined && app.state === 'STARTED' && app.version === version;
      });
      const seen = real.snapshot();
      asked.prune(now, 2 * timeoutMs, (key) => seen.crashes.has(key));
      for (const [appId, at] of lookedUp) if (now - at >= policy.unknown_app_grace_ms) lookedUp.delete(appId);

      const analysis = analyze(desired, seen, now, { asked: asked.snapshot(), policy, budget: bucket.available(now) });
      // Decided now, not at the last campaign: a leader that lost its connection since must not send.
      const leading = verdict.leader && bus.connected;
      if (leading) {
        for (const req of analysis.requests) send(req, analysis, now);
        bucket.take(analysis.requests.length, now);
        tellBackoffs(analysis, now);
        totals.deferred += analysis.deferred;
      } else {
        totals.withheld += analysis.requests.length;
      }
      totals.rounds++;
      totals.instances = seen.instances.filter((i) => now - i.heard_at < timeoutMs && ['STARTING', 'RUNNING', 'EVACUATING'].includes(i.state)).length;
      last = { analysis, real: seen, at: now, heartbeat_timeout_ms: timeoutMs };
      lastAnalysis.at = now;
      lastAnalysis.ms = Math.round((performance.now() - began) * 1000) / 1000;
      if (leading && analysis.deferred > 0) log.warn({ sent: analysis.requests.length, deferred: analysis.deferred }, 'requests held back by the rate limit');
    };

    const send = (req: PlannedRequest, analysis: Analysis, now: number): void => {
      const wire: HmRequest =
        req.op === 'START'
          ? { op: 'START', app_id: req.app_id, version: req.version, indices: [req.index], reason: req.reason }
          : { op: 'STOP', app_id: req.app_id, version: req.version, instance_ids: [req.instance_id], reason: req.reason };
      try {
        bus.publish(subjects.hmRequests, wire);
      } catch (err) {
        log.error({ app_id: req.app_id, op: req.op, err: (err as Error).message }, 'sending a request failed');
        return;
      }
      asked.record(wire, now);
      sent[req.reason]++;
      log.info({ app_id: req.app_id, op: req.op, version: req.version, index: req.index, ...(req.op === 'STOP' ? { instance_id: req.instance_id } : {}), reason: req.reason }, 'hm request sent');
      appLog(req.app_id, describe(req, analysis), req.reason === 'crashed' ? 'err' : 'out');
    };

    const describe = (req: PlannedRequest, analysis: Analysis): string => {
      const flap = analysis.apps.get(req.app_id)?.flapping.find((f) => f.index === req.index && f.version === req.version);
      switch (req.reason) {
        case 'evacuating':
          return `Starting instance ${req.index} elsewhere: its DEA is evacuating`;
        case 'crashed':
          return flap ? `Restarting crashed instance ${req.index} (it has crashed ${flap.crash_count} times)` : `Restarting crashed instance ${req.index}`;
        case 'missing':
          return `Starting instance ${req.index}: no DEA has reported it for ${config.heartbeat_timeout_s} s`;
        case 'evacuated':
          return `Stopping instance ${req.index} on its evacuating DEA: its replacement is running`;
        case 'extra_index':
          return `Stopping instance ${req.index}: beyond the desired instance count`;
        case 'duplicate':
          return `Stopping a second instance ${req.index}: another one already runs at that index`;
        case 'old_version':
          return `Stopping instance ${req.index} of an old version`;
        case 'stopped_app':
          return `Stopping instance ${req.index}: the app is stopped`;
        case 'unknown_app':
          return `Stopping instance ${req.index}: the controller does not know this app`;
      }
    };

    /** Tells an app's log, once per crash count, when its next restart waits. */
    const tellBackoffs = (analysis: Analysis, now: number): void => {
      for (const report of analysis.apps.values()) {
        for (const f of report.flapping) {
          if (f.next_restart_at === undefined) continue;
          const key = `${crashKey(report.app_id, f.version, f.index)}/${f.crash_count}`;
          if (toldBackoff.has(key)) continue;
          toldBackoff.add(key);
          const waitS = Math.round(restartDelayMs(f.crash_count, policy.backoff) / 100) / 10;
          appLog(report.app_id, `Instance ${f.index} has crashed ${f.crash_count} times: it is flapping; the next restart waits ${waitS} s (in ${Math.max(0, Math.round((f.next_restart_at - now) / 1000))} s)`, 'err');
          log.info({ app_id: report.app_id, index: f.index, crash_count: f.crash_count, wait_s: waitS }, 'instance flapping; restart backed off');
        }
      }
      if (toldBackoff.size > 10_000) toldBackoff.clear();
    };

    const appLog = (appId: string, line: string, stream: 'out' | 'err'): void => {
      try {
        bus.publish(subjects.logs(appId), { app_id: appId, source: 'HM', stream, timestamp: clock(), line });
      } catch {
        // An app id that is no subject token (never one the controller made) gets no log line.
      }
    };

    await bus.flush();
    void loadAll();
    campaign(); // peers hear of this HM at once; it leads only after listening (election.ts)
    const timers = [
      setInterval(campaign, config.election.interval_ms),
      setInterval(() => {
        // A failing round is a bug to log, not a reason to stop watching.
        try {
          round();
        } catch (err) {
          log.error({ err: err instanceof Error ? err.stack : String(err) }, 'analysis round failed');
        }
      }, config.analysis_interval_s * 1000),
      setInterval(() => void loadAll(), config.resync_interval_s * 1000),
    ];
    log.info(
      { id: uuid, bulk_api: config.bulk_api.urls, election_interval_ms: config.election.interval_ms, analysis_interval_s: config.analysis_interval_s, heartbeat_timeout_s: config.heartbeat_timeout_s, resync_interval_s: config.resync_interval_s },
      'health manager watching',
    );

    const numbers = () => {
      const reports = [...(last?.analysis.apps.values() ?? [])];
      return {
        apps: [...intended.snapshot().apps.values()].filter((a) => a.state === 'STARTED').length,
        instances: totals.instances,
        desired: reports.reduce((n, r) => n + r.desired, 0),
        running: reports.reduce((n, r) => n + r.running, 0),
        missing: reports.reduce((n, r) => n + r.missing.length, 0),
        crashed: reports.reduce((n, r) => n + r.crashed.length, 0),
        flapping: reports.reduce((n, r) => n + r.flapping.length, 0),
      };
    };

    const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

    return {
      varz: () => ({
        ...numbers(),
        id: uuid,
        leader: verdict.leader,
        leader_id: verdict.leader_id ?? null,
        watching_since: iso(self.started_at),
        peers: verdict.peers.map((p) => ({ id: p.id, started_at: iso(p.started_at), leader: p.leader, heard_ms_ago: clock() - p.heard_at })),
        requests_sent: { ...sent },
        requests_deferred: totals.deferred,
        requests_withheld: totals.withheld,
        rounds: totals.rounds,
        last_analysis_at: iso(lastAnalysis.at),
        last_analysis_ms: lastAnalysis.ms,
        intended: { loaded: intended.loaded, apps: intended.size, ...intended.counts, last_error: intended.lastError ?? null },
        real: { ...real.counts },
      }),
      metrics: (): Metric[] => {
        const n = numbers();
        return [
          gauge('apps', 'Apps the controller wants started, as last read', n.apps),
          gauge('instances', 'Instances heard STARTING, RUNNING or EVACUATING', n.instances),
          gauge('instances_desired', 'Instances the controller wants, over all apps', n.desired),
          gauge('instances_running', 'Desired indices with a RUNNING instance', n.running),
          gauge('instances_missing', 'Desired indices nothing runs for (not waiting out a crash back-off)', n.missing),
          gauge('instances_crashed', 'Instances of desired versions the DEAs report CRASHED', n.crashed),
          gauge('instances_flapping', 'Indices in crash back-off', n.flapping),
          labelled('requests_sent_total', 'Requests sent to the controllers, by kind', 'counter', 'kind', sent),
          counter('requests_deferred_total', 'Requests held back by the rate limit (found again by a later round)', totals.deferred),
          counter('requests_withheld_total', 'Requests found while following another HM (the leader sends them)', totals.withheld),
          gauge('leader', '1 while this HM is the one that sends requests', verdict.leader ? 1 : 0),
          gauge('peers', 'Other health managers heard alive', verdict.peers.length),
          gauge('last_analysis_timestamp_seconds', 'When the last analysis round ran (unix seconds; 0 before the first)', (lastAnalysis.at ?? 0) / 1000),
          gauge('last_analysis_duration_seconds', 'How long the last analysis round took', lastAnalysis.ms / 1000),
          counter('heartbeats_total', 'DEA heartbeats heard', real.counts.heartbeats),
          counter('crashes_total', 'Crashes heard (droplet.exited CRASHED)', real.counts.crashes),
          gauge('desired_state_loaded', '1 once the desired state has been read in full', intended.loaded ? 1 : 0),
          counter('desired_state_load_failures_total', 'Full reads of the desired state that failed', intended.counts.full_load_failures),
        ];
      },
      async stop() {
        stopped = true;
        for (const t of timers) clearInterval(t);
        clearTimeout(retry);
        for (const u of unsubscribe) u();
        // A load in flight is bounded by bulk_api.timeout_s and lands in state nobody reads.
      },
    };
  },
});

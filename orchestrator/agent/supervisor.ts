// The agent's monit: runs each job's processes as children (output to
// <root>/sys/log/<job>/<process>.{stdout,stderr}.log), restarts a dead one with backoff, marks
// it failing after too many crashes in a window, and stops with SIGTERM then SIGKILL. A process
// with a readiness check is 'starting' until its endpoint answers 2xx: a process alive is not a
// process serving (a router that cannot bind its port may take seconds to give up). Before a
// drain the agent unmonitors (monit's `unmonitor`): a process that exits then stays down.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { isFailing, recentCrashes, restartDelay, type RestartPolicy } from './backoff.ts';
import type { ProcessDef, ProcessState, ProcessStatus } from './protocol.ts';

export interface SupervisedProcess {
  job: string;
  def: ProcessDef;
  /** Working directory (the job's directory). */
  cwd: string;
  /** Extra environment (job dir, properties file). */
  env: Record<string, string>;
}

export type SupervisorEvent =
  | { type: 'crashed'; job: string; process: string; exit: string; restartInMs: number }
  | { type: 'failing'; job: string; process: string; crashes: number }
  /** Exited while unmonitored (draining): left down, no crash. */
  | { type: 'exited'; job: string; process: string; exit: string }
  /** Still running this long after SIGTERM: SIGKILL. */
  | { type: 'killed'; job: string; process: string; afterMs: number };

interface Slot {
  spec: SupervisedProcess;
  child?: ChildProcess;
  state: ProcessState;
  crashes: number[];
  restarts: number;
  timer?: NodeJS.Timeout;
  exited?: Promise<void>;
  /** Aborts the readiness polling of the current child. */
  probing?: AbortController;
}

/** Between readiness probes, and the bound on one probe. */
const PROBE_EVERY_MS = 250;
const PROBE_TIMEOUT_MS = 1000;

/**
 * Added to a process's own stop_timeout_s before SIGKILL: a component's drain bound starts when
 * it handles SIGTERM, and after it the component still closes its NATS connection and status
 * server; a few seconds cover that on a busy VM.
 */
export const STOP_TIMEOUT_MARGIN_MS = 5000;

/** How long after SIGTERM a process gets SIGKILL: the agent's grace, or the process's own stop bound and the margin if longer. */
export function killAfterMs(graceMs: number, def: Pick<ProcessDef, 'stop_timeout_s'>): number {
  return def.stop_timeout_s === undefined ? graceMs : Math.max(graceMs, def.stop_timeout_s * 1000 + STOP_TIMEOUT_MARGIN_MS);
}

export class Supervisor {
  private slots: Slot[] = [];
  /** Whether a process that exits is restarted: on with start, off with stop and unmonitor. */
  private monitored = false;

  constructor(
    private readonly logRoot: string,
    private readonly policy: RestartPolicy,
    private readonly graceMs: number,
    private readonly onEvent: (e: SupervisorEvent) => void,
  ) {}

  /** Replaces what is supervised (stops the old set first). */
  async load(processes: SupervisedProcess[]): Promise<void> {
    await this.stop();
    this.slots = processes.map((spec) => ({ spec, state: 'stopped', crashes: [], restarts: 0 }));
  }

  get count(): number {
    return this.slots.length;
  }

  /** Monitors again and spawns every process that does not run. */
  start(): void {
    this.monitored = true;
    for (const slot of this.slots) {
      if (!slot.child && !slot.timer) {
        slot.crashes = [];
        this.spawn(slot);
      }
    }
  }

  async stop(): Promise<void> {
    this.monitored = false;
    await Promise.all(this.slots.map((s) => this.stopSlot(s)));
  }

  /**
   * BOSH's `monit unmonitor` before a drain: what runs keeps running, but a process that exits
   * from now on (a DEA whose instances have moved away) stays down, without a crash, until
   * stop, or start, which monitors again. A pending restart is cancelled.
   */
  unmonitor(): void {
    this.monitored = false;
    for (const slot of this.slots) {
      if (!slot.timer) continue;
      clearTimeout(slot.timer);
      slot.timer = undefined;
      slot.state = 'stopped';
    }
  }

  status(): ProcessStatus[] {
    const now = Date.now();
    return this.slots.map((s) => {
      const failing = isFailing(this.policy, recentCrashes(s.crashes, now, this.policy.windowMs).length);
      const state: ProcessState = s.state === 'stopped' ? 'stopped' : failing ? 'failing' : s.state;
      return {
        name: s.spec.def.name,
        job: s.spec.job,
        state,
        ...(s.child?.pid !== undefined && s.child.exitCode === null ? { pid: s.child.pid } : {}),
        restarts: s.restarts,
      };
    });
  }

  private spawn(slot: Slot): void {
    const { job, def, cwd, env } = slot.spec;
    const dir = join(this.logRoot, job);
    mkdirSync(dir, { recursive: true });
    const out = openSync(join(dir, `${def.name}.stdout.log`), 'a');
    const err = openSync(join(dir, `${def.name}.stderr.log`), 'a');
    let child: ChildProcess;
    try {
      child = spawn(def.executable, def.args, { cwd, env: { ...process.env, ...env, ...def.env }, stdio: ['ignore', out, err] });
    } finally {
      closeSync(out);
      closeSync(err);
    }
    slot.child = child;
    slot.state = def.ready ? 'starting' : 'running';
    if (def.ready) this.probeUntilReady(slot, child, def.ready.http);
    slot.exited = new Promise<void>((resolve) => {
      let done = false;
      const finish = (exit: string): void => {
        if (done) return;
        done = true;
        if (slot.child === child) slot.child = undefined;
        slot.probing?.abort();
        resolve();
        this.onExit(slot, exit);
      };
      child.once('error', (e) => finish(`could not start: ${e.message}`));
      child.once('exit', (code, signal) => finish(signal ? `killed by ${signal}` : `exit status ${code}`));
    });
  }

  /** Polls the URL until it answers 2xx (then the slot runs) or this child is gone. */
  private probeUntilReady(slot: Slot, child: ChildProcess, url: string): void {
    const probing = new AbortController();
    slot.probing = probing;
    const current = (): boolean => !probing.signal.aborted && slot.child === child && slot.state === 'starting';
    void (async () => {
      while (current()) {
        const ok = await fetch(url, { signal: AbortSignal.any([probing.signal, AbortSignal.timeout(PROBE_TIMEOUT_MS)]) }).then(
          async (res) => {
            await res.body?.cancel();
            return res.ok;
          },
          () => false,
        );
        if (ok && current()) {
          slot.state = 'running';
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, PROBE_EVERY_MS).unref());
      }
    })();
  }

  private onExit(slot: Slot, exit: string): void {
    if (slot.state === 'stopped') return;
    if (!this.monitored) {
      slot.state = 'stopped';
      this.onEvent({ type: 'exited', job: slot.spec.job, process: slot.spec.def.name, exit });
      return;
    }
    const now = Date.now();
    slot.crashes = recentCrashes([...slot.crashes, now], now, this.policy.windowMs);
    const delay = restartDelay(this.policy, slot.crashes.length);
    slot.state = 'starting';
    this.onEvent({ type: 'crashed', job: slot.spec.job, process: slot.spec.def.name, exit, restartInMs: delay });
    if (isFailing(this.policy, slot.crashes.length)) {
      this.onEvent({ type: 'failing', job: slot.spec.job, process: slot.spec.def.name, crashes: slot.crashes.length });
    }
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (!this.monitored || slot.state === 'stopped') return;
      slot.restarts++;
      this.spawn(slot);
    }, delay);
  }

  private async stopSlot(slot: Slot): Promise<void> {
    slot.state = 'stopped';
    slot.probing?.abort();
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    const child = slot.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    // A process that ignores SIGTERM gets SIGKILL after the grace (monit's stop timeout); one
    // that drains on SIGTERM for up to its stop_timeout_s is given that long.
    const afterMs = killAfterMs(this.graceMs, slot.spec.def);
    const killer = setTimeout(() => {
      this.onEvent({ type: 'killed', job: slot.spec.job, process: slot.spec.def.name, afterMs });
      child.kill('SIGKILL');
    }, afterMs);
    await slot.exited;
    clearTimeout(killer);
  }
}

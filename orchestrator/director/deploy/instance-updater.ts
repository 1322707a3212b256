// One instance's update on its VM: drain → stop → apply → start → watch until every job is
// running within the watch time. A job that does not come up is reported in one sentence that
// names the instance and the job and ends with the tail of its log (the agent's fetch_logs;
// what get_state says when the logs cannot be had).
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as tar from 'tar';
import type { AgentState, ApplySpec } from '../../agent/protocol.ts';
import type { WatchTime } from '../../manifest/mod.ts';
import type { AgentClient } from './agent-client.ts';
import type { DesiredInstance } from './types.ts';

export class InstanceUpdateError extends Error {
  override name = 'InstanceUpdateError';
  readonly code = 'instance_update_failed';
  constructor(
    readonly instance: string,
    readonly job: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface UpdaterDeps {
  agents: AgentClient;
  /** The file an agent's upload (fetch_logs) landed in, by its id. */
  uploadPath(id: string): string;
  tmpDir: string;
  log: (line: string) => void;
  /** apply, drain, stop (default 10 min: apply downloads packages). */
  taskTimeoutMs?: number;
  /** Between get_state polls while watching (default 1 s). */
  watchPollMs?: number;
  tailLines?: number;
}

export function applySpecOf(deployment: string, inst: DesiredInstance, jobBlobs: ReadonlyMap<string, string>): ApplySpec {
  return {
    deployment,
    name: inst.group,
    index: inst.index,
    id: inst.uuid,
    jobs: inst.jobs.map((j) => ({ name: j.name, version: j.digest.slice(0, 12), blobstore_id: jobBlobs.get(j.name) ?? j.digest, sha256: j.digest, properties: j.properties })),
    packages: inst.packages.map((p) => ({ name: p.name, version: p.version, blobstore_id: p.blobstore_id, sha256: p.sha256 })),
  };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason as Error)), { once: true });
  });

/** Whether every process runs and none restarted since the previous look (a crash loop can look running for a moment). */
export function watchVerdict(state: AgentState, previousRestarts: number | undefined): { running: boolean; stable: boolean; restarts: number } {
  const restarts = state.processes.reduce((n, p) => n + p.restarts, 0);
  const running = state.processes.length === 0 || (state.job_state === 'running' && state.processes.every((p) => p.state === 'running'));
  return { running, stable: running && previousRestarts === restarts, restarts };
}

/** Polls get_state until running and stable after min_ms; the last state seen when it gives up at max_ms. */
export async function watchUntilRunning(deps: UpdaterDeps, agentId: string, watch: WatchTime, signal: AbortSignal): Promise<{ ok: true } | { ok: false; state: AgentState | undefined; error?: Error }> {
  const started = Date.now();
  const poll = deps.watchPollMs ?? 1000;
  let previous: number | undefined;
  let last: AgentState | undefined;
  let error: Error | undefined;
  for (;;) {
    await sleep(Math.min(poll, Math.max(50, watch.min_ms)), signal);
    try {
      last = await deps.agents.state(agentId);
      error = undefined;
      const v = watchVerdict(last, previous);
      if (Date.now() - started >= watch.min_ms && v.stable) return { ok: true };
      previous = v.running ? v.restarts : undefined;
    } catch (err) {
      error = err as Error;
    }
    if (Date.now() - started > watch.max_ms) return { ok: false, state: last, ...(error ? { error } : {}) };
  }
}

/** The last lines of a job's process logs from the agent's fetch_logs tarball. */
export async function jobLogTail(deps: UpdaterDeps, agentId: string, job: string, lines: number): Promise<string | undefined> {
  const ref = (await deps.agents.task(agentId, 'fetch_logs', [], 60_000)) as { blobstore_id?: unknown } | null;
  if (typeof ref?.blobstore_id !== 'string') return undefined;
  const file = deps.uploadPath(ref.blobstore_id);
  const dir = await mkdtemp(join(deps.tmpDir, 'logs-'));
  try {
    await tar.x({ file, cwd: dir });
    const jobDir = join(dir, job);
    const files = (await readdir(jobDir).catch(() => [] as string[])).filter((f) => f.endsWith('.log')).sort((a, b) => (a.endsWith('stderr.log') ? -1 : 0) - (b.endsWith('stderr.log') ? -1 : 0));
    const parts: string[] = [];
    for (const f of files) {
      const text = (await readFile(join(jobDir, f), 'utf8')).trimEnd();
      if (!text) continue;
      parts.push(`${job}/${f}:\n${text.split('\n').slice(-lines).map((l) => `  ${l}`).join('\n')}`);
    }
    return parts.length ? parts.join('\n') : `(the logs of job ${job} are empty)`;
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(file, { force: true });
  }
}

function describeProcesses(state: AgentState | undefined): string {
  if (!state) return 'the agent did not report its state';
  if (state.processes.length === 0) return `job state ${state.job_state}, no processes`;
  return state.processes.map((p) => `process ${p.job}/${p.name} ${p.state}${p.restarts ? ` after ${p.restarts} restart${p.restarts === 1 ? '' : 's'}` : ''}`).join(', ');
}

export interface UpdateStep {
  (what: 'draining' | 'stopping' | 'applying' | 'starting' | 'watching'): void;
}

/**
 * Starts the jobs on agent `agentId` and watches until they run within `watch`; a job that does
 * not come up is an InstanceUpdateError `<doing> <label>: job … did not reach running …` ending
 * with its log tail. `firstJob` is named when get_state names none.
 */
export async function startAndWatch(deps: UpdaterDeps, doing: string, label: string, agentId: string, firstJob: string | undefined, watch: WatchTime, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  try {
    await deps.agents.request(agentId, 'start', []);
  } catch (err) {
    if (signal.aborted) throw err;
    throw new InstanceUpdateError(label, undefined, `${doing} ${label}: starting: ${(err as Error).message}`, { cause: err });
  }
  const result = await watchUntilRunning(deps, agentId, watch, signal);
  if (result.ok) return;
  const failed = result.state?.processes.find((p) => p.state !== 'running');
  const job = failed?.job ?? firstJob;
  let tail: string | undefined;
  if (job) {
    tail = await jobLogTail(deps, agentId, job, deps.tailLines ?? 15).catch((err: Error) => {
      deps.log(`${label}: fetching the logs of job ${job}: ${err.message}`);
      return undefined;
    });
  }
  const why = result.error ? `the agent did not answer get_state (${result.error.message})` : describeProcesses(result.state);
  throw new InstanceUpdateError(
    label,
    job,
    `${doing} ${label}: job ${job ?? '(none)'} did not reach running within ${watch.max_ms} ms (${why})${tail ? `. The end of its log:\n${tail}` : ''}`,
  );
}

/**
 * Updates the instance on agent `agentId`. `wasApplied` says whether it runs jobs to drain and
 * stop first; `drain: false` (`--skip-drain`) stops them without their drain scripts;
 * `start: false` (an instance stopped by `ingot stop`) applies and leaves it stopped.
 * Throws InstanceUpdateError naming the instance (and the job, when one failed).
 */
export async function updateInstanceOnVm(
  deps: UpdaterDeps,
  label: string,
  agentId: string,
  spec: ApplySpec,
  wasApplied: boolean,
  watch: WatchTime,
  signal: AbortSignal,
  /** Runs once the jobs are stopped, before apply (persistent disk changes). */
  beforeApply?: () => Promise<void>,
  o: { start?: boolean; drain?: boolean } = {},
): Promise<void> {
  const timeout = deps.taskTimeoutMs ?? 600_000;
  const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    signal.throwIfAborted();
    try {
      await fn();
    } catch (err) {
      if (signal.aborted) throw err;
      throw new InstanceUpdateError(label, undefined, `Updating instance ${label}: ${what}: ${(err as Error).message}`, { cause: err });
    }
  };
  if (wasApplied) {
    if (o.drain === false) deps.log(`${label}: drain skipped (--skip-drain)`);
    else await step('draining', () => deps.agents.task(agentId, 'drain', ['update'], timeout, signal));
    await step('stopping', () => deps.agents.task(agentId, 'stop', [], timeout, signal));
  }
  if (beforeApply) await step('changing the persistent disk', beforeApply);
  await step('applying', () => deps.agents.apply(agentId, spec, timeout, signal));
  if (o.start === false) return deps.log(`${label}: applied and left stopped (its desired state is stopped)`);
  await startAndWatch(deps, 'Updating instance', label, agentId, spec.jobs[0]?.name, watch, signal);
}

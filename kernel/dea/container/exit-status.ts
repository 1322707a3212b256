// Turns how a container's process ended into the reason and sentence a DEA reports as
// exit_description. Pure.

import { constants } from 'node:os';
import type { ExitInfo } from './types.ts';

export interface ExitFacts {
  /** Exit status of the launcher (the container init's, which passes on the app's). */
  code: number | null;
  /** Signal that ended the launcher. */
  signal: string | null;
  /** The cgroup's OOM-kill counter rose while the process ran. */
  oomKilled: boolean;
  /** The DEA asked it to stop, with this reason. */
  stopReason: string | null;
}

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n as number, name]));

/** A shell reports death by signal N as status 128+N. */
export function signalOfStatus(code: number | null): string | null {
  if (code === null || code <= 128 || code >= 128 + 65) return null;
  return SIGNAL_NAMES.get(code - 128) ?? `signal ${code - 128}`;
}

export function describeExit(f: ExitFacts): ExitInfo {
  const base = { exitStatus: f.code, signal: f.signal };
  if (f.oomKilled) return { ...base, reason: 'out of memory', description: 'out of memory' };
  if (f.stopReason !== null) return { ...base, reason: 'stopped', description: f.stopReason };
  const signal = f.signal ?? signalOfStatus(f.code);
  if (signal) return { ...base, reason: 'killed', description: `app instance was killed by ${signal}` };
  if (f.code !== null) return { ...base, reason: 'exited', description: `app instance exited with status ${f.code}` };
  return { ...base, reason: 'unknown', description: 'app instance is gone; its exit status is unknown' };
}

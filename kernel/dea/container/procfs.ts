// Reading processes from /proc: to recognise a container's launcher after a DEA restart (pid
// plus start time, since pids are reused) and to measure isolation-`none` instances, which
// have no cgroup.

import { readFile, readdir } from 'node:fs/promises';

export interface ProcStat {
  pid: number;
  ppid: number;
  pgid: number;
  /** Clock ticks since boot. */
  startTime: number;
  /** User + system clock ticks. */
  cpuTicks: number;
  rssPages: number;
}

/** Parses /proc/<pid>/stat; the command name may hold spaces and parentheses. */
export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const pid = Number(text.slice(0, text.indexOf(' ')));
  const f = text.slice(close + 2).trim().split(' ');
  // After "(comm) ": state=0 ppid=1 pgrp=2 … utime=11 stime=12 … starttime=19 vsize=20 rss=21
  const num = (i: number) => Number(f[i]);
  if (f.length < 22) return null;
  return { pid, ppid: num(1), pgid: num(2), startTime: num(19), cpuTicks: num(11) + num(12), rssPages: num(21) };
}

export async function readProcStat(pid: number): Promise<ProcStat | null> {
  try {
    return parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** True when `pid` is alive and is still the process that started at `startTime`. */
export async function isSameProcess(pid: number, startTime: number): Promise<boolean> {
  const s = await readProcStat(pid);
  return s !== null && s.startTime === startTime && !(await isZombie(pid));
}

async function isZombie(pid: number): Promise<boolean> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

export async function allProcesses(): Promise<ProcStat[]> {
  const out: ProcStat[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = await readProcStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

// Linux reports clock ticks at USER_HZ, 100 on every mainstream architecture.
export const USER_HZ = 100;
export const PAGE_SIZE = 4096;

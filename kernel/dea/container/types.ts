// Public shapes of the container layer: host options as a caller writes them, the compiled
// (validated, defaulted) form the rest of the module trusts, and what containers report.

import type { Readable } from 'node:stream';

export type IsolationMode = 'namespaces' | 'none';

/** A destination containers may (allow) or may not (deny) reach; no ports = every port. */
export interface EgressRule {
  cidr: string;
  ports?: number[];
}

export interface NetworkOptions {
  /** Pool the containers' addresses come from, cut in /30s (e.g. 10.254.3.0/24 → 64 slots). */
  subnet: string;
  /** The DEA's address that routers reach; container ports are mapped on it. */
  hostAddress: string;
  /** Host ports handed out to containers: [start, start + count). */
  hostPorts: { start: number; count: number };
  /** The port the app listens on inside its container (PORT). */
  containerPort?: number;
  /** Also map 127.0.0.1:<hostPort> for traffic the host itself originates. Default true. */
  mapLoopback?: boolean;
  /** Platform addresses containers must not reach (NATS, director, internals, …). */
  deny?: EgressRule[];
  /** Service addresses containers may reach, even on the DEA host or inside a denied range. */
  allow?: EgressRule[];
}

export interface HostOptions {
  /** Carried by every kernel object this host creates: [a-z0-9-], 1–20 chars, starts with a letter. */
  prefix: string;
  /** Directory holding one sub-directory per container; never visible inside a container. */
  dataDir: string;
  isolation?: IsolationMode;
  network: NetworkOptions;
  /** Unprivileged uids for containers: [start, start + count), one per container. */
  uidRange: { start: number; count: number };
  /** Cgroup parent path relative to each controller's root; containers go in <parent>/<prefix>/<id>. */
  cgroupParent?: string;
  /** Root of the cgroup filesystem (a fixture tree in tests). */
  cgroupRoot?: string;
}

export interface CompiledHostOptions {
  prefix: string;
  dataDir: string;
  isolation: IsolationMode;
  network: {
    subnet: { base: number; bits: number };
    subnetText: string;
    hostAddress: string;
    hostPorts: { start: number; count: number };
    containerPort: number;
    mapLoopback: boolean;
    deny: CompiledEgressRule[];
    allow: CompiledEgressRule[];
  };
  uidRange: { start: number; count: number };
  cgroupParent: string;
  cgroupRoot: string;
}

export interface CompiledEgressRule {
  cidr: string;
  ports: number[];
}

export interface ContainerSpec {
  /** Unique on this host: [A-Za-z0-9_.-], 1–64 chars (an instance id). */
  id: string;
  memoryBytes: number;
  diskBytes: number;
  /** Processes the app may run at once (the container's own launcher and init come on top). */
  pids: number;
  cpuShares?: number;
  /** Host directory bound at /home/vcap/app; chowned to the container's uid on first spawn.
   *  Omitted: an empty one inside the container directory (see Container.paths.app). */
  appDir?: string;
  /** Container hostname; defaults to the id. */
  hostname?: string;
  /** Default environment of every process spawned in the container. */
  env?: Record<string, string>;
  /** More host directories shown inside (staging's cache, deps and buildpacks). */
  binds?: Bind[];
}

/** A host directory bound into a container at `target`: under /tmp or /home/vcap, but not in
 *  /home/vcap/app (the app directory stays exactly the droplet's). */
export interface Bind {
  source: string;
  target: string;
  readOnly?: boolean;
}

export interface SpawnOptions {
  /** Shell command, run by /bin/sh -c. */
  command: string;
  env?: Record<string, string>;
  /** Working directory as seen inside the container; default /home/vcap/app. */
  cwd?: string;
  /** Called for each line of stdout/stderr that passes the rate limit (stdout/stderr then are consumed). */
  onLine?: (stream: 'stdout' | 'stderr', line: string) => void;
  /** Lines per second admitted to onLine for this instance, both streams together. Default 100, burst 2×. */
  logLinesPerSecond?: number;
}

export type ExitReason = 'out of memory' | 'stopped' | 'exited' | 'killed' | 'unknown';

export interface ExitInfo {
  /** Exit status of the container's init (the app's status; 128+N when the app died by signal N). */
  exitStatus: number | null;
  /** Signal that ended the container's launcher, if any. */
  signal: string | null;
  reason: ExitReason;
  /** One sentence for exit_description. */
  description: string;
}

export interface ContainerProcess {
  /** Host pid of the container's launcher; the container's process tree hangs below it. */
  pid: number;
  /** The app's output; null when onLine consumes it, or when the container was recovered
   *  after a DEA restart (the pipes died with the old DEA). Unread output holds the app up. */
  stdout: Readable | null;
  stderr: Readable | null;
  exited: Promise<ExitInfo>;
  /** Lines dropped by the log rate limit so far. */
  droppedLogLines(): number;
}

export interface ContainerStats {
  /** Working set: usage minus inactive file cache. */
  memoryBytes: number;
  cpuNanos: number;
  diskBytes: number;
}

export interface DiskCheck {
  usedBytes: number;
  quotaBytes: number;
  overQuota: boolean;
  /** False when the walk hit its entry bound before finishing (usedBytes is then a lower bound). */
  complete: boolean;
}

export interface IsolationSupport {
  ok: boolean;
  missing: string[];
}

export interface SweepReport {
  processes: number;
  netns: string[];
  links: string[];
  nftTables: string[];
  cgroups: string[];
}

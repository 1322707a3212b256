// The DEA's container layer: one isolated container per app instance (namespaces, an
// unprivileged uid, cgroup limits, a private network with a mapped port and filtered egress).
// See DESIGN.md §4. Dependency direction: host → container → launcher/cgroups/network → pure
// helpers; nothing here knows about NATS or the DEA protocol.

export { ContainerHost } from './host.ts';
export { Container, DEFAULT_GRACE_MS, DEFAULT_LOG_LINES_PER_SECOND, type ContainerPaths } from './container.ts';
export { sweep, type SweepOptions } from './sweep.ts';
export {
  assessIsolation,
  checkIsolationSupport,
  isolationRefusal,
  probeIsolation,
  type IsolationProbe,
} from './isolation-support.ts';
export { LogRateLimiter, LineSplitter, pipeLines, droppedNotice, type Admission } from './log-limiter.ts';
export { diskUsage, assessDisk, type DiskUsage } from './disk-usage.ts';
export { openCgroups, detectCgroupVersion, type CgroupDriver, type CgroupStats } from './cgroups.ts';
export { renderTable, type RulesetInput, type PortMapping } from './nft-ruleset.ts';
export { describeExit } from './exit-status.ts';
export { compileHostOptions, compileContainerSpec } from './options.ts';
export { netnsName, vethName, nftTableName, cgroupPath } from './names.ts';
export * from './errors.ts';
export type * from './types.ts';

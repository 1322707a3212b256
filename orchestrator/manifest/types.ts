// The public shapes of the manifest package, in one place for readers and importers.
export type { Problem } from './errors.ts';
export type { YamlSource, PathKey, Loc } from './yaml-source.ts';
export type { Manifest, ManifestInstanceGroup, ManifestJob, UpdatePolicy, WatchTime, MaxInFlight } from './deployment-manifest.ts';
export type { CloudConfig, Subnet } from './cloud-config.ts';
export type { VariableDefinition, VariableStore, VariableType } from './variables.ts';
export type { JobSpec, LinkData, LinkInstance } from './links.ts';
export type { Deployment, PlannedInstanceGroup, PlannedInstance, PlannedJob, PlannedNetwork } from './validate.ts';

// The local CPI: VMs as namespaces on this machine (DESIGN.md §4).
export { LocalCpi, createLocalCpi, STEMCELL_FORMAT } from './cpi.ts';
export { compileConfig, type LocalCpiConfig } from './config.ts';
export { sweep, type SweepOptions, type SweepReport } from './sweep.ts';
export { renderSettings, type AgentSettings } from './agent-settings.ts';

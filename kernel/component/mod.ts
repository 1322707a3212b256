// What every kernel component shares: config, status server, announce, lifecycle, logs.
export { commonConfig, componentConfig, loadConfig, parseConfig, formatPath, type CommonConfig } from './config.ts';
export { ConfigError, ComponentError } from './errors.ts';
export { createLogger, type Logger } from './logger.ts';
export { counter, gauge, labelled, renderPrometheus, type Metric } from './metrics.ts';
export { StatusServer, type StatusRoute } from './status-server.ts';
export { startComponent, runComponentProcess, redact, type ComponentHandle } from './runtime.ts';
export { defineComponent, type ComponentDefinition, type ComponentContext, type RunningComponent } from './types.ts';
export { formatUptime } from './announce.ts';

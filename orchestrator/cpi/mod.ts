// The CPI package: the interface, its errors, the external door and the registry.
export type * from './types.ts';
export * from './errors.ts';
export { parseRequest, argumentSchemas, type CpiCall } from './request.ts';
export { runExternalCpi, loadConfigFile, readAll } from './external.ts';
export { cpiRegistry, cpiNames } from './registry.ts';

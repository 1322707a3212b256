// The kernel components `ingot component <name>` can start, by folder name. Loaded lazily
// so a process pulls in only its own component's code.
import type { ComponentDefinition } from './component/mod.ts';

export type ComponentLoader = () => Promise<ComponentDefinition>;

export const kernelComponents: Record<string, ComponentLoader> = {
  blobstore: async () => (await import('./blobstore/component.ts')).default,
  ccdb: async () => (await import('./ccdb/component.ts')).default,
  'cloud-controller': async () => (await import('./cloud-controller/component.ts')).default,
  dea: async () => (await import('./dea/component.ts')).default,
  'health-manager': async () => (await import('./health-manager/component.ts')).default,
  router: async () => (await import('./router/component.ts')).default,
  'service-gateway': async () => (await import('./services/gateway/component.ts')).default,
  'service-node': async () => (await import('./services/node/component.ts')).default,
};

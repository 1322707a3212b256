// The kernel bus: a typed NATS connection and the catalogue of kernel subjects.
export { Bus, describeZod, type BusOptions, type BusStats, type Inbound, type SubscribeOptions } from './bus.ts';
export { BusError } from './errors.ts';
export * from './subjects.ts';
export { vcapServices } from './vcap-services.ts';

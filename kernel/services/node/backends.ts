// The service backends a node can run, by label; each loaded only by the node that runs it.
import type { BackendFactory } from './types.ts';

export const backends: Record<string, () => Promise<BackendFactory>> = {
  redis: async () => (await import('../nodes/redis/backend.ts')).createRedisBackend,
  rabbitmq: async () => (await import('../nodes/rabbitmq/backend.ts')).createRabbitmqBackend,
  postgresql: async () => (await import('../nodes/postgresql/backend.ts')).createPostgresBackend,
  mysql: async () => (await import('../nodes/mysql/backend.ts')).createMysqlBackend,
};

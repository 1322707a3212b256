// The Redis service gateway against the OSB conformance suite (test/helpers/osb-conformance.ts),
// with everything real: a nats-server, a Redis service node making real redis-servers, and
// the gateway, each started as `ingot component …`.
import anyTest, { type TestFn } from 'ava';
import { NatsServer } from '../helpers/nats-server.ts';
import { registerOsbConformance } from '../helpers/osb-conformance.ts';
import { gatewayHears, redisPidsUnder, startGateway, startNode, type RunningGateway, type RunningNode } from '../helpers/services-redis.ts';

interface Ctx {
  nats: NatsServer;
  node: RunningNode;
  gateway: RunningGateway;
}

const test = anyTest as TestFn<Ctx>;
let ctx: Partial<Ctx> = {};

test.before(async () => {
  ctx.nats = await NatsServer.start();
  ctx.node = await startNode(ctx.nats, { nodeId: 'conformance-node', capacity: 20 });
  ctx.gateway = await startGateway(ctx.nats, 'conformance');
  await gatewayHears(ctx.gateway, [ctx.node.nodeId]);
});

// Registered first so its own clean-up (deprovisioning) runs while the gateway still lives.
registerOsbConformance(test, () => ctx.gateway!.broker);

test.after.always(async () => {
  await ctx.gateway?.proc.kill('SIGTERM');
  await ctx.node?.proc.kill('SIGTERM');
  await ctx.nats?.stop();
  // Whatever happened, no redis-server outlives the test.
  if (ctx.node) for (const pid of await redisPidsUnder(ctx.node.baseDir)) process.kill(pid, 'SIGKILL');
});

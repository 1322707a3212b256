// Discovery of components (vcap.component.*): every component announces itself at start and
// after every reconnect, and answers discover requests, so monitoring finds it without any
// static address.
import type { Bus, ComponentAnnounce } from '../bus/mod.ts';
import { replies, subjects } from '../bus/mod.ts';

export function startAnnouncing(bus: Bus, describe: () => ComponentAnnounce): () => void {
  const announce = (): void => bus.publish(subjects.componentAnnounce, describe());
  const unsubscribe = bus.subscribe(subjects.componentDiscover, (msg, ctx) => {
    const me = describe();
    if (msg.type !== undefined && msg.type !== me.type) return;
    if (ctx.reply) bus.respond(ctx.reply, replies.componentDiscover, me);
  });
  announce();
  bus.onReconnected(announce);
  return unsubscribe;
}

/** Cloud Foundry's uptime format: `1d:2h:3m:4s`. */
export function formatUptime(ms: number): string {
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${d}d:${h}h:${m}m:${s}s`;
}

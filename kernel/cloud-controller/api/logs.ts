// An app's logs: the recent lines the controller kept from `logs.<app_id>`, and a live
// stream as server-sent events (text/event-stream) — each line one `event: log` whose data
// is the bus message as JSON; a comment every 15 s keeps proxies from closing it.
import { z } from 'zod';
import type { LogLine } from '../../bus/mod.ts';
import { parseQuery } from '../http/query.ts';
import type { ApiServer } from '../http/server.ts';
import { ok } from './common.ts';
import type { Deps } from './deps.ts';
import { scope } from './scope.ts';

const KEEPALIVE_MS = 15_000;
const count = z.string().regex(/^\d+$/, 'must be a non-negative integer').transform(Number);

export function registerLogs(server: ApiServer, d: Deps): void {
  const s = scope(d.store);
  server.route('GET', '/v3/apps/:guid/logs/recent', 'user', async (ctx) => {
    const app = await s.app(ctx, ctx.params.guid!, 'read');
    const q = parseQuery(ctx.query, z.object({ limit: count.optional() }).strict());
    return ok({ resources: d.logs.recent(app.guid, q.limit) });
  });

  server.route('GET', '/v3/apps/:guid/logs/stream', 'user', async (ctx) => {
    const app = await s.app(ctx, ctx.params.guid!, 'read');
    const q = parseQuery(ctx.query, z.object({ recent: count.optional() }).strict());
    const { req, res } = ctx;
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    const write = (line: LogLine): void => {
      res.write(`event: log\ndata: ${JSON.stringify(line)}\n\n`);
    };
    if (q.recent) for (const line of d.logs.recent(app.guid, q.recent)) write(line);
    res.write(': connected\n\n');
    const unlisten = d.logs.listen(app.guid, write);
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    keepalive.unref();
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearInterval(keepalive);
        unlisten();
        offShutdown();
        resolve();
      };
      // A draining controller ends the stream; clients reconnect to another one.
      const offShutdown = ctx.onShutdown(() => {
        res.end();
        done();
      });
      req.once('close', done);
      res.once('close', done);
    });
    return { handled: true };
  });
}

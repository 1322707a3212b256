// The health monitor's API: GET /events (BOSH's events: newest first, by deployment, paged
// with before_id) and GET/PUT /resurrection (BOSH's `{resurrection_paused}`): the switch
// `ingot update-resurrection on|off` turns, kept in the store so it outlives a restart.
import { z } from 'zod';
import { readJson } from '../../kernel/cloud-controller/http/body.ts';
import { parseQuery } from '../../kernel/cloud-controller/http/query.ts';
import type { ApiServer } from '../../kernel/cloud-controller/http/server.ts';
import type { DirectorConfig } from '../director/config.ts';
import type { DirectorStore } from '../director/store.ts';
import { RESURRECTION_PAUSED } from './health-monitor.ts';

const positive = (name: string) => z.string().regex(/^\d+$/, `${name} must be a positive integer`).transform(Number).refine((n) => n >= 1, `${name} must be at least 1`);
const ResurrectionBody = z.object({ resurrection_paused: z.boolean() }).strict();

export function registerHealthMonitorRoutes(api: ApiServer, d: { store: DirectorStore; config: DirectorConfig['health_monitor'] }): void {
  api.route('GET', '/events', 'user', async (ctx) => {
    const q = parseQuery(
      ctx.query,
      z.object({ deployment: z.string().min(1).optional(), action: z.string().min(1).optional(), before_id: positive('before_id').optional(), limit: positive('limit').default('200') }).strict(),
    );
    const list = await d.store.events({ ...(q.deployment ? { deployment: q.deployment } : {}), ...(q.action ? { action: q.action } : {}), ...(q.before_id ? { beforeId: q.before_id } : {}), limit: Math.min(q.limit, 1000) });
    return { status: 200, body: list };
  });

  const state = async () => ({
    resurrection_paused: (await d.store.setting(RESURRECTION_PAUSED)) === 'true',
    /** The director's config: false means resurrection is off whatever the switch says. */
    resurrection_configured: d.config.enabled && d.config.resurrection,
  });
  api.route('GET', '/resurrection', 'user', async () => ({ status: 200, body: await state() }));
  api.route('PUT', '/resurrection', 'user', async (ctx) => {
    const body = await readJson(ctx.req, ResurrectionBody);
    await d.store.setSetting(RESURRECTION_PAUSED, String(body.resurrection_paused));
    return { status: 200, body: await state() };
  });
}

// The API's entry points: `/` (where everything is, CF-style), `/v3` (the resources) and
// `/v3/info` (this platform: name, version, domains, default stack). No authentication.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AppEventRecord } from '../db/mod.ts';
import { csv, listQuery } from '../http/query.ts';
import type { ApiServer } from '../http/server.ts';
import { presentAuditEvent } from '../presenters.ts';
import { within } from '../access.ts';
import { listOf, ok } from './common.ts';
import type { Deps } from './deps.ts';
import { scope } from './scope.ts';

const VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

const V3_RESOURCES = ['apps', 'audit_events', 'builds', 'domains', 'droplets', 'organizations', 'packages', 'processes', 'resource_match', 'roles', 'routes', 'spaces', 'users'];

export function registerRoot(server: ApiServer, d: Deps): void {
  server.route('GET', '/', 'none', async ({ baseUrl }) =>
    ok({
      links: {
        self: { href: baseUrl },
        cloud_controller_v2: null,
        cloud_controller_v3: { href: `${baseUrl}/v3`, meta: { version: VERSION } },
        login: { href: baseUrl },
        uaa: { href: baseUrl },
        token: { href: `${baseUrl}/oauth/token` },
        logging: null,
        log_stream: null,
        app_ssh: null,
        network_policy_v0: null,
        network_policy_v1: null,
      },
    }),
  );

  server.route('GET', '/v3', 'none', async ({ baseUrl }) =>
    ok({ links: { self: { href: `${baseUrl}/v3` }, info: { href: `${baseUrl}/v3/info` }, ...Object.fromEntries(V3_RESOURCES.map((r) => [r, { href: `${baseUrl}/v3/${r}` }])) } }),
  );

  server.route('GET', '/v3/info', 'none', async ({ baseUrl }) =>
    ok({
      build: VERSION,
      cli_version: { minimum: null, recommended: null },
      custom: { system_domain: d.domains.system, apps_domain: d.domains.apps, default_stack: d.config.default_stack, max_upload_mb: d.config.max_upload_mb },
      description: 'Ingot cloud controller',
      name: 'ingot',
      version: 3,
      links: { self: { href: `${baseUrl}/v3/info` }, support: null },
    }),
  );

  // Events of apps (crashes reported on droplet.exited), CF's audit_events shape; an event is
  // readable where its app is.
  const s = scope(d.store);
  server.route('GET', '/v3/audit_events', 'user', (ctx) =>
    listOf(
      ctx,
      d.store.appEvents,
      listQuery({ target_guids: csv.optional(), types: csv.optional() }),
      async (q) => ({ app_guid: within(q.target_guids, await s.appWhere(ctx)), type: q.types }),
      async (e: AppEventRecord) => presentAuditEvent(e, (await d.store.apps.get(e.app_guid))?.name ?? '', ctx.baseUrl),
    ),
  );
  server.route('GET', '/v3/audit_events/:guid', 'user', async (ctx) => {
    const e = await s.ofApp(ctx, d.store.appEvents, ctx.params.guid!, 'Audit event', 'read');
    return ok(presentAuditEvent(e, (await d.store.apps.get(e.app_guid))?.name ?? '', ctx.baseUrl));
  });
}

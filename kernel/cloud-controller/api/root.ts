// The API's entry points: `/` (where everything is, CF-style), `/v3` (the resources) and
// `/v3/info` (this platform: name, version, domains, default stack). No authentication.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ApiServer } from '../http/server.ts';
import { ok } from './common.ts';
import type { Deps } from './deps.ts';

const VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

const V3_RESOURCES = ['apps', 'audit_events', 'builds', 'domains', 'droplets', 'organization_quotas', 'organizations', 'packages', 'processes', 'resource_match', 'roles', 'routes', 'space_quotas', 'spaces', 'users'];

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
}

// The platform's smoke tests, each a question a user's first push depends on: is every NATS
// server up, does the controller answer and let the admin in, does every router route, do the
// DEAs advertise room, does a health manager answer. Each check is bounded and reports one
// line; none changes anything.
import { connect, type NatsConnection } from 'nats';
import type { z } from 'zod';
import { replies, subjects } from '../bus/mod.ts';
import { INGOT_VERSION } from '../component/version.ts';
import type { SmokeTestConfig } from './config.ts';

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

type Check = { name: string; run: (c: SmokeTestConfig, nc: () => Promise<NatsConnection>) => Promise<string> };

const json = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

/** A message that is JSON of the schema, else undefined (another sender's garbage is not a DEA). */
function parseJson<S extends z.ZodTypeAny>(data: Uint8Array, schema: S): z.output<S> | undefined {
  try {
    const r = schema.safeParse(JSON.parse(new TextDecoder().decode(data)));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

async function fetchWithin(url: string, timeoutS: number, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(timeoutS * 1000) });
}

const checks: Check[] = [
  {
    name: 'every NATS server accepts the kernel credentials',
    run: async (c) => {
      await Promise.all(
        c.nats.servers.map(async (server) => {
          const nc = await connect({ servers: [server], user: c.nats.user, pass: c.nats.password, timeout: c.timeout_s * 1000, maxReconnectAttempts: 0 }).catch((err: Error) => {
            throw new Error(`${new URL(server).host}: ${err.message}`);
          });
          await nc.flush();
          await nc.close();
        }),
      );
      return `${c.nats.servers.length} servers`;
    },
  },
  {
    name: 'the cloud controller answers and lets the admin in',
    run: async (c) => {
      const info = await fetchWithin(`${c.cloud_controller.url}/v3/info`, c.timeout_s);
      if (info.status !== 200) throw new Error(`GET /v3/info: HTTP ${info.status}`);
      const form = new URLSearchParams({ grant_type: 'password', username: c.cloud_controller.admin.user, password: c.cloud_controller.admin.password });
      const token = await fetchWithin(`${c.cloud_controller.url}/oauth/token`, c.timeout_s, { method: 'POST', body: form });
      if (token.status !== 200) throw new Error(`POST /oauth/token as ${c.cloud_controller.admin.user}: HTTP ${token.status}`);
      const { access_token } = (await token.json()) as { access_token?: string };
      const apps = await fetchWithin(`${c.cloud_controller.url}/v3/apps`, c.timeout_s, { headers: { Authorization: `bearer ${access_token}` } });
      if (apps.status !== 200) throw new Error(`GET /v3/apps with the admin's token: HTTP ${apps.status}`);
      const { pagination } = (await apps.json()) as { pagination?: { total_results?: number } };
      return `${pagination?.total_results ?? 0} apps`;
    },
  },
  {
    name: 'every router is healthy and routes (an unknown host gets 404)',
    run: async (c) => {
      await Promise.all(
        c.routers.map(async (r) => {
          const host = r.proxy.slice(0, r.proxy.lastIndexOf(':'));
          const health = await fetchWithin(`http://${host}:${r.status_port}/healthz`, c.timeout_s);
          if (health.status !== 200) throw new Error(`${host}: /healthz answered ${health.status}`);
          const proxied = await fetchWithin(`http://${r.proxy}/`, c.timeout_s, { headers: { Host: 'ingot-smoke-test.invalid' } });
          await proxied.body?.cancel();
          if (proxied.status !== 404) throw new Error(`${r.proxy}: an unknown host got ${proxied.status}, not 404`);
        }),
      );
      return `${c.routers.length} routers`;
    },
  },
  {
    name: 'the DEAs advertise themselves',
    run: async (c, nc) => {
      const conn = await nc();
      const seen = new Set<string>();
      const sub = conn.subscribe(subjects.deaAdvertise.subject);
      const timer = setTimeout(() => sub.unsubscribe(), c.timeout_s * 1000);
      for await (const m of sub) {
        const ad = parseJson(m.data, subjects.deaAdvertise.schema);
        if (ad) seen.add(ad.dea_id);
        if (seen.size >= Math.max(1, c.min_deas)) break;
      }
      clearTimeout(timer);
      sub.unsubscribe();
      if (seen.size < c.min_deas) throw new Error(`${seen.size} of ${c.min_deas} DEAs advertised within ${c.timeout_s} s`);
      return `${seen.size} advertising`;
    },
  },
  {
    name: 'a health manager answers',
    run: async (c, nc) => {
      const conn = await nc();
      const reply = await conn.request(subjects.healthmanagerHealth.subject, json({ droplets: [] }), { timeout: c.timeout_s * 1000 });
      if (!parseJson(reply.data, replies.healthmanagerHealth)) throw new Error('healthmanager.health: the reply is not what DESIGN.md §3 says');
      return 'healthmanager.health answered';
    },
  },
  {
    // After a deploy of a new release: nothing still runs the old one (the errand itself is
    // installed from the deployed release, so its version is the one expected).
    name: 'every kernel component runs this release',
    run: async (c, nc) => {
      const found = await discoverComponents(await nc(), c.timeout_s);
      if (found.length === 0) throw new Error('no component answered vcap.component.discover');
      const behind: string[] = [];
      await Promise.all(
        found.map(async (a) => {
          const auth = Buffer.from(`${a.credentials[0]}:${a.credentials[1]}`).toString('base64');
          const res = await fetchWithin(`http://${a.host}/varz`, c.timeout_s, { headers: { Authorization: `Basic ${auth}` } }).catch((err: Error) => {
            throw new Error(`${a.type}/${a.index} (${a.host}): ${err.message}`);
          });
          if (res.status !== 200) throw new Error(`${a.type}/${a.index} (${a.host}): /varz answered ${res.status}`);
          const { version } = (await res.json()) as { version?: unknown };
          if (version !== INGOT_VERSION) behind.push(`${a.type}/${a.index} runs ${String(version)}`);
        }),
      );
      if (behind.length > 0) throw new Error(`not on ${INGOT_VERSION}: ${behind.sort().join(', ')}`);
      return `${found.length} components on ${INGOT_VERSION}`;
    },
  },
];

/**
 * Every component's answer to vcap.component.discover: collected until none came for half a
 * second (the answers arrive together), at most `timeoutS`.
 */
async function discoverComponents(conn: NatsConnection, timeoutS: number): Promise<Array<z.output<typeof replies.componentDiscover>>> {
  const inbox = conn.subscribe(`_INBOX.smoke.${Math.random().toString(36).slice(2)}`);
  const byUuid = new Map<string, z.output<typeof replies.componentDiscover>>();
  const deadline = Date.now() + timeoutS * 1000;
  let quiet: NodeJS.Timeout | undefined;
  const settle = (): void => {
    clearTimeout(quiet);
    quiet = setTimeout(() => inbox.unsubscribe(), Math.min(500, Math.max(0, deadline - Date.now())));
  };
  const hardStop = setTimeout(() => inbox.unsubscribe(), timeoutS * 1000);
  conn.publish(subjects.componentDiscover.subject, json({}), { reply: inbox.getSubject() });
  // The first answers may take a moment; quiet time counts only once one came.
  quiet = setTimeout(() => inbox.unsubscribe(), Math.min(timeoutS * 1000, 3000));
  for await (const m of inbox) {
    const a = parseJson(m.data, replies.componentDiscover);
    if (a) byUuid.set(a.uuid, a);
    settle();
  }
  clearTimeout(quiet);
  clearTimeout(hardStop);
  return [...byUuid.values()];
}

/** Runs every check (one NATS connection shared by those that need one); never throws. */
export async function runSmokeTests(config: SmokeTestConfig, onResult: (r: CheckResult) => void = () => undefined): Promise<CheckResult[]> {
  let shared: Promise<NatsConnection> | undefined;
  const nc = (): Promise<NatsConnection> =>
    (shared ??= connect({ servers: config.nats.servers, user: config.nats.user, pass: config.nats.password, timeout: config.timeout_s * 1000 }));
  const results: CheckResult[] = [];
  try {
    for (const check of checks) {
      const r = await check.run(config, nc).then(
        (detail) => ({ name: check.name, ok: true, detail }),
        (err: Error) => ({ name: check.name, ok: false, detail: err.message }),
      );
      results.push(r);
      onResult(r);
    }
  } finally {
    if (shared) await (await shared.catch(() => undefined))?.close();
  }
  return results;
}

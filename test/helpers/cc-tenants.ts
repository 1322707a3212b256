// Tenants of a test controller, set up through the API as an admin would: users logged in,
// roles given, apps staged by a TestStager (cc-peers.ts) and ready to start. Each call fails
// with what it was doing and the controller's answer.
import type { ApiClient, Controller } from './cc-controller.ts';
import { multipart, zipOf } from './cc-controller.ts';
import { eventually, runCli } from './component-process.ts';
import { scratchDir } from './tmp.ts';

/** The body of an answer with `status`, or an error saying what failed and how. */
export async function must(res: Promise<{ status: number; body: any }>, status: number, what: string): Promise<any> {
  const r = await res;
  if (r.status !== status) throw new Error(`${what}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A new user (password `NAME-password`), logged in. */
export async function addUser(cc: Controller, name: string): Promise<{ guid: string; api: ApiClient }> {
  const guid = (await must(cc.admin.post('/v3/users', { username: name, password: `${name}-password` }), 201, `user ${name}`)).guid as string;
  return { guid, api: cc.anonymous.withToken(await cc.anonymous.login(name, `${name}-password`)) };
}

/** Gives a role in an org or a space, as `by` (the admin unless said). */
export function giveRole(by: ApiClient, type: string, userGuid: string, target: { organization?: string; space?: string }): Promise<any> {
  const where = target.organization ? { organization: { data: { guid: target.organization } } } : { space: { data: { guid: target.space } } };
  return must(by.post('/v3/roles', { type, relationships: { user: { data: { guid: userGuid } }, ...where } }), 201, `${type} for ${userGuid}`);
}

/** An org and a space in it, made by the admin. */
export async function orgWithSpace(cc: Controller, org: string, space: string): Promise<{ org: any; space: any }> {
  const o = await must(cc.admin.post('/v3/organizations', { name: org }), 201, `org ${org}`);
  const s = await must(cc.admin.post('/v3/spaces', { name: space, relationships: { organization: { data: { guid: o.guid } } } }), 201, `space ${space}`);
  return { org: o, space: s };
}

export const TINY_APP = { 'server.js': 'require("http").createServer().listen(process.env.PORT)' };

/** An app in the space with its bits uploaded, staged (a TestStager must be on the bus) and its droplet current. */
export async function stagedApp(api: ApiClient, name: string, spaceGuid: string, extra: Record<string, unknown> = {}): Promise<{ app: any; pkg: any; build: any; droplet: string }> {
  const app = await must(api.post('/v3/apps', { name, relationships: { space: { data: { guid: spaceGuid } } }, ...extra }), 201, `app ${name}`);
  const pkg = await must(api.post('/v3/packages', { type: 'bits', relationships: { app: { data: { guid: app.guid } } } }), 201, `package of ${name}`);
  const form = multipart({}, { field: 'bits', filename: 'app.zip', content: await zipOf(TINY_APP) });
  await must(api.post(`/v3/packages/${pkg.guid}/upload`, form.body, { 'content-type': form.contentType }), 200, `upload of ${name}`);
  const build = await must(api.post('/v3/builds', { package: { guid: pkg.guid } }), 201, `build of ${name}`);
  const staged = await eventually(async () => {
    const b = (await api.get(`/v3/builds/${build.guid}`)).body;
    return b.state === 'STAGED' ? b : undefined;
  }, 10_000, `${name} stages`);
  await must(api.patch(`/v3/apps/${app.guid}/relationships/current_droplet`, { data: { guid: staged.droplet.guid } }), 200, `current droplet of ${name}`);
  return { app, pkg, build, droplet: staged.droplet.guid as string };
}

/** Keeps the CLI's config (INGOT_HOME) of this test file apart; runCli inherits it. */
export function useCliHome(label: string): void {
  process.env.INGOT_HOME = scratchDir(label);
  delete process.env.INGOT_USERNAME;
  delete process.env.INGOT_PASSWORD;
}

type Ran = { code: number | null; stdout: string; stderr: string };
type Checks = { is: (a: unknown, b: unknown, m?: string) => void; regex: (s: string, r: RegExp, m?: string) => void };

/**
 * Runs `ingot ARGS` (the real CLI, with this process's INGOT_HOME) and checks how it ended:
 * exit 0, or exit 1 with one `ingot: ` line on stderr matching `refusal`.
 */
export async function ingot(t: Checks, args: string[], refusal?: RegExp): Promise<Ran> {
  const r = await runCli(args, { timeoutMs: 60_000 });
  const said = `ingot ${args.join(' ')}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  if (!refusal) {
    t.is(r.code, 0, said);
    return r;
  }
  t.is(r.code, 1, said);
  t.is(r.stderr.trimEnd().split('\n').length, 1, said);
  t.regex(r.stderr, /^ingot: /, said);
  t.regex(r.stderr, refusal, said);
  return r;
}

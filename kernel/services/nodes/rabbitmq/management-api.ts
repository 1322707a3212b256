// The node's client of the RabbitMQ management HTTP API, as the admin only the node knows.
// Chosen over rabbitmqctl: no Erlang CLI boot per call (1-2 s each), no cookie to share
// with a child process, and answers in JSON. Names in paths are percent-encoded whole.
import { UnitError } from '../../errors.ts';

export interface ManagementApiOptions {
  host: string;
  port: number;
  username: string;
  password: string;
  timeoutMs?: number;
}

export interface ApiAnswer {
  status: number;
  body: unknown;
}

export class ManagementApi {
  private readonly base: string;
  private readonly auth: string;

  constructor(private readonly opts: ManagementApiOptions) {
    this.base = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}/api`;
    this.auth = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;
  }

  /** One request; any answer comes back (the caller judges the status), a failure to reach the server throws. */
  async request(method: string, path: string, body?: unknown): Promise<ApiAnswer> {
    const res = await fetch(this.base + path, {
      method,
      headers: { authorization: this.auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.opts.timeoutMs ?? 15_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text for the error message
    }
    return { status: res.status, body: parsed };
  }

  /** A request that must succeed (2xx), or also find nothing (404) when `absentOk`; wrapped with what was being done. */
  async expect(doing: string, method: string, path: string, body?: unknown, opts: { absentOk?: boolean } = {}): Promise<unknown> {
    let answer: ApiAnswer;
    try {
      answer = await this.request(method, path, body);
    } catch (err) {
      throw new UnitError(`${doing}: the RabbitMQ management API at ${this.base} did not answer (${(err as Error).message})`, { cause: err });
    }
    if (answer.status >= 200 && answer.status < 300) return answer.body;
    if (answer.status === 404 && opts.absentOk) return undefined;
    throw new UnitError(`${doing}: RabbitMQ answered ${answer.status} (${reasonOf(answer.body)})`);
  }

  putVhost = (vhost: string) => this.expect(`Creating vhost ${vhost}`, 'PUT', `/vhosts/${enc(vhost)}`, {});
  deleteVhost = (vhost: string) => this.expect(`Deleting vhost ${vhost}`, 'DELETE', `/vhosts/${enc(vhost)}`, undefined, { absentOk: true });
  putVhostLimit = (vhost: string, name: string, value: number) =>
    this.expect(`Setting ${name} of vhost ${vhost}`, 'PUT', `/vhost-limits/${enc(vhost)}/${enc(name)}`, { value });
  putPolicy = (vhost: string, name: string, policy: unknown) => this.expect(`Setting policy ${name} of vhost ${vhost}`, 'PUT', `/policies/${enc(vhost)}/${enc(name)}`, policy);
  putUser = (username: string, password: string, tags: string) => this.expect(`Creating user ${username}`, 'PUT', `/users/${enc(username)}`, { password, tags });
  deleteUser = (username: string) => this.expect(`Deleting user ${username}`, 'DELETE', `/users/${enc(username)}`, undefined, { absentOk: true });
  /** Closes every connection of the user at once (tracked connections, not the stats database, so none is missed). */
  closeConnectionsOf = (username: string) =>
    this.expect(`Closing the connections of ${username}`, 'DELETE', `/connections/username/${enc(username)}`, undefined, { absentOk: true });
  grantAll = (vhost: string, username: string) =>
    this.expect(`Granting ${username} vhost ${vhost}`, 'PUT', `/permissions/${enc(vhost)}/${enc(username)}`, { configure: '.*', write: '.*', read: '.*' });

  async vhostNames(): Promise<string[]> {
    return namesOf(await this.expect('Listing vhosts', 'GET', '/vhosts?columns=name'));
  }

  async userNames(): Promise<string[]> {
    return namesOf(await this.expect('Listing users', 'GET', '/users?columns=name'));
  }
}

function enc(name: string): string {
  return encodeURIComponent(name);
}

function namesOf(body: unknown): string[] {
  if (!Array.isArray(body)) throw new UnitError(`RabbitMQ answered a list request with ${JSON.stringify(body)?.slice(0, 200)}`);
  return body.map((o) => String((o as { name?: unknown }).name));
}

function reasonOf(body: unknown): string {
  if (body && typeof body === 'object' && 'reason' in body) return String((body as { reason: unknown }).reason);
  return typeof body === 'string' ? body.slice(0, 200) : JSON.stringify(body)?.slice(0, 200) ?? 'no body';
}

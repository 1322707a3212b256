// The director's REST API (orchestrator/director/api.ts) as typed calls: a bearer token from
// POST /auth/token, answers parsed with director-types.ts, the shared error envelope turned
// into ApiRequestError, uploads streamed from the file, and a task's output followed as NDJSON.
// HTTP goes through kernel/client/http.ts, as the controller's client does.
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';
import { errorEnvelope } from '../../kernel/client/api-types.ts';
import { ApiRequestError, ClientError } from '../../kernel/client/errors.ts';
import { open, send, type HttpResponse } from '../../kernel/client/http.ts';
import * as t from './director-types.ts';

export interface DirectorClientOptions {
  url: string;
  token?: string | undefined;
}

interface CallOptions {
  body?: unknown;
  auth?: boolean;
  query?: Record<string, string | number | undefined>;
  timeoutMs?: number;
}

export type TaskOutputType = 'event' | 'debug';

export interface TaskListQuery {
  states?: t.TaskState[];
  deployment?: string;
  limit?: number;
}

/** The session is gone or was never there: the director refused the token. */
export const RELOGIN_HINT = 'run ingot director login';

export class DirectorClient {
  readonly url: string;
  private token: string | undefined;

  constructor(opts: DirectorClientOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.token = opts.token;
  }

  // ---- auth and info ------------------------------------------------------------------------

  info(): Promise<t.DirectorInfo> {
    return this.call('GET', '/info', t.info, { auth: false });
  }

  /** Trades the admin user and password for a token; this client then uses it. */
  async login(username: string, password: string): Promise<t.DirectorToken> {
    const res = await this.call('POST', '/auth/token', t.token, { auth: false, body: { username, password } });
    this.token = res.access_token;
    return res;
  }

  // ---- stemcells, releases, cloud-config ------------------------------------------------------

  stemcells(): Promise<t.Stemcell[]> {
    return this.call('GET', '/stemcells', t.stemcell.array());
  }

  uploadStemcell(path: string): Promise<t.Stemcell> {
    return this.upload('/stemcells', path, t.stemcell);
  }

  releases(): Promise<t.Release[]> {
    return this.call('GET', '/releases', t.release.array());
  }

  uploadRelease(path: string): Promise<t.Release> {
    return this.upload('/releases', path, t.release);
  }

  /** Deletes one version of a release, or every version without `version`; refused (409) while a deployment uses one. */
  deleteRelease(name: string, version?: string): Promise<t.Removed> {
    return this.call('DELETE', `/releases/${encodeURIComponent(name)}${version === undefined ? '' : `/${encodeURIComponent(version)}`}`, t.removed);
  }

  deleteStemcell(name: string, version: string): Promise<t.Removed> {
    return this.call('DELETE', `/stemcells/${encodeURIComponent(name)}/${encodeURIComponent(version)}`, t.removed);
  }

  /** Queues the cleanup task (BOSH's clean-up): unused releases and stemcells but the two newest of each, or all with `removeAll`. */
  cleanup(removeAll: boolean): Promise<t.Task> {
    return this.call('POST', '/cleanup', t.task, { body: { remove_all: removeAll } });
  }

  /** The latest cloud-config, or undefined when none was ever uploaded. */
  async cloudConfig(): Promise<t.CloudConfig | undefined> {
    const [latest] = await this.call('GET', '/cloud_configs', t.cloudConfig.array(), { query: { limit: 1 } });
    return latest;
  }

  updateCloudConfig(properties: string): Promise<t.CloudConfigSaved> {
    return this.call('POST', '/cloud_configs', t.cloudConfigSaved, { body: { properties } });
  }

  // ---- deployments ----------------------------------------------------------------------------

  deployments(): Promise<t.Deployment[]> {
    return this.call('GET', '/deployments', t.deployment.array());
  }

  /** A deployment's instances; with `state`, each agent's job state, processes and vitals. */
  instances(name: string, state: boolean): Promise<t.InstanceRow[]> {
    return this.call('GET', `/deployments/${encodeURIComponent(name)}/instances`, t.instanceRow.array(), { query: { state: state ? 'true' : undefined } });
  }

  /** How to open a shell (or run `command`) in an instance's VM: a command line for this host. */
  sshTarget(name: string, group: string, index: string, command: string[]): Promise<t.SshTarget> {
    const path = `/deployments/${encodeURIComponent(name)}/instances/${encodeURIComponent(group)}/${encodeURIComponent(index)}/ssh`;
    return this.call('POST', path, t.sshTarget, { body: { command } });
  }

  /** Each VM of a deployment with its agent's state now (BOSH's vms). */
  vms(name: string): Promise<t.VmRow[]> {
    return this.call('GET', `/deployments/${encodeURIComponent(name)}/vms`, t.vmRow.array());
  }

  /** Queues the fetch_logs task of one instance (`index` its index or uuid); its result is the resource id. */
  fetchLogs(name: string, group: string, index: string): Promise<t.Task> {
    return this.call('POST', `/deployments/${encodeURIComponent(name)}/instances/${encodeURIComponent(group)}/${encodeURIComponent(index)}/logs`, t.task);
  }

  /** Queues the change_job_state task: every instance (group `*`), a group's, or one. */
  changeJobState(name: string, target: { group: string; index?: string | undefined }, state: t.JobStateChange): Promise<t.Task> {
    const path = `/deployments/${encodeURIComponent(name)}/jobs/${target.group === '*' ? '*' : encodeURIComponent(target.group)}${target.index === undefined ? '' : `/${encodeURIComponent(target.index)}`}`;
    return this.call('POST', path, t.task, { query: { state } });
  }

  /** Streams a resource (fetched logs) into `file`, written whole or not at all; resolves with its size. */
  async downloadResource(id: string, file: string): Promise<number> {
    const path = `/resources/${encodeURIComponent(id)}`;
    const res = await open({ method: 'GET', url: this.urlOf(path), headers: { accept: 'application/gzip', authorization: this.bearer() }, timeoutMs: 600_000 });
    if ((res.statusCode ?? 0) >= 400) throw await this.failureOf(res, 'GET', path);
    const part = `${file}.part`;
    try {
      await pipeline(res, createWriteStream(part));
      await rename(part, file);
    } catch (err) {
      await rm(part, { force: true });
      throw new ClientError('bad_path', `writing ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    return (await stat(file)).size;
  }

  /** Runs job `errand`'s errand on every instance that has it: the run_errand task. */
  runErrand(name: string, errand: string): Promise<t.Task> {
    return this.call('POST', `/deployments/${encodeURIComponent(name)}/errands/${encodeURIComponent(errand)}/runs`, t.task);
  }

  /** What deploying this manifest would change (nothing is changed). */
  diff(name: string, manifest: string): Promise<t.DeploymentDiff> {
    return this.call('POST', `/deployments/${encodeURIComponent(name)}/diff`, t.deploymentDiff, { body: manifest });
  }

  /** Queues the deploy task of a manifest (ops files and -v already applied). */
  deploy(manifest: string, o: { recreate?: boolean; dryRun?: boolean; canaries?: number; maxInFlight?: string; skipDrain?: string[] } = {}): Promise<t.Task> {
    const query = {
      recreate: o.recreate ? 'true' : undefined,
      dry_run: o.dryRun ? 'true' : undefined,
      canaries: o.canaries === undefined ? undefined : String(o.canaries),
      max_in_flight: o.maxInFlight,
      skip_drain: o.skipDrain?.length ? o.skipDrain.join(',') : undefined,
    };
    return this.call('POST', '/deployments', t.task, { body: manifest, query });
  }

  /** Queues the delete_deployment task. */
  deleteDeployment(name: string): Promise<t.Task> {
    return this.call('DELETE', `/deployments/${encodeURIComponent(name)}`, t.task);
  }

  // ---- health monitor, cloud-check, recreate ----------------------------------------------------

  /** The event log, newest first (the health monitor's alerts). */
  events(q: { deployment?: string; beforeId?: number; limit?: number } = {}): Promise<t.DirectorEvent[]> {
    return this.call('GET', '/events', t.directorEvent.array(), { query: { deployment: q.deployment, before_id: q.beforeId, limit: q.limit } });
  }

  resurrection(): Promise<t.Resurrection> {
    return this.call('GET', '/resurrection', t.resurrection);
  }

  setResurrection(paused: boolean): Promise<t.Resurrection> {
    return this.call('PUT', '/resurrection', t.resurrection, { body: { resurrection_paused: paused } });
  }

  /** Queues the cck_scan task of a deployment. */
  scanCloud(name: string): Promise<t.Task> {
    return this.call('POST', `/deployments/${encodeURIComponent(name)}/scans`, t.task);
  }

  problems(name: string): Promise<t.Problem[]> {
    return this.call('GET', `/deployments/${encodeURIComponent(name)}/problems`, t.problem.array());
  }

  /** Queues the cck_apply task: problem id → resolution. */
  resolveProblems(name: string, resolutions: Record<string, string>): Promise<t.Task> {
    return this.call('PUT', `/deployments/${encodeURIComponent(name)}/problems`, t.task, { body: { resolutions } });
  }

  /** Queues the recreate task: every instance (group `*`), a group's, or one. */
  recreate(name: string, target: { group: string; index?: string | undefined }, o: { skipDrain?: boolean } = {}): Promise<t.Task> {
    const path = `/deployments/${encodeURIComponent(name)}/recreate/${target.group === '*' ? '*' : encodeURIComponent(target.group)}${target.index === undefined ? '' : `/${encodeURIComponent(target.index)}`}`;
    return this.call('POST', path, t.task, { query: { skip_drain: o.skipDrain ? 'true' : undefined } });
  }

  // ---- tasks ------------------------------------------------------------------------------------

  tasks(q: TaskListQuery = {}): Promise<t.Task[]> {
    return this.call('GET', '/tasks', t.task.array(), { query: { state: q.states?.join(','), deployment: q.deployment, limit: q.limit } });
  }

  task(id: number): Promise<t.Task> {
    return this.call('GET', `/tasks/${id}`, t.task);
  }

  cancelTask(id: number): Promise<t.Task> {
    return this.call('POST', `/tasks/${id}/cancel`, t.task);
  }

  taskResult(id: number): Promise<t.TaskResult> {
    return this.call('GET', `/tasks/${id}/output`, t.taskResult, { query: { type: 'result' } });
  }

  /**
   * A task's events (or debug lines) so far, or, with `follow`, as they come until the task
   * ends; resolves with how many items were read. The director sends one JSON value a line.
   */
  async taskOutput(id: number, type: 'event', onItem: (e: t.TaskEvent) => void, opts?: { follow?: boolean }): Promise<number>;
  async taskOutput(id: number, type: 'debug', onItem: (line: string) => void, opts?: { follow?: boolean }): Promise<number>;
  async taskOutput(id: number, type: TaskOutputType, onItem: ((e: t.TaskEvent) => void) | ((line: string) => void), opts: { follow?: boolean } = {}): Promise<number> {
    const path = `/tasks/${id}/output`;
    const res = await this.openStream(path, { type, follow: opts.follow ? 1 : undefined });
    let buffered = '';
    let count = 0;
    const take = (line: string): void => {
      if (line.trim() === '') return;
      let raw: unknown;
      try {
        raw = JSON.parse(line);
      } catch {
        throw new ClientError('bad_response', `GET ${path}: a line of the task's output is not JSON`);
      }
      count++;
      if (type === 'event') {
        const e = t.taskEvent.safeParse(raw);
        if (!e.success) throw new ClientError('bad_response', `GET ${path}: an event is not what this CLI understands (${describeIssue(e.error)})`);
        (onItem as (e: t.TaskEvent) => void)(e.data);
      } else {
        const d = t.debugLine.safeParse(raw);
        (onItem as (line: string) => void)(d.success ? d.data.line : line);
      }
    };
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        buffered += chunk.toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          take(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
        }
      }
    } catch (err) {
      res.destroy();
      if (err instanceof ClientError) throw err;
      throw new ClientError('unreachable', `GET ${path}: the connection broke while reading the task's output (${(err as Error).message})`);
    }
    take(buffered);
    return count;
  }

  // ---- the HTTP core ------------------------------------------------------------------------

  private async call<S extends z.ZodTypeAny>(method: string, path: string, schema: S, o: CallOptions = {}): Promise<z.output<S>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (o.auth ?? true) headers.authorization = this.bearer();
    let body: Buffer | undefined;
    if (typeof o.body === 'string') {
      // A manifest goes as the YAML it is.
      body = Buffer.from(o.body);
      headers['content-type'] = 'text/yaml';
    } else if (o.body !== undefined) {
      body = Buffer.from(JSON.stringify(o.body));
      headers['content-type'] = 'application/json';
    }
    const res = await send({ method, url: this.urlOf(path, o.query), headers, ...(body ? { body } : {}), ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}) });
    return this.parse(res, method, path, schema, o.auth ?? true);
  }

  /** Streams the file as the request body (the director takes a raw gzip body as the upload). */
  private async upload<S extends z.ZodTypeAny>(path: string, file: string, schema: S): Promise<z.output<S>> {
    let size: number;
    try {
      const st = await stat(file);
      if (!st.isFile()) throw new ClientError('bad_path', `${file} is not a file`);
      size = st.size;
    } catch (err) {
      if (err instanceof ClientError) throw err;
      throw new ClientError('bad_path', `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const headers = { accept: 'application/json', authorization: this.bearer(), 'content-type': 'application/gzip', 'content-length': String(size) };
    const res = await send({ method: 'POST', url: this.urlOf(path), headers, body: createReadStream(file), timeoutMs: 600_000 });
    return this.parse(res, 'POST', path, schema, true);
  }

  private async openStream(path: string, query: Record<string, string | number | undefined>): Promise<IncomingMessage> {
    const res = await open({ method: 'GET', url: this.urlOf(path, query), headers: { accept: 'application/x-ndjson', authorization: this.bearer() }, timeoutMs: 30_000 });
    if ((res.statusCode ?? 0) < 400) return res;
    throw await this.failureOf(res, 'GET', path);
  }

  /** The error of a streamed answer that failed: its body read whole. */
  private async failureOf(res: IncomingMessage, method: string, path: string): Promise<ClientError> {
    const chunks: Buffer[] = [];
    for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
    return this.failure({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }, method, path, true);
  }

  private parse<S extends z.ZodTypeAny>(res: HttpResponse, method: string, path: string, schema: S, auth: boolean): z.output<S> {
    if (res.status >= 400) throw this.failure(res, method, path, auth);
    let raw: unknown;
    try {
      raw = JSON.parse(res.body.toString('utf8'));
    } catch {
      throw new ClientError('bad_response', `${method} ${path}: HTTP ${res.status} with a body that is not JSON; is ${this.url} an Ingot director? (check ingot director)`);
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw new ClientError('bad_response', `${method} ${path}: the director's answer is not what this CLI understands (${describeIssue(parsed.error)})`);
    return parsed.data;
  }

  private failure(res: HttpResponse, method: string, path: string, auth: boolean): ClientError {
    let raw: unknown;
    try {
      raw = JSON.parse(res.body.toString('utf8'));
    } catch {
      raw = undefined;
    }
    const env = errorEnvelope.safeParse(raw);
    const err = env.success
      ? new ApiRequestError(res.status, env.data.errors[0]!.title, env.data.errors[0]!.detail, method, path)
      : new ApiRequestError(res.status, 'HTTP', `HTTP ${res.status} ${res.body.toString('utf8').slice(0, 200).trim()}`, method, path);
    if (auth && res.status === 401) return new ClientError('session_expired', `the director refused the session (${err.detail}); ${RELOGIN_HINT}`, { cause: err });
    return err;
  }

  private bearer(): string {
    if (!this.token) throw new ClientError('not_logged_in', `not logged in to the director ${this.url}; ${RELOGIN_HINT}`);
    return `bearer ${this.token}`;
  }

  private urlOf(path: string, query?: Record<string, string | number | undefined>): string {
    const out = new URL(`${this.url}${path}`);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) out.searchParams.set(k, String(v));
    return out.toString();
  }
}

function describeIssue(err: z.ZodError): string {
  const issue = err.issues[0]!;
  return `${issue.path.join('.') || '(body)'}: ${issue.message}`;
}
